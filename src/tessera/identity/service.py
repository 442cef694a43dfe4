"""The identity graph of one sandbox, persisted in its point store.

The engine (:class:`~tessera.identity.graph.IdentityGraph`) is pure and in memory; this module
keeps it durable. Each component is one document (members with first-seen times, links with
times and sources), rewritten in the same commit as the rows that changed it, so a restart
rebuilds exactly the graph that was acknowledged.

Tables: ``id_components`` (profile id → component), ``id_history`` (cluster history),
``id_meta`` (sequence and refusal counters), ``id_settings`` (linking rules), ``namespaces``
(custom namespaces).

Identities in no graph (a record with a single identity) still have a profile: its id is
derived from the identity itself (``i-…``), so it needs no storage and turns into the graph's
id the moment the identity is linked.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson

from tessera.catalog.ids import epoch_ms
from tessera.errors import Conflict, IdentityRejected, InvalidInput, NotFound
from tessera.gc_pause import gc_paused
from tessera.identity.bulk import resolve_bulk
from tessera.identity.graph import (
    GraphChanges,
    HistoryEntry,
    IdentityGraph,
    IdentityRow,
    LinkRow,
)
from tessera.identity.namespaces import DEFAULT_NAMESPACES, IdentityType, Namespace, builds_graph
from tessera.identity.rules import LinkingRules, choose_primary
from tessera.identity.validation import validate_row
from tessera.model import Identity
from tessera.ops.alerts import check_components
from tessera.store import PointStore, WriteBatch, get_json, scan_json

if TYPE_CHECKING:
    from tessera.platform import Sandbox

COMPONENTS = "id_components"
HISTORY = "id_history"
META = "id_meta"
SETTINGS = "id_settings"
NAMESPACES = "namespaces"
SINGLETON_PREFIX = "i-"


def singleton_id(identity: Identity) -> str:
    """Profile id of an identity that is in no graph (reversible, no storage needed).

    >>> singleton_id(Identity("Email", "a@b.c"))
    'i-RW1haWwfYUBiLmM'
    """
    raw = f"{identity.namespace}\x1f{identity.id}".encode()
    return SINGLETON_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def from_singleton_id(profile_id: str) -> Identity | None:
    if not profile_id.startswith(SINGLETON_PREFIX):
        return None
    body = profile_id[len(SINGLETON_PREFIX) :]
    try:
        ns, _, value = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode().partition("\x1f")
    except (ValueError, UnicodeDecodeError):
        return None
    return Identity(ns, value) if ns and value else None


def xid_of(identity: Identity) -> str:
    """The identity's opaque native id (XID), usable wherever the API takes an identity."""
    return singleton_id(identity)[len(SINGLETON_PREFIX) :]


def identity_of_xid(xid: str) -> Identity:
    ident = from_singleton_id(SINGLETON_PREFIX + xid)
    if ident is None:
        raise InvalidInput(f"{xid!r} is not a valid XID", path="xid")
    return ident


_history_entry = partial(tuple.__new__, HistoryEntry)
"""A ``HistoryEntry`` from a stored row, at C speed (there is one per graph change)."""


def _stored_meta(store: PointStore) -> dict[str, Any]:
    """The graph's stored counters as ``flush`` writes them: ``{"seq": …, "refused": {…}}``."""
    meta = get_json(store, META, "state") or {}
    return {"seq": meta.get("seq", 0), "refused": meta.get("refused", {})}


@dataclass
class LinkOutcome:
    """What linking one row did: its primary identity and every profile it touched."""

    primary: Identity
    changed_profiles: set[str] = field(default_factory=set)
    """Profiles whose membership the row changed (merges, splits, new links)."""
    touched_profiles: set[str] = field(default_factory=set)
    """``changed_profiles`` plus the profile the row is stored under."""


@dataclass
class BatchLinkOutcome:
    """What linking a batch of rows did: each row's primary or rejection, and the profiles touched."""

    primaries: list[Identity | None]
    rejected: list[str | None]
    """Each row's rejection by the linking rules, or ``None``."""
    changed_profiles: set[str]
    touched_profiles: set[str]


