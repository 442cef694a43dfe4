"""Identity Service (``/data/core/identity/…``, ``/data/core/idnamespace/identities``, §b11) and
Tessera's identity extras (``/tessera/identity/simulate``, ``/tessera/identity/explain``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from tessera.api.deps import SandboxDep, empty, json_object, ok, op, parse_json
from tessera.api.errors import JsonResponse
from tessera.errors import InvalidInput, NotFound, TesseraError
from tessera.identity.namespaces import Namespace
from tessera.identity.service import identity_of_xid, xid_of
from tessera.identity.simulate import simulate
from tessera.model import Identity
from tessera.ops.alerts import alert_counts
from tessera.platform import Sandbox

router = APIRouter(tags=["Identity"])
IDENTITY = "/data/core/identity"
NAMESPACES = "/data/core/idnamespace/identities"
MAX_IDENTITIES = 1000
GRAPH_TYPES = {"private graph": True, "none": False}

XID = "RW1haWwfYWxpY2VAYWNtZS5jb20"
CLUSTER_EXAMPLE = {
    "xid": XID,
    "compositeXid": {"nsid": 6, "namespace": "Email", "id": "alice@acme.com"},
    "members": [
        {"xid": XID, "nsid": 6, "namespace": "Email", "id": "alice@acme.com"},
        {"xid": "Q1JNSUQfMTIz", "nsid": None, "namespace": "CRMID", "id": "123"},
    ],
}
NAMESPACE_EXAMPLE = {
    "code": "Email",
    "id": 6,
    "name": "Email",
    "idType": "EMAIL",
    "description": "Email",
    "custom": False,
    "status": "ACTIVE",
    "createTime": 1732780800000,
    "updateTime": 1732780800000,
}


def _namespace(sandbox: Sandbox, code: str | None = None, nsid: int | str | None = None) -> Namespace:
    # batch bodies carry these from JSON: anything but a string or an integer is the caller's error
    if nsid is not None and (isinstance(nsid, bool) or not isinstance(nsid, int | str)):
        raise InvalidInput("nsid is a numeric namespace id", path="nsid")
    if code is not None and not isinstance(code, str):
        raise InvalidInput("The namespace is a namespace code string", path="ns")
    if nsid is not None:
        return sandbox.identity.namespace(int(nsid) if str(nsid).isdigit() else str(nsid))
    if code is None:
        raise InvalidInput("Give a namespace code (namespace) or a numeric id (nsId)", path="namespace")
    try:
        return sandbox.identity.namespace(code)
    except NotFound:
        for ns in sandbox.identity.namespaces():
            if ns.code.lower() == code.lower():
                return ns
        raise


def _identity_from(
    sandbox: Sandbox, *, xid: str | None, ns: str | None, nsid: Any, value: str | None
) -> Identity:
    if xid:
        return identity_of_xid(xid)
    if not value:
        raise InvalidInput("Give an xid, or an id with its namespace (namespace or nsId)", path="id")
    return Identity(_namespace(sandbox, ns, nsid).code, value)


def _composite(sandbox: Sandbox, identity: Identity) -> dict[str, Any]:
    try:
        nsid = sandbox.identity.namespace(identity.namespace).id
    except NotFound:
        nsid = None
    return {"xid": xid_of(identity), "nsid": nsid, "namespace": identity.namespace, "id": identity.id}


def _stitched(graph_type: str | None) -> bool:
    if graph_type is None:
        return True
    try:
        return GRAPH_TYPES[graph_type.lower()]
    except (KeyError, AttributeError):  # AttributeError: a JSON body gave a non-string
        raise InvalidInput("graph-type must be 'Private Graph' or 'None'", path="graph-type") from None


def _cluster(sandbox: Sandbox, identity: Identity, stitched: bool) -> dict[str, Any]:
    composite = _composite(sandbox, identity)
    members = [_composite(sandbox, m) for m in sorted(sandbox.identity.cluster(identity, stitched=stitched))]
    return {
        "xid": composite["xid"],
        "compositeXid": {k: composite[k] for k in ("nsid", "namespace", "id")},
        "members": members,
    }


def _history(sandbox: Sandbox, identity: Identity) -> dict[str, Any]:
    composite = _composite(sandbox, identity)
    return {
        "xid": composite["xid"],
        "compositeXid": {k: composite[k] for k in ("nsid", "namespace", "id")},
        "clusterHistory": [
            {
                "clusterId": h["profileId"],
                "cRecordedTS": h["timestamp"],
                "kind": h["kind"],
                "other": h["other"],
            }
            for h in sandbox.identity.history(identity)
        ],
    }


def _mapping(sandbox: Sandbox, identity: Identity, target: Namespace) -> dict[str, Any]:
    composite = _composite(sandbox, identity)
    return {
        "xid": composite["xid"],
        "compositeXid": {k: composite[k] for k in ("nsid", "namespace", "id")},
        "mapping": [
            {
                "xid": xid_of(m),
                "compositeXid": {k: v for k, v in _composite(sandbox, m).items() if k != "xid"},
                "lastAssociationTime": ts,
            }
            for m, ts in sandbox.identity.mapping(identity, target.code)
        ],
    }


def _batch_identities(sandbox: Sandbox, body: dict[str, Any]) -> tuple[list[Identity], list[str], list[Any]]:
    xids = body.get("xids") or []
    composites = body.get("compositeXids") or []
    if not isinstance(xids, list) or not isinstance(composites, list):
        raise InvalidInput("xids and compositeXids must be arrays", path="xids")
    if not xids and not composites:
        raise InvalidInput("Give xids or compositeXids", path="xids")
    if len(xids) + len(composites) > MAX_IDENTITIES:
        raise InvalidInput(f"At most {MAX_IDENTITIES} identities per call", path="xids")
    found: list[Identity] = []
    bad_xids: list[str] = []
    bad_nids: list[Any] = []
    for xid in xids:
        try:
            found.append(identity_of_xid(str(xid)))
        except TesseraError:
            bad_xids.append(str(xid))
    for i, item in enumerate(composites):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise InvalidInput('Each compositeXid is {"nsid" or "ns", "id"}', path=f"compositeXids[{i}]")
        try:
            found.append(
                _identity_from(
                    sandbox,
                    xid=None,
                    ns=item.get("ns") or item.get("namespace"),
                    nsid=item.get("nsid"),
                    value=item["id"],
                )
            )
        except TesseraError:
            bad_nids.append(item)
    return found, bad_xids, bad_nids


XidQ = Annotated[str | None, Query(description="An XID (native identity id).")]
NsQ = Annotated[str | None, Query(description="Namespace code, e.g. Email.")]
NsIdQ = Annotated[str | None, Query(alias="nsId", description="Numeric namespace id, e.g. 6.")]
IdQ = Annotated[str | None, Query(alias="id", description="Identity value.")]
GraphQ = Annotated[str | None, Query(alias="graph-type", description="'Private Graph' (default) or 'None'.")]


@router.get(IDENTITY + "/identity", **op({"xid": XID}, errors=(400, 404)), summary="XID of an identity")
def get_xid(sandbox: SandboxDep, namespace: NsQ = None, nsId: NsIdQ = None, id: IdQ = None) -> JsonResponse:  # noqa: A002,N803
    """The opaque native id of ``namespace``/``nsId`` + ``id``."""
    identity = _identity_from(sandbox, xid=None, ns=namespace, nsid=nsId, value=id)
    return ok({"xid": xid_of(identity)})


@router.get(
    IDENTITY + "/cluster/members",
    **op(CLUSTER_EXAMPLE, errors=(400, 404)),
    summary="Identities in the graph of one identity",
)
def cluster_members(
    sandbox: SandboxDep,
    xid: XidQ = None,
    namespace: NsQ = None,
    nsId: NsIdQ = None,
    id: IdQ = None,
    graph_type: GraphQ = None,  # noqa: A002,N803
) -> JsonResponse:
    """The identity's cluster (just itself with ``graph-type=None`` or when it is in no graph)."""
    identity = _identity_from(sandbox, xid=xid, ns=namespace, nsid=nsId, value=id)
    return ok(_cluster(sandbox, identity, _stitched(graph_type)))


