"""``/tessera/ui-api``: read models and actions the pages need that the reference API has no shape for.

Every route is a thin call into the Sandbox services (no business rules here). Errors are
:class:`~tessera.errors.TesseraError` and render through the app's single handler, so the pages
show the same ``detail`` and ``report`` the REST API returns.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import copy
import logging
import threading
import time
import weakref
from itertools import islice
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from tessera.api.deps import SandboxDep, json_object, ok, parse_json
from tessera.api.errors import JsonResponse
from tessera.errors import InvalidInput, NotFound, TesseraError
from tessera.identity.graph import IdentityGraph
from tessera.identity.simulate import simulate
from tessera.model import Identity, format_time, parse_time
from tessera.platform import Sandbox
from tessera.xdm.standard import EXPERIENCE_EVENT, PROFILE

PREFIX = "/tessera/ui-api"
log = logging.getLogger("tessera.ui")
router = APIRouter(prefix=PREFIX, tags=["ui"], include_in_schema=False)


class EngineMissing(TesseraError):
    """A feature whose engine is not part of this build (for example PQL before ``tessera.pql`` lands)."""

    status = 501
    code = "TESSERA-1501-501"
    title = "Not available in this build"


class _Memo:
    """Results of slow whole-sandbox reads, kept per sandbox while their version key is unchanged.

    Graph statistics and the profile count are keyed by the graph's sequence number (every
    ingested row, unlink or delete bumps it); the event types seen in data by a five-minute clock
    (they only feed a picker). With ``stale_ok`` a changed version returns the previous value at
    once and recomputes in a background thread, so pages stay fast while data streams in. One
    computation per value runs at a time: a request arriving while the warm-up computes a
    value waits for that result instead of starting a second computation.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: weakref.WeakKeyDictionary[Sandbox, dict[str, tuple[Any, Any]]] = (
            weakref.WeakKeyDictionary()
        )
        self._computing: weakref.WeakKeyDictionary[Sandbox, dict[str, threading.Lock]] = (
            weakref.WeakKeyDictionary()
        )
        self._running: set[tuple[int, str]] = set()

    def get(self, name: str, sandbox: Sandbox, version: Any, compute: Any, *, stale_ok: bool = False) -> Any:
        hit = self._hit(name, sandbox)
        if hit is not None and hit[0] == version:
            return hit[1]
        if hit is not None and stale_ok:
            self._refresh(name, sandbox, version, compute)
            return hit[1]
        with self._computing_lock(name, sandbox):
            hit = self._hit(name, sandbox)  # computed while this request waited
            if hit is not None and (hit[0] == version or stale_ok):
                return hit[1]
            value = compute()
            self._put(name, sandbox, version, value)
            return value

    def _hit(self, name: str, sandbox: Sandbox) -> tuple[Any, Any] | None:
        with self._lock:
            return self._values.get(sandbox, {}).get(name)

    def _computing_lock(self, name: str, sandbox: Sandbox) -> threading.Lock:
        with self._lock:
            return self._computing.setdefault(sandbox, {}).setdefault(name, threading.Lock())

    def _put(self, name: str, sandbox: Sandbox, version: Any, value: Any) -> None:
        with self._lock:
            self._values.setdefault(sandbox, {})[name] = (version, value)

    def _refresh(self, name: str, sandbox: Sandbox, version: Any, compute: Any) -> None:
        token = (id(sandbox), name)
        with self._lock:
            if token in self._running:
                return
            self._running.add(token)

        def run() -> None:
            try:
                with self._computing_lock(name, sandbox):
                    self._put(name, sandbox, version, compute())
            except Exception:  # noqa: BLE001 - a failed refresh keeps the previous value
                log.debug("UI cache refresh of %s failed", name, exc_info=True)
            finally:
                with self._lock:
                    self._running.discard(token)

        threading.Thread(target=run, name=f"tessera-ui-{name}", daemon=True).start()


_MEMO = _Memo()