class IdentityService:
    """Namespaces, linking rules and the persisted identity graph of one sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self._lock = threading.RLock()
        self._dirty: set[str] = set()
        self._gone: set[str] = set()
        self._history_flushed = 0
        self._meta_saved: dict[str, Any] = {}
        self._flushes = 0
        self._namespaces: list[Namespace] | None = None
        self._types: dict[str, IdentityType] = {}
        self.graph: IdentityGraph = self._load()

    # -- settings --------------------------------------------------------------------------------

    @property
    def rules(self) -> LinkingRules:
        return self.graph.rules

    @property
    def graph_limit(self) -> int:
        return self.graph.rules.limit or 10**9

    def _stored_rules(self) -> LinkingRules:
        doc = get_json(self._sandbox.store, SETTINGS, "rules")
        if doc is None:
            return LinkingRules(limit=self._sandbox.settings.graph_limit)
        return LinkingRules.of(doc.get("unique", []), doc.get("priority", []), doc.get("limit"))

    def settings(self) -> dict[str, Any]:
        r = self.rules
        return {"unique": sorted(r.unique), "priority": list(r.priority), "limit": r.limit}

    def set_rules(
        self,
        *,
        unique: Iterable[str] = (),
        priority: Iterable[str] = (),
        limit: int | None = 50,
        re_resolve: bool = False,
    ) -> dict[str, Any]:
        """Change the linking rules. They apply to new data; ``re_resolve`` also applies them to
        existing graphs (profile ids stay where a component does not change)."""
        rules = LinkingRules.of(unique, priority, limit)
        known = {ns.code for ns in self.namespaces()}
        for code in [*rules.unique, *rules.priority]:
            if code not in known:
                raise InvalidInput(f"Unknown namespace {code!r} in the linking rules", path="namespaces")
        with self._sandbox.write_lock:
            self._sandbox.store.write(
                WriteBatch().put_json(
                    SETTINGS,
                    "rules",
                    {"unique": sorted(rules.unique), "priority": list(rules.priority), "limit": rules.limit},
                )
            )
            self.graph.set_rules(rules)
            if re_resolve:
                self.re_resolve()
        return self.settings()

    def re_resolve(self) -> dict[str, Any]:
        """Apply the current rules to every existing graph, then refresh the profiles that changed."""
        from tessera.model import utcnow

        with self._sandbox.write_lock:
            staged = self._sandbox.begin()
            changes = self.graph.re_resolve(ts=utcnow())
            touched = self._absorb(changes, ())
            self.flush(staged)
            self._sandbox.profiles.refresh(staged, touched, utcnow())
            self._sandbox.segments_on_change(staged, touched, utcnow())
            staged.commit()
        return {"profilesChanged": len(touched)}

    # -- namespaces ------------------------------------------------------------------------------

    def namespaces(self) -> list[Namespace]:
        cached = self._namespaces
        if cached is None:
            custom = [_ns_from_doc(doc) for _, doc in scan_json(self._sandbox.store, NAMESPACES)]
            known = {ns.code for ns in custom}
            cached = self._namespaces = [ns for ns in DEFAULT_NAMESPACES if ns.code not in known] + custom
            self._types = {ns.code: ns.type for ns in cached}
        return list(cached)

    def namespace(self, code_or_id: str | int) -> Namespace:
        for ns in self.namespaces():
            if ns.code == code_or_id or (ns.id is not None and str(ns.id) == str(code_or_id)):
                return ns
        raise NotFound(f"Identity namespace {code_or_id!r} does not exist", path="namespace")

    def create_namespace(self, code: str, name: str, id_type: str, description: str = "") -> Namespace:
        """Create a custom namespace (code and type are immutable afterwards)."""
        if not code or not code.replace("_", "").replace("-", "").isalnum() or len(code) > 64:
            raise InvalidInput(
                "A namespace code uses letters, digits, '-' and '_' (1-64 characters)", path="code"
            )
        try:
            kind = IdentityType(id_type.upper().replace("MOBILE", "PHONE"))
        except ValueError:
            allowed = ", ".join(t.value for t in IdentityType)
            raise InvalidInput(
                f"Unknown identity type {id_type!r}; use one of {allowed}", path="idType"
            ) from None
        if any(ns.code.lower() == code.lower() for ns in self.namespaces()):
            raise Conflict(f"A namespace with code {code!r} already exists", path="code")
        used = [ns.id for ns in self.namespaces() if ns.id is not None]
        ns = Namespace(code, max([100000, *used]) + 1, name or code, kind, custom=True)
        doc = _ns_to_doc(ns, description)
        self._sandbox.store.write(WriteBatch().put_json(NAMESPACES, code, doc))
        self._namespaces = None
        self.graph = self._load()
        return ns

    def namespace_doc(self, ns: Namespace) -> dict[str, Any]:
        stored = get_json(self._sandbox.store, NAMESPACES, ns.code)
        return stored if stored else _ns_to_doc(ns, ns.name)

    # -- ingestion -------------------------------------------------------------------------------

    def check_row(self, identities: Sequence[Identity]) -> list[Identity]:
        """Drop refused identity values; refuse the row when none is left or it carries too many."""
        result = validate_row(identities, max_identities=self._sandbox.settings.max_identities_per_row)
        if result.row_refused:
            raise IdentityRejected(result.row_refused, path="identityMap")
        if not result.identities and result.refused:
            raise IdentityRejected("; ".join(r.reason for r in result.refused), path="identityMap")
        return list(result.identities)

    def link_row(
        self,
        store: PointStore,
        identities: Sequence[Identity],
        *,
        declared_primary: Identity | None,
        is_event: bool,
        seen_at: datetime,
        dataset_id: str,
        batch_id: str | None,
        link: bool,
    ) -> LinkOutcome:
        """Link one validated row into the graph (when ``link``) and choose its primary identity."""
        before = {i: self.graph.profile_id(i) for i in identities}
        if link:
            result = self.graph.add_row(
                identities,
                ts=seen_at,
                dataset=dataset_id,
                batch=batch_id,
                primary=declared_primary,
                record=not is_event,
            )
            if result.rejected is not None:
                raise IdentityRejected(result.rejected, path="identityMap")
            primary = result.primary
            touched = self._absorb(result.changes, identities)
        else:
            primary = self._choose_primary(identities, declared_primary, is_event)
            touched = set()
        assert primary is not None
        for ident, old in before.items():
            new = self.graph.profile_id(ident)
            if old != new:
                touched.add(old if old is not None else singleton_id(ident))
            if new is not None and link and len(identities) > 1:
                self._dirty.add(new)
        return LinkOutcome(primary, touched, touched | {self.profile_id_of(primary)})

    def link_rows(
        self,
        rows: Sequence[Sequence[Identity]],
        *,
        declared_primaries: Sequence[Identity | None],
        is_event: bool,
        seen_at: Sequence[datetime],
        dataset_id: str,
        batch_id: str | None,
        link: bool,
    ) -> BatchLinkOutcome:
        """:meth:`link_row` for many rows at once, in row order, with the graph resolved in bulk.

        The graph ends exactly as if each row were linked in turn (``resolve_bulk``). The profile
        sets hold every profile with stored state that any of the rows changed: ids a component
        had only between two rows of the batch are left out, as nothing was ever stored under them.
        """
        n = len(rows)
        if not link:
            primaries: list[Identity | None] = [
                self._choose_primary(idents, declared_primaries[i], is_event) for i, idents in enumerate(rows)
            ]
            touched = {self.profile_id_of(p) for p in primaries if p is not None}
            return BatchLinkOutcome(primaries, [None] * n, set(), touched)
        graph = self.graph
        profile_id = graph.profile_id
        before: dict[Identity, str | None] = {}
        for idents in rows:
            for ident in idents:
                if ident not in before:
                    before[ident] = profile_id(ident)
        bulk = resolve_bulk(
            graph,
            rows,
            ts=seen_at,
            dataset=dataset_id,
            batch=batch_id,
            primaries=declared_primaries,
            record=not is_event,
        )
        changed = self._absorb(bulk.changes, ())
        kept: set[Identity] = set()
        dirty = self._dirty
        for i, idents in enumerate(rows):
            if bulk.rejected[i] is not None:
                continue
            kept.update(idents)
            if len(idents) > 1:
                for ident in idents:
                    pid = profile_id(ident)
                    if pid is not None:
                        dirty.add(pid)
        for ident in kept:
            old = before[ident]
            if old != profile_id(ident):
                changed.add(old if old is not None else singleton_id(ident))
        touched = set(changed)
        for i, prim in enumerate(bulk.primary):
            if bulk.rejected[i] is None and prim is not None:
                touched.add(self.profile_id_of(prim))
        return BatchLinkOutcome(bulk.primary, bulk.rejected, changed, touched)

    def _choose_primary(
        self, identities: Sequence[Identity], declared: Identity | None, is_event: bool
    ) -> Identity:
        if declared is not None and declared in identities and (not is_event or not self.rules.priority):
            return declared
        chosen = choose_primary(identities, self.rules)
        assert chosen is not None
        return chosen

    def _absorb(self, changes: GraphChanges | None, identities: Iterable[Identity]) -> set[str]:
        touched: set[str] = set()
        if changes is None:
            return touched
        for pid in changes.profile_ids:
            self._dirty.add(pid)
            touched.add(pid)
        for old, new in changes.merged.items():
            self._gone.add(old)
            touched.update((old, new))
        for new, old in changes.split.items():
            touched.update((new, old))
            self._dirty.update((new, old))
        for pid in changes.deleted:
            self._gone.add(pid)
            touched.add(pid)
        for ident in changes.removed:
            touched.add(singleton_id(ident))
        return touched

    def delete(self, identity: Identity) -> set[str]:
        """Remove an identity and its links from the graph (call under the write lock, then flush).

        Returns the profiles touched: its graph may split, and the identity becomes a profile of
        its own (whose data the caller deletes or keeps).
        """
        changes = self.graph.delete_identity(identity, ts=epoch_ms())
        return self._absorb(changes, [identity]) | {singleton_id(identity)}

    def unlink(self, a: Identity, b: Identity) -> set[str]:
        """Remove the link between two identities (under the write lock, then flush)."""
        changes = self.graph.unlink(a, b, ts=epoch_ms())
        return self._absorb(changes, [a, b])

    def flush(self, store: PointStore) -> None:
        """Write the components, history and counters changed since the last flush (in ``store``'s commit)."""
        wb = WriteBatch()
        changed: list[tuple[str, list[IdentityRow], list[LinkRow]]] = []
        for pid in self._dirty | self._gone:
            state = self.graph.component_state(pid)
            if state is None:
                wb.delete(COMPONENTS, pid)
                continue
            prof, members, links = state
            changed.append((pid, members, links))
            wb.put_json(
                COMPONENTS,
                pid,
                {
                    "created": prof.created_seq,
                    "members": [[m.namespace, m.id, m.first_seen] for m in members],
                    "links": [list(lr) for lr in links],
                },
            )
        for n, h in enumerate(self.graph.history_since(self._history_flushed)):
            wb.put_json(HISTORY, f"{h.seq:015d}-{self._history_flushed + n:09d}", list(h))
        self._history_flushed = self.graph.history_length()
        meta = {"seq": self.graph.seq, "refused": self.graph.refused_counts()}
        # Rows that link nothing (most events) change neither: one table less in their commit.
        if meta != self._meta_saved:
            wb.put_json(META, "state", meta)
            self._meta_saved = meta
        check_components(self._sandbox, store, wb, changed)  # graph-health alerts, same commit
        store.write(wb)
        self._dirty.clear()
        self._gone.clear()
        self._flushes += 1

    @property
    def version(self) -> tuple[int, int, int]:
        """Changes whenever this process flushed the graph or took in another's changes: a key
        for caches of what ingestion may change (statistics, profile counts)."""
        return (id(self.graph), self.graph.seq, self._flushes)

    def reload(self) -> None:
        """Forget in-memory changes and rebuild the graph from the store (after a failed commit)."""
        self.graph = self._load()

    def catch_up(self, profile_ids: Iterable[str], history_keys: Iterable[str]) -> None:
        """Apply what another process committed: the components it wrote or deleted, the history
        rows it appended and its counters, read from the store (cheaper than :meth:`reload` by
        the size of the graph). Call between writes (under the write lock)."""
        store = self._sandbox.store
        pids = sorted(set(profile_ids))
        docs = {pid: orjson.loads(raw) for pid, raw in store.get_many(COMPONENTS, pids).items()}
        rows = store.get_many(HISTORY, sorted(set(history_keys)))
        meta = _stored_meta(store)
        with self._lock, gc_paused():
            self.graph.replace_components(
                pids,
                ((pid, doc["created"], doc["members"], doc["links"]) for pid, doc in docs.items()),
                history=[_history_entry(orjson.loads(rows[k])) for k in sorted(rows)],
                seq=meta["seq"],
                refused=meta["refused"],
            )
            self._history_flushed = self.graph.history_length()
            self._meta_saved = meta
            self._flushes += 1

    def _load(self) -> IdentityGraph:
        store = self._sandbox.store
        rules = self._stored_rules()
        types = {ns.code: ns.type for ns in self.namespaces()}
        components = (
            (pid, doc["created"], doc["members"], doc["links"]) for pid, doc in scan_json(store, COMPONENTS)
        )
        with gc_paused():  # millions of containers and no cycles: half the time went to the collector
            history = list(map(_history_entry, (row for _, row in scan_json(store, HISTORY))))
            meta = _stored_meta(store)
            graph = IdentityGraph.from_components(
                components, history, meta["seq"], meta["refused"], rules, types=types
            )
        self._history_flushed = len(history)
        self._meta_saved = meta
        self._dirty.clear()
        self._gone.clear()
        return graph

    # -- queries ---------------------------------------------------------------------------------

    def profile_id_of(self, identity: Identity, store: PointStore | None = None) -> str:
        """The profile id of whoever holds ``identity`` (derived from it when in no graph)."""
        pid = self.graph.profile_id(identity)
        return pid if pid is not None else singleton_id(identity)

    def member_columns(self, profile_ids: Iterable[str] = ()) -> tuple[list[str], list[str], list[str]]:
        """:meth:`members` of every profile that has a graph, and of each of ``profile_ids`` that
        is one identity in no graph (a :func:`singleton_id`), as three columns (profile id,
        namespace, value) in no order: for batch jobs that join stored rows to profiles."""
        pids, namespaces, values = self.graph.member_columns()
        for pid in profile_ids:
            if pid.startswith(SINGLETON_PREFIX):
                for member in self.members(pid):
                    pids.append(pid)
                    namespaces.append(member.namespace)
                    values.append(member.id)
        return pids, namespaces, values

    def members(self, profile_id: str, store: PointStore | None = None) -> list[Identity]:
        """Identities of a profile; empty when the profile id is unknown or has moved."""
        single = from_singleton_id(profile_id)
        if single is not None:
            return [] if self.graph.profile_id(single) is not None else [single]
        try:
            return list(self.graph.profile_members(profile_id))
        except NotFound:
            return []

    def size(self, profile_id: str) -> int:
        """How many identities :meth:`members` would list, without listing them."""
        single = from_singleton_id(profile_id)
        if single is not None:
            return 0 if self.graph.profile_id(single) is not None else 1
        return self.graph.profile_size(profile_id)

    def cluster(self, identity: Identity, *, stitched: bool = True) -> list[Identity]:
        """Cluster members of an identity (just itself without stitching or when in no graph)."""
        return list(self.graph.members(identity)) if stitched else [identity]

    def primary_of(self, members: Sequence[Identity]) -> Identity | None:
        """The identity a profile is known by: the highest-priority namespace among its members."""
        if not members:
            return None
        people = [
            m for m in members if self._type(m.namespace) not in (IdentityType.COOKIE, IdentityType.DEVICE)
        ]
        return choose_primary(people or list(members), self.rules)

    def _type(self, code: str) -> IdentityType:
        if self._namespaces is None:
            self.namespaces()
        return self._types.get(code, IdentityType.CROSS_DEVICE)

    def describe_members(
        self, members: Sequence[Identity], store: PointStore | None = None
    ) -> list[dict[str, Any]]:
        primary = self.primary_of(members)
        out = []
        for m in sorted(members):
            entry: dict[str, Any] = {"namespace": {"code": m.namespace}, "id": m.id, "xid": xid_of(m)}
            if m == primary:
                entry["primary"] = True
            out.append(entry)
        return out

    def history(self, identity: Identity) -> list[dict[str, Any]]:
        return [
            {"seq": h.seq, "timestamp": h.ts, "kind": h.kind, "profileId": h.profile_id, "other": h.other}
            for h in self.graph.history(identity)
        ]

    def mapping(self, identity: Identity, target_namespace: str) -> list[tuple[Identity, int]]:
        return self.graph.mapping(identity, target_namespace)

    def explain(self, a: Identity, b: Identity) -> list[dict[str, Any]]:
        """The chain of links joining two identities of one profile, with times and datasets."""
        return [
            {
                "from": link.a.to_json(),
                "to": link.b.to_json(),
                "firstSeen": link.first_seen,
                "lastSeen": link.last_seen,
                "datasetId": link.dataset,
                "batchId": link.batch,
            }
            for link in self.graph.explain(a, b)
        ]

    def stats(self, top: int = 10) -> dict[str, Any]:
        s = self.graph.stats(top)
        return {
            "graphs": s.profiles,
            "identities": s.identities,
            "links": s.links,
            "sizeHistogram": {str(k): v for k, v in s.size_histogram.items()},
            "largest": [{"profileId": pid, "size": size} for pid, size in s.largest],
            "identitiesPerNamespace": s.identities_per_namespace,
            "refused": s.refused,
        }

    def builds_graph(self, code: str) -> bool:
        return builds_graph(self._type(code))

    def now_ms(self) -> int:
        return epoch_ms()


def _ns_to_doc(ns: Namespace, description: str) -> dict[str, Any]:
    now = epoch_ms()
    return {
        "code": ns.code,
        "id": ns.id,
        "name": ns.name,
        "idType": ns.type.value,
        "description": description,
        "custom": ns.custom,
        "status": "ACTIVE",
        "createTime": now,
        "updateTime": now,
    }


def _ns_from_doc(doc: dict[str, Any]) -> Namespace:
    return Namespace(
        doc["code"], doc.get("id"), doc.get("name", doc["code"]), IdentityType(doc["idType"]), custom=True
    )


__all__ = ["IdentityService", "LinkOutcome", "from_singleton_id", "identity_of_xid", "singleton_id", "xid_of"]