@router.post(
    IDENTITY + "/clusters/members",
    **op(
        {"version": "1.0", "clusters": [CLUSTER_EXAMPLE], "unprocessedXids": [], "unprocessedNids": []},
        body={"compositeXids": [{"ns": "Email", "id": "alice@acme.com"}], "graph-type": "Private Graph"},
        errors=(400, 404),
    ),
    summary="Graphs of up to 1000 identities",
)
async def clusters_members(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """One ``clusters`` entry per requested identity (even when several share a graph)."""
    body = json_object(parse_json(await request.body()))
    stitched = _stitched(body.get("graph-type"))
    identities, bad_xids, bad_nids = _batch_identities(sandbox, body)
    clusters = [_cluster(sandbox, i, stitched) for i in identities]
    return ok(
        {"version": "1.0", "clusters": clusters, "unprocessedXids": bad_xids, "unprocessedNids": bad_nids}
    )


HISTORY_EXAMPLE = {
    "xid": XID,
    "compositeXid": {"nsid": 6, "namespace": "Email", "id": "alice@acme.com"},
    "clusterHistory": [{"clusterId": "p-1", "cRecordedTS": 1732780800000, "kind": "created", "other": None}],
}


@router.get(
    IDENTITY + "/cluster/history",
    **op(HISTORY_EXAMPLE, errors=(400, 404)),
    summary="Cluster history of one identity",
)
def cluster_history(
    sandbox: SandboxDep, xid: XidQ = None, namespace: NsQ = None, nsId: NsIdQ = None, id: IdQ = None
) -> JsonResponse:  # noqa: A002,N803
    """Every cluster the identity's profile went through (created, merged, split), oldest first."""
    identity = _identity_from(sandbox, xid=xid, ns=namespace, nsid=nsId, value=id)
    return ok(_history(sandbox, identity))


@router.post(
    IDENTITY + "/clusters/history",
    **op(
        {"version": "1.0", "xidsClusterHistory": [HISTORY_EXAMPLE], "unprocessedXids": []},
        body={"compositeXids": [{"ns": "Email", "id": "alice@acme.com"}]},
        errors=(400, 404),
    ),
    summary="Cluster history of many identities",
)
async def clusters_history(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """One history entry per requested identity."""
    body = json_object(parse_json(await request.body()))
    identities, bad_xids, bad_nids = _batch_identities(sandbox, body)
    return ok(
        {
            "version": "1.0",
            "xidsClusterHistory": [_history(sandbox, i) for i in identities],
            "unprocessedXids": bad_xids,
            "unprocessedNids": bad_nids,
        }
    )


MAPPING_EXAMPLE = {
    "xid": XID,
    "compositeXid": {"nsid": 6, "namespace": "Email", "id": "alice@acme.com"},
    "mapping": [
        {
            "xid": "Q1JNSUQfMTIz",
            "compositeXid": {"nsid": None, "namespace": "CRMID", "id": "123"},
            "lastAssociationTime": 1732780800000,
        }
    ],
}


@router.get(
    IDENTITY + "/mapping",
    **op(
        MAPPING_EXAMPLE,
        errors=(400, 404),
        extra={204: {"description": "Nothing maps to the target namespace"}},
    ),
    summary="Identities of one target namespace in the graph",
)
def get_mapping(
    sandbox: SandboxDep,
    targetNs: Annotated[str, Query(description="Target namespace id or code")],  # noqa: N803
    xid: XidQ = None,
    namespace: NsQ = None,
    nsId: NsIdQ = None,  # noqa: N803
    id: IdQ = None,  # noqa: A002
) -> Response:
    """Identities of ``targetNs`` linked to the identity, most recently asserted first; 204 when none."""
    identity = _identity_from(sandbox, xid=xid, ns=namespace, nsid=nsId, value=id)
    target = _namespace(sandbox, None, targetNs)
    result = _mapping(sandbox, identity, target)
    return ok(result) if result["mapping"] else empty(204)


@router.post(
    IDENTITY + "/mappings",
    **op(
        {"version": "1.0", "mappings": [MAPPING_EXAMPLE], "unprocessedXids": [], "unprocessedNids": []},
        body={
            "compositeXids": [{"ns": "Email", "id": "alice@acme.com"}],
            "targetNs": "CRMID",
            "graph-type": "Private Graph",
        },
        errors=(400, 404),
        extra={204: {"description": "Nothing maps to the target namespace"}},
    ),
    summary="Mappings of many identities",
)
async def post_mappings(request: Request, sandbox: SandboxDep) -> Response:
    """One mapping entry per requested identity; 204 when nothing maps at all."""
    body = json_object(parse_json(await request.body()))
    target_raw = body.get("targetNs")
    if target_raw is None:
        raise InvalidInput("targetNs is required", path="targetNs")
    target = _namespace(sandbox, None, str(target_raw))
    identities, bad_xids, bad_nids = _batch_identities(sandbox, body)
    mappings = [_mapping(sandbox, i, target) for i in identities]
    if not any(m["mapping"] for m in mappings):
        return empty(204)
    return ok(
        {"version": "1.0", "mappings": mappings, "unprocessedXids": bad_xids, "unprocessedNids": bad_nids}
    )


# -- namespaces ---------------------------------------------------------------------------------
@router.get(
    NAMESPACES,
    **op([NAMESPACE_EXAMPLE], errors=(400, 404)),
    tags=["Identity namespaces"],
    summary="List identity namespaces",
)
def list_namespaces(sandbox: SandboxDep) -> JsonResponse:
    """Standard and custom namespaces of the sandbox."""
    return ok([sandbox.identity.namespace_doc(ns) for ns in sandbox.identity.namespaces()])


@router.get(
    NAMESPACES + "/{namespaceId}",
    **op(NAMESPACE_EXAMPLE, errors=(400, 404)),
    tags=["Identity namespaces"],
    summary="Read a namespace",
)
def get_namespace(namespaceId: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """One namespace by numeric id or code."""
    return ok(sandbox.identity.namespace_doc(_namespace(sandbox, namespaceId)))


@router.post(
    NAMESPACES,
    **op(
        {
            **NAMESPACE_EXAMPLE,
            "code": "UserID",
            "id": 100001,
            "name": "User ID",
            "idType": "CROSS_DEVICE",
            "custom": True,
        },
        body={
            "name": "User ID",
            "code": "UserID",
            "description": "Login id of the web shop",
            "idType": "Cross_device",
        },
        errors=(400, 404, 409),
    ),
    tags=["Identity namespaces"],
    summary="Create a custom namespace",
)
async def create_namespace(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """A custom namespace; its code and type cannot change afterwards."""
    body = json_object(parse_json(await request.body()))
    values = {k: body.get(k) for k in ("code", "name", "idType", "description")}
    for field in ("code", "idType"):
        if not isinstance(values[field], str) or not values[field]:
            raise InvalidInput(f"{field} is required", path=field)
    for field in ("name", "description"):
        if values[field] is not None and not isinstance(values[field], str):
            raise InvalidInput(f"{field} must be a string", path=field)
    ns = await run_in_threadpool(
        sandbox.identity.create_namespace,
        str(values["code"]),
        str(values["name"] or values["code"]),
        str(values["idType"]),
        str(values["description"] or ""),
    )
    return ok(sandbox.identity.namespace_doc(ns))


# -- Tessera extras -----------------------------------------------------------------------------
@router.post(
    "/tessera/identity/simulate",
    **op(
        {
            "graphs": [
                {"identities": [{"namespace": "CRMID", "id": "John"}, {"namespace": "ECID", "id": "111"}]}
            ],
            "rows": [{"primary": {"namespace": "CRMID", "id": "Jane"}, "rejected": None}],
        },
        body={
            "text": "CRMID: Jane, ECID: 111\nCRMID: John, ECID: 111",
            "unique": ["CRMID"],
            "priority": ["CRMID", "ECID"],
            "limit": 50,
        },
        errors=(400,),
    ),
    tags=["Tessera"],
    summary="Identity graph simulator",
)
async def simulate_graph(request: Request) -> JsonResponse:
    """Run ``NS: value, NS: value`` lines through the production linking engine with the given
    rules, storing nothing. ``validate: true`` also applies the identity value rules."""
    body = json_object(parse_json(await request.body()))
    text = body.get("text")
    if not isinstance(text, str):
        raise InvalidInput("text (one 'NS: value, NS: value' row per line) is required", path="text")
    unique, priority = body.get("unique", []), body.get("priority", [])
    if not all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in (unique, priority)):
        raise InvalidInput("unique and priority are arrays of namespace codes", path="unique")
    limit = body.get("limit", 50)
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise InvalidInput("limit is a positive integer or null", path="limit")
    if len(text) > 1_000_000:
        raise InvalidInput("text is limited to 1,000,000 characters", path="text")
    result = await run_in_threadpool(
        lambda: simulate(
            text, unique=unique, priority=priority, limit=limit, validate=bool(body.get("validate", False))
        )
    )
    return ok(result.to_json())


@router.get(
    "/tessera/identity/explain",
    **op(
        {
            "links": [
                {
                    "from": {"namespace": "Email", "id": "alice@acme.com"},
                    "to": {"namespace": "CRMID", "id": "123"},
                    "firstSeen": 1,
                    "lastSeen": 2,
                    "datasetId": "5c8c3c555033b814b69f947f",
                    "batchId": None,
                }
            ]
        },
        errors=(400, 404),
    ),
    tags=["Tessera"],
    summary="Why two identities share a profile",
)
def explain(
    sandbox: SandboxDep,
    from_: Annotated[str, Query(alias="from", description="NS:value, e.g. Email:alice@acme.com")],
    to: Annotated[str, Query(description="NS:value")],
) -> JsonResponse:
    """The chain of links (with first/last seen, dataset and batch) joining two identities."""

    def parse(text: str, path: str) -> Identity:
        ns, sep, value = text.partition(":")
        if not sep or not ns or not value:
            raise InvalidInput("Write identities as Namespace:value", path=path)
        return Identity(_namespace(sandbox, ns).code, value)

    return ok({"links": sandbox.identity.explain(parse(from_, "from"), parse(to, "to"))})


@router.get(
    "/tessera/stats",
    **op(
        {
            "sandbox": "prod",
            "profiles": 2,
            "datasets": 2,
            "batches": 1,
            "identity": {"graphs": 1, "identities": 3, "links": 2},
            "alerts": {"graph_size": 0, "junk_identity": 1},
        },
        errors=(400, 404),
    ),
    tags=["Tessera"],
    summary="Counts of profiles, datasets, batches and identity graphs",
)
def stats(sandbox: SandboxDep) -> JsonResponse:
    """What the sandbox holds: profiles, datasets, batches and identity-graph statistics."""
    return ok(
        {
            "sandbox": sandbox.name,
            "profiles": sandbox.profiles.count(),
            "datasets": len(sandbox.datasets.list()),
            "batches": len(sandbox.batches.list()),
            "identity": sandbox.identity.stats(),
            "alerts": alert_counts(sandbox.store),
        }
    )