def graph_stats(sandbox: Sandbox, top: int = 10) -> dict[str, Any]:
    """``identity.stats(top)``, recomputed only after the graph was flushed or caught up."""
    stats: dict[str, Any] = _MEMO.get(
        f"stats{top}", sandbox, sandbox.identity.version, lambda: sandbox.identity.stats(top), stale_ok=True
    )
    return copy.deepcopy(stats)


def profile_count(sandbox: Sandbox) -> int:
    """``profiles.count()``, recounted in the background after ingestion flushed the graph (a
    one-identity visitor adds a profile without changing the graph)."""
    count: int = _MEMO.get(
        "profiles", sandbox, sandbox.identity.version, sandbox.profiles.count, stale_ok=True
    )
    return count


def warm_up(sandbox: Sandbox) -> None:
    """Fill what the pages read before anyone asks, so first visits are as fast as later ones.

    The dashboard's graph statistics and profile count, the builder's event types, the profile
    page's autocomplete index per namespace, and one size estimate (the first read of the
    profile sample and the first query compiled). At a million people these take seconds when
    cold; the server runs this in a thread as it starts.
    """
    graph_stats(sandbox)
    profile_count(sandbox)
    _MEMO.get("eventTypes", sandbox, int(time.time() // 300), lambda: _event_types(sandbox))
    for ns in sandbox.identity.namespaces():
        _SUGGEST.find(sandbox, ns.code, "", 1)
    if sandbox.segments is not None:
        saved = sandbox.segments.definitions.all()
        expression = saved[0]["expression"]["value"] if saved else "true"
        fmt = saved[0]["expression"].get("format", "pql/text") if saved else "pql/text"
        bound = sandbox.settings.estimate_sample_size
        sandbox.segments.preview(expression, fmt, sample_size=1, max_profiles=bound)


def _segments(sandbox: Sandbox) -> Any:
    if sandbox.segments is None:
        raise EngineMissing("Segmentation is not installed in this build", path="segments")
    return sandbox.segments


def _engine_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a segmentation call, turning 'engine not installed' into a 501 the page can show."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise EngineMissing(f"The PQL engine is not available in this build: {exc}", path="pql") from exc


def _identity(raw: str, path: str) -> Identity:
    ns, sep, value = raw.partition(":")
    if not sep or not ns or not value:
        raise InvalidInput(
            "Identities are written NAMESPACE:value, for example Email:jane@example.com", path=path
        )
    return Identity(ns, value)


async def _body(request: Request) -> dict[str, Any]:
    return json_object(parse_json(await request.body()))


# -- dashboard ---------------------------------------------------------------------------------------


def segment_sizes(sandbox: Sandbox) -> dict[str, list[dict[str, Any]]]:
    """Per segment, its sizes at each finished segment job (oldest first): the dashboard's trend."""
    if sandbox.segments is None:
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for job in reversed(sandbox.segments.jobs(status="SUCCEEDED", limit=500)):
        counter = (job.get("metrics") or {}).get("segmentedProfileCounter") or {}
        for sid, size in counter.items():
            out.setdefault(sid, []).append({"time": job.get("updateTime"), "size": size})
    return out


@router.get("/overview")
def overview(sandbox: SandboxDep) -> JsonResponse:
    """Counts for the dashboard: profiles, graphs, namespaces, segments, ingestion."""
    stats = graph_stats(sandbox, 10)
    largest = []
    for entry in stats["largest"]:
        members = sandbox.identity.members(entry["profileId"])
        primary = sandbox.identity.primary_of(members)
        largest.append({**entry, "primary": None if primary is None else primary.to_json()})
    stats["largest"] = largest
    datasets = []
    for ds in sandbox.datasets.list():
        batches = sandbox.batches.list(ds["id"])
        datasets.append(
            {
                "id": ds["id"],
                "name": ds.get("name"),
                "batches": len(batches),
                "records": sum(b["metrics"]["inputRecordCount"] for b in batches),
                "ingested": sum(b["metrics"]["outputRecordCount"] for b in batches),
                "rejected": sum(b["metrics"]["failedRecordCount"] for b in batches),
                "lastBatch": batches[0]["created"] if batches else None,
                "recordsPerSecond": batches[0]["metrics"].get("recordsPerSecond") if batches else None,
            }
        )
    segments: list[dict[str, Any]] = []
    if sandbox.segments is not None:
        sizes = segment_sizes(sandbox)
        for doc in sandbox.segments.definitions.all():
            trend = sizes.get(doc["id"], [])
            segments.append(
                {
                    "id": doc["id"],
                    "name": doc["name"],
                    "size": trend[-1]["size"] if trend else None,
                    "trend": trend[-10:],
                    "evaluationInfo": doc["evaluationInfo"],
                }
            )
    return ok(
        {
            "sandbox": sandbox.name,
            "profiles": profile_count(sandbox),
            "identity": stats,
            "datasets": datasets,
            "segments": segments,
            "segmentationAvailable": sandbox.segments is not None,
        }
    )


# -- identities ----------------------------------------------------------------------------------


def namespace_rows(sandbox: Sandbox) -> list[dict[str, Any]]:
    rules = sandbox.identity.settings()
    rank = {code: i + 1 for i, code in enumerate(rules["priority"])}
    counts = graph_stats(sandbox, 10)["identitiesPerNamespace"]
    return [
        {
            "code": ns.code,
            "name": ns.name,
            "id": ns.id,
            "type": ns.type.value,
            "custom": ns.custom,
            "buildsGraph": sandbox.identity.builds_graph(ns.code),
            "unique": ns.code in rules["unique"],
            "priority": rank.get(ns.code),
            "identities": counts.get(ns.code, 0),
        }
        for ns in sandbox.identity.namespaces()
    ]


@router.get("/namespaces")
def namespaces(sandbox: SandboxDep) -> JsonResponse:
    """Namespaces with type, identity counts and the linking rules (unique, priority, limit)."""
    return ok({"namespaces": namespace_rows(sandbox), "rules": sandbox.identity.settings()})


@router.put("/identity/rules")
async def put_rules(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """Change the linking rules; ``reResolve`` also applies them to existing graphs."""
    body = await _body(request)
    limit = body.get("limit", 50)
    if limit is not None and (not isinstance(limit, int) or limit < 2):
        raise InvalidInput("limit must be a whole number of at least 2 (or null for none)", path="limit")
    result = sandbox.identity.set_rules(
        unique=list(body.get("unique") or []),
        priority=list(body.get("priority") or []),
        limit=limit,
        re_resolve=bool(body.get("reResolve")),
    )
    return ok(result)


@router.post("/identity/simulate")
async def simulate_graph(request: Request) -> JsonResponse:
    """Run ``NS: value, NS: value`` lines through the linking engine (the reference's graph simulation)."""
    body = await _body(request)
    text = body.get("text")
    if not isinstance(text, str):
        raise InvalidInput("text must hold one event per line, like 'CRMID: Tom, ECID: 111'", path="text")
    limit = body.get("limit", 50)
    result = simulate(
        text,
        unique=list(body.get("unique") or []),
        priority=list(body.get("priority") or []),
        limit=limit if isinstance(limit, int) else None,
        validate=bool(body.get("validate")),
    )
    out = result.to_json()
    out["links"] = [
        {"a": li.a.to_json(), "b": li.b.to_json(), "firstSeen": li.first_seen, "lastSeen": li.last_seen}
        for li in result.graph.links()
    ]
    return ok(out)


class _Suggestions:
    """Identity values per namespace for autocomplete: a sorted list plus the values seen since.

    The graph only ever appends values, so each call fetches just the new ones and scans them
    (a tail up to :attr:`TAIL` long) next to a binary search of the sorted part; the tail is
    merged into the sorted part when it grows past that. A keystroke never re-sorts a million
    values, even while data streams in.
    """

    TAIL = 20_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # per graph object: a reloaded graph (new object) starts a new index
        self._index: weakref.WeakKeyDictionary[IdentityGraph, dict[str, tuple[int, list[str], list[str]]]] = (
            weakref.WeakKeyDictionary()
        )

    def find(self, sandbox: Sandbox, namespace: str, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` values starting with ``prefix`` (sorted) whose identity is in a graph.

        Identities that left the graph (deleted by a privacy job, dropped by the rules) are not
        offered: autocomplete must not bring back what was removed.
        """
        graph = sandbox.identity.graph
        ordered, tail = self._current(graph, namespace)
        start = bisect.bisect_left(ordered, prefix)
        # a bounded slice: the matches are contiguous from `start`; spare ones stand in for
        # values no longer in a graph
        found = [v for v in ordered[start : start + 4 * limit] if v.startswith(prefix)]
        found += [value for value in tail if value.startswith(prefix)]
        found.sort()
        live = (v for v in found if graph.profile_id(Identity(namespace, v)) is not None)
        return list(islice(live, limit))

    def _current(self, graph: IdentityGraph, namespace: str) -> tuple[list[str], list[str]]:
        with self._lock:
            per_graph = self._index.setdefault(graph, {})
            seen, ordered, tail = per_graph.get(namespace, (0, [], []))
            new, seen = graph.values(namespace, seen)
            if new or namespace not in per_graph:
                tail = tail + new
                if len(tail) > self.TAIL or not ordered:
                    # two sorted runs: the sort merges them in one linear pass
                    ordered = ordered + sorted(tail)
                    ordered.sort()
                    tail = []
            per_graph[namespace] = (seen, ordered, tail)
            return ordered, tail


_SUGGEST = _Suggestions()


@router.get("/identities/suggest")
def suggest(
    sandbox: SandboxDep,
    namespace: Annotated[str, Query(min_length=1)],
    prefix: str = "",
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> JsonResponse:
    """Known identity values of a namespace starting with ``prefix`` (autocomplete)."""
    sandbox.identity.namespace(namespace)
    found = _SUGGEST.find(sandbox, namespace, prefix, limit)
    return ok({"namespace": namespace, "values": found})


@router.get("/identity/explain")
def explain_link(
    sandbox: SandboxDep, a: Annotated[str, Query(min_length=3)], b: Annotated[str, Query(min_length=3)]
) -> JsonResponse:
    """Why two identities are in one graph: the chain of links with times and source datasets."""
    chain = sandbox.identity.explain(_identity(a, "a"), _identity(b, "b"))
    names = _dataset_names(sandbox)
    for link in chain:
        link["datasetName"] = names.get(link.get("datasetId") or "", link.get("datasetId"))
    return ok({"a": a, "b": b, "links": chain})


# -- profiles ------------------------------------------------------------------------------------


def _dataset_names(sandbox: Sandbox) -> dict[str, str]:
    return {ds["id"]: str(ds.get("name") or ds["id"]) for ds in sandbox.datasets.list()}


def profile_graph(sandbox: Sandbox, profile_id: str) -> dict[str, Any]:
    """Nodes (with namespace type) and links (with times and dataset) of a profile's identity graph."""
    types = {ns.code: ns.type.value for ns in sandbox.identity.namespaces()}
    members = sandbox.identity.members(profile_id)
    primary = sandbox.identity.primary_of(members)
    state = sandbox.identity.graph.component_state(profile_id)
    first_seen: dict[tuple[str, str], int] = {}
    links: list[dict[str, Any]] = []
    names = _dataset_names(sandbox)
    if state is not None:
        _, rows, link_rows = state
        first_seen = {(r.namespace, r.id): r.first_seen for r in rows}
        for lr in link_rows:
            links.append(
                {
                    "a": {"namespace": lr[0], "id": lr[1]},
                    "b": {"namespace": lr[2], "id": lr[3]},
                    "firstSeen": lr[4],
                    "lastSeen": lr[5],
                    "datasetId": lr[7],
                    "datasetName": names.get(lr[7] or "", lr[7]),
                }
            )
    nodes = [
        {
            "namespace": m.namespace,
            "id": m.id,
            "type": types.get(m.namespace, "CROSS_DEVICE"),
            "primary": m == primary,
            "firstSeen": first_seen.get((m.namespace, m.id)),
        }
        for m in members
    ]
    return {"nodes": nodes, "links": links}


@router.get("/profile")
def profile(
    sandbox: SandboxDep,
    namespace: str | None = None,
    id: str | None = None,  # noqa: A002 - the reference's parameter name
    profileId: str | None = None,  # noqa: N803
    mergePolicyId: str | None = None,  # noqa: N803
    asOf: str | None = None,  # noqa: N803
) -> JsonResponse:
    """A merged profile with provenance, its identity graph, memberships and lookup tables."""
    target: Identity | str
    if profileId:
        target = profileId
    elif namespace and id:
        sandbox.identity.namespace(namespace)
        target = Identity(namespace, id)
    else:
        raise InvalidInput("Give a namespace and an identity value (or a profileId)", path="id")
    as_of = parse_time(asOf) if asOf else None
    view = sandbox.profiles.get(target, merge_policy_id=mergePolicyId or None, as_of=as_of)
    if view is None:
        shown = target if isinstance(target, str) else f"{target.namespace}:{target.id}"
        raise NotFound(f"No profile holds {shown}; check the namespace and the value", path="id")
    names = _dataset_names(sandbox)
    segment_names: dict[str, str] = {}
    if sandbox.segments is not None:
        segment_names = {d["id"]: d["name"] for d in sandbox.segments.definitions.all()}
    policies = [
        {"id": p.id, "name": p.name, "default": p.default, "identityGraph": p.identity_graph}
        for p in sandbox.merge_policies.list()
    ]
    body = view.to_json()
    # memberships change without profile data changing (batch jobs): read them live
    body["segmentMembership"] = {"ups": sandbox.memberships_of(view.profile_id, sandbox.store)}
    return ok(
        {
            "profile": body,
            "graph": profile_graph(sandbox, view.profile_id),
            "datasets": names,
            "segments": segment_names,
            "policies": policies,
            "asOf": None if as_of is None else format_time(as_of),
        }
    )


@router.get("/profile/events")
def profile_events(
    sandbox: SandboxDep,
    profileId: Annotated[str, Query(min_length=1)],  # noqa: N803
    mergePolicyId: str | None = None,  # noqa: N803
    eventType: str | None = None,  # noqa: N803
    dataset: str | None = None,
    start: str | None = None,
    end: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> JsonResponse:
    """A profile's events, newest first, filtered by event type, dataset and time range."""
    events, _ = sandbox.profiles.events(
        profileId,
        merge_policy_id=mergePolicyId or None,
        start=parse_time(start) if start else None,
        end=parse_time(end) if end else None,
        descending=True,
        limit=5000,
    )
    names = _dataset_names(sandbox)
    types: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    for ev in events:
        record = ev.get("record") or {}
        etype = str(record.get("eventType", ""))
        types[etype] = types.get(etype, 0) + 1
        ds_id = str(ev.get("dataset") or ev.get("datasetId") or "")
        if eventType and etype != eventType:
            continue
        if dataset and ds_id != dataset:
            continue
        if len(out) < limit:
            out.append({**ev, "datasetName": names.get(ds_id, ds_id)})
    return ok({"events": out, "eventTypes": types, "total": len(events)})


# -- schema --------------------------------------------------------------------------------------


def flatten_fields(node: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """Leaf fields of a JSON-schema object as ``{path, type, title, enum}`` (maps and arrays excluded).

    >>> flatten_fields({"properties": {"a": {"type": "object", "properties": {"b": {"type": "integer"}}}}})
    [{'path': 'a.b', 'type': 'integer', 'title': 'b', 'enum': None}]
    """
    out: list[dict[str, Any]] = []
    for name, child in (node.get("properties") or {}).items():
        path = f"{prefix}{name}"
        kind = child.get("type")
        if kind == "object" and "properties" in child:
            out.extend(flatten_fields(child, path + "."))
        elif kind in {"string", "integer", "number", "boolean"}:
            fmt = child.get("format")
            shown = "date-time" if fmt == "date-time" else "date" if fmt == "date" else kind
            out.append(
                {"path": path, "type": shown, "title": child.get("title", name), "enum": child.get("enum")}
            )
    return out


@router.get("/schema/fields")
def schema_fields(sandbox: SandboxDep) -> JsonResponse:
    """Profile attributes and event fields of the union schemas, plus the event types seen in data."""
    try:
        profile_fields = flatten_fields(sandbox.schemas.union(PROFILE))
    except NotFound:
        profile_fields = []
    try:
        event_fields = flatten_fields(sandbox.schemas.union(EXPERIENCE_EVENT))
    except NotFound:
        event_fields = []
    profile_fields = [f for f in profile_fields if not f["path"].startswith(("_repo.", "identityMap"))]
    return ok(
        {
            "profile": profile_fields,
            "event": event_fields,
            "eventTypes": _MEMO.get(
                "eventTypes", sandbox, int(time.time() // 300), lambda: _event_types(sandbox)
            ),
        }
    )


def _event_types(sandbox: Sandbox, sample: int = 20_000) -> list[str]:
    from tessera.profile.service import EVENTS

    seen: set[str] = set()
    import orjson

    for _, raw in sandbox.store.scan(EVENTS, limit=sample):
        record = orjson.loads(raw).get("record") or {}
        if isinstance(record.get("eventType"), str):
            seen.add(record["eventType"])
    return sorted(seen)


# -- segments -----------------------------------------------------------------------------------


def _verdict(v: Any) -> dict[str, Any]:
    return {"eligible": bool(v.eligible), "reason": v.reason}


@router.post("/pql/check")
async def pql_check(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """Parse and check PQL: canonical text and eligibility per evaluation method (or the PqlError)."""
    body = await _body(request)
    text = body.get("pql")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("pql must be a non-empty PQL expression", path="pql")
    compiled = _engine_call(_segments(sandbox).engine.compile, "pql/text", text)
    return ok(
        {
            "text": compiled.text,
            "dependencies": sorted(compiled.dependencies),
            "batch": {"eligible": True, "reason": "Every expression can be evaluated in batch."},
            "continuous": _verdict(compiled.continuous),
            "synchronous": _verdict(compiled.synchronous),
        }
    )


@router.post("/estimate")
async def estimate(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """Size estimate (95 % interval) and a sample of matching profiles for unsaved PQL."""
    body = await _body(request)
    text = body.get("pql")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("pql must be a non-empty PQL expression", path="pql")
    # a bounded sample whatever the sandbox's size: the builder asks on every rule change
    bound = sandbox.settings.estimate_sample_size
    result = await run_in_threadpool(
        _engine_call, _segments(sandbox).preview, text, "pql/text", sample_size=10, max_profiles=bound
    )
    return ok(result)


@router.get("/segments")
def list_segments(sandbox: SandboxDep) -> JsonResponse:
    """Segment definitions with their latest evaluated size and size trend."""
    segs = _segments(sandbox)
    sizes = segment_sizes(sandbox)
    out = []
    for doc in segs.definitions.all():
        trend = sizes.get(doc["id"], [])
        out.append({**doc, "size": trend[-1]["size"] if trend else None, "trend": trend[-10:]})
    out.sort(key=lambda d: d.get("creationTime", 0), reverse=True)
    return ok({"segments": out})


@router.post("/segments")
async def create_segment(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """Save a segment definition from the builder (name, description, pql, evaluationInfo, ruleModel)."""
    body = await _body(request)
    doc = {
        "name": body.get("name"),
        "description": body.get("description", ""),
        "expression": {"type": "PQL", "format": "pql/text", "value": body.get("pql")},
        "evaluationInfo": body.get("evaluationInfo"),
        "schema": {"name": "_xdm.context.profile"},
    }
    if body.get("mergePolicyId"):
        doc["mergePolicyId"] = body["mergePolicyId"]
    created = _engine_call(_segments(sandbox).create, doc)
    return ok(created, status=201)


@router.post("/segments/{segment_id}/evaluate")
def evaluate_segment(segment_id: str, sandbox: SandboxDep) -> JsonResponse:
    """Evaluate one segment now (a segment job) and return the job with a few members."""
    segs = _segments(sandbox)
    segs.get(segment_id)
    job = _engine_call(segs.run_job, [{"segmentId": segment_id}], source="ui")
    return ok({"job": job, "members": members_sample(sandbox, segment_id)})


def members_sample(sandbox: Sandbox, segment_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """Up to ``limit`` current members of a segment with their primary identity."""
    from tessera.segments import memberships as ms

    out: list[dict[str, Any]] = []
    for pid, sid, rec in ms.scan_all(sandbox.store):
        if sid != segment_id or rec.get("status") not in ms.IN:
            continue
        members = sandbox.identity.members(pid)
        primary = sandbox.identity.primary_of(members)
        out.append({"profileId": pid, "primary": None if primary is None else primary.to_json(), **rec})
        if len(out) >= limit:
            break
    return out


@router.get("/segments/{segment_id}/members")
def segment_members(
    segment_id: str, sandbox: SandboxDep, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> JsonResponse:
    _segments(sandbox).get(segment_id)
    return ok({"segmentId": segment_id, "members": members_sample(sandbox, segment_id, limit)})


@router.get("/segments/{segment_id}/explain")
def explain_member(
    segment_id: str,
    sandbox: SandboxDep,
    profileId: Annotated[str, Query(min_length=1)],  # noqa: N803
) -> JsonResponse:
    """Why a profile is (or is not) in a segment, condition by condition."""
    result = _engine_call(_segments(sandbox).explain, segment_id, profileId)
    return ok(result)


# -- datasets and batches ------------------------------------------------------------------------


@router.get("/datasets")
def datasets(sandbox: SandboxDep) -> JsonResponse:
    """Datasets with their batches (newest first) and streaming error counts."""
    out = []
    for ds in sandbox.datasets.list():
        out.append({**ds, "batchList": sandbox.batches.list(ds["id"])[:50]})
    return ok({"datasets": out})


@router.get("/batches/{batch_id}/errors")
def batch_errors(
    batch_id: str, sandbox: SandboxDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> JsonResponse:
    """Per-record diagnostics of a batch (row, field path, message)."""
    batch = sandbox.batches.get(batch_id)
    return ok({"batch": batch, "errors": list(sandbox.batches.errors(batch_id, limit=limit))})


FORMATS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}


@router.post("/datasets/{dataset_id}/upload")
async def upload(dataset_id: str, request: Request, sandbox: SandboxDep) -> JsonResponse:
    """Ingest one file into a dataset as a new batch: ``{fileName, content (base64)}``.

    Returns the finished batch and its first 200 per-record diagnostics.
    """
    body = await _body(request)
    name = body.get("fileName")
    if not isinstance(name, str) or "." not in name:
        raise InvalidInput(
            "fileName must name the file with its extension (.json, .jsonl, .csv, .parquet)", path="fileName"
        )
    fmt = FORMATS.get(name[name.rfind(".") :].lower())
    if fmt is None:
        raise InvalidInput(
            f"Unsupported file type {name!r}; use .json, .jsonl, .csv or .parquet", path="fileName"
        )
    try:
        data = base64.b64decode(str(body.get("content", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("content must be the file's bytes in base64", path="content") from exc
    if not data:
        raise InvalidInput("The file is empty", path="content")
    safe_name = name.replace("/", "_").replace("\\", "_")

    def run() -> dict[str, Any]:
        batch = sandbox.ingest.create_batch(dataset_id, fmt)
        sandbox.ingest.upload(batch["id"], safe_name, data)
        done = sandbox.ingest.complete(batch["id"])
        return {"batch": done, "errors": list(sandbox.batches.errors(done["id"], limit=200))}

    return ok(await run_in_threadpool(run), status=201)


# -- activation ----------------------------------------------------------------------------------


@router.get("/activation")
def activation(sandbox: SandboxDep) -> JsonResponse:
    """Destinations (with delivery state), export jobs and schedules."""
    segs = _segments(sandbox)
    act = segs.activation
    dests = []
    for dest in act.destinations.list():
        try:
            state = act.destinations.state(dest["id"])
        except TesseraError:
            state = {}
        state["pending"] = act.destinations.pending(dest["id"])
        dests.append({**dest, "state": state})
    schedules = segs.schedules.list() if hasattr(segs.schedules, "list") else []
    names = {d["id"]: d["name"] for d in segs.definitions.all()}
    return ok(
        {
            "destinations": dests,
            "exports": act.exports.list()[:50],
            "schedules": schedules,
            "segmentNames": names,
        }
    )
