"""Profiles of one sandbox: fragments and events in the point store, merged views on top.

Storage layout (tables of the point store; ``|`` is the key separator):

* ``fragments``  ``<ns>|<id>|<dataset>`` → the current record of that fragment
* ``fragment_versions`` ``<ns>|<id>|<dataset>|<ingested ms>|<seq>`` → every version ("as of" reads)
* ``dataset_fragments`` ``<dataset>|<ns>|<id>`` → index for "delete all Profile data of a dataset"
* ``events``     ``<ns>|<id>|<timestamp ms>|<dataset>|<_id>`` → one ExperienceEvent
* ``event_ids``  ``<dataset>|<_id>`` → its ``events`` key (a repeated ``_id`` is the same event)
* ``batch_events`` ``<batch>|<events key>`` → index for "delete one event batch"
* ``profiles``   ``<profile id>`` → the merged profile under the sandbox's default policy,
  refreshed in the same commit as every write that changes it (materialised view). Segment
  memberships are not in it: the segment service keeps them once, per profile, and reads join
  them in (:meth:`ProfileService.stored_document`)
* ``profile_sample`` ``<hash of the profile id>|<profile id>`` → empty: the profiles in a random
  order, written with them (estimates read a sample from it, see :mod:`tessera.profile.sample`)

Events are stored under their primary identity and found through the identity graph at read
time, so when an identity moves to another person (identity optimisation), its events move
with it (``spec/aep.md`` §c6 IOA-4).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from tessera.errors import InvalidInput, NotFound, SemanticError, TesseraError
from tessera.model import Identity, format_time, parse_time
from tessera.profile import sample
from tessera.profile.fragments import EVENT_CLASS, PROFILE_CLASS, Fragment, apply_record
from tessera.profile.merge import merge
from tessera.profile.policies import MergePolicy
from tessera.store import PointStore, WriteBatch, dump_json, key
from tessera.store.base import KEY_SEP, scan_arrow

if TYPE_CHECKING:
    import pyarrow as pa

    from tessera.platform import Sandbox

FRAGMENTS = "fragments"
VERSIONS = "fragment_versions"
DATASET_FRAGMENTS = "dataset_fragments"
EVENTS = "events"
EVENT_IDS = "event_ids"
BATCH_EVENTS = "batch_events"
PROFILES = "profiles"
META = "profile_meta"


def id_key(identity: Identity) -> str:
    return key(identity.namespace, identity.id)


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


@dataclass
class ProfileView:
    """A merged profile as the API and UI show it."""

    profile_id: str
    attributes: dict[str, Any]
    identities: list[dict[str, Any]]
    primary: Identity | None
    sources: list[str]
    last_modified: datetime | None
    provenance: dict[str, str]
    memberships: dict[str, Any]
    merge_policy_id: str
    too_large: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "profileId": self.profile_id,
            "attributes": self.attributes,
            "identities": self.identities,
            "primary": None if self.primary is None else self.primary.to_json(),
            "sources": self.sources,
            "lastModifiedAt": None if self.last_modified is None else format_time(self.last_modified),
            "provenance": self.provenance,
            "segmentMembership": self.memberships,
            "mergePolicyId": self.merge_policy_id,
        }


class ProfileService:
    """Write fragments and events, keep merged profiles current, look them up by any identity."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self._with_fragments: dict[str, set[str]] | None = None

    def _fragment_index(self) -> dict[str, set[str]]:
        """Identity key → datasets in which it has (or had) a record fragment: a superset, in memory.

        Merging looks for fragments under every identity of a profile; most identities (cookies,
        devices) never carry one, and knowing the datasets turns the lookups into point reads
        (one ``get_many`` for many profiles) instead of a prefix scan per identity. A superset is
        always safe (a stale entry costs one missed read); the embedded store has one writer
        process, so every fragment write passes through :meth:`put_record` / :meth:`put_records`
        and lands here.
        """
        if self._with_fragments is None:
            index: dict[str, set[str]] = {}
            for k, _ in self._store.scan(DATASET_FRAGMENTS):
                ds, ident = k.split(KEY_SEP, 1)
                index.setdefault(ident, set()).add(ds)
            self._with_fragments = index
        return self._with_fragments

    def note_fragments(self, keys: Iterable[str]) -> None:
        """Another process stored fragments under these ``dataset_fragments`` keys: add them to the
        in-memory index (when it is loaded; else it is read whole on first use)."""
        if self._with_fragments is None:
            return
        for k in keys:
            ds, ident = k.split(KEY_SEP, 1)
            self._index_fragment(ident, ds)

    def _index_fragment(self, ident_key: str, dataset_id: str) -> None:
        index = self._fragment_index()
        datasets = index.get(ident_key)
        if datasets is None:
            index[ident_key] = {dataset_id}
        else:
            datasets.add(dataset_id)

    @property
    def _store(self) -> PointStore:
        return self._sandbox.store

    # -- writes (inside a flow chunk) -----------------------------------------------------------

    def _next_seq(self, store: PointStore) -> int:
        raw = store.get(META, "seq")
        seq = (int(raw) if raw else 0) + 1
        store.write(WriteBatch().put(META, "seq", str(seq).encode()))
        return seq

    def put_record(
        self,
        store: PointStore,
        dataset: dict[str, Any],
        primary: Identity,
        record: dict[str, Any],
        ingested_at: datetime,
        *,
        upsert: bool = False,
        deletes: Sequence[str] = (),
    ) -> set[str]:
        """Replace (or, in upsert mode, update) the fragment of ``primary`` in ``dataset``."""
        frag_key = key(id_key(primary), dataset["id"])
        if upsert:
            old_raw = store.get(FRAGMENTS, frag_key)
            old = orjson.loads(old_raw)["record"] if old_raw else None
            doc = apply_record(old, record, upsert=True, deletes=deletes)
        else:
            # Replace mode: the flow owns ``record`` (freshly decoded), so no defensive copy.
            doc = apply_record(None, {}, upsert=False, deletes=deletes) if deletes else record
        seq = self._next_seq(store)
        ms = _ms(ingested_at)
        body = {"record": doc, "ingestedAt": ms, "seq": seq, "dataset": dataset["id"]}
        wb = WriteBatch()
        wb.put_json(FRAGMENTS, frag_key, body)
        wb.put_json(VERSIONS, key(frag_key, f"{ms:015d}", f"{seq:012d}"), body)
        wb.put(DATASET_FRAGMENTS, key(dataset["id"], id_key(primary)), b"")
        store.write(wb)
        self._index_fragment(id_key(primary), dataset["id"])
        return {self._sandbox.identity.profile_id_of(primary, store)}

    def put_event(
        self,
        store: PointStore,
        dataset: dict[str, Any],
        primary: Identity,
        record: dict[str, Any],
        timestamp: datetime,
        ingested_at: datetime,
        batch_id: str | None,
    ) -> set[str]:
        """Store an event under its primary identity; the same ``_id`` twice is one event.

        Returns the profiles whose *materialised* view must be refreshed: events do not change
        merged attributes, so only a profile seen for the first time (an anonymous visitor).
        """
        event_id = str(record["_id"])
        index_key = key(dataset["id"], event_id)
        previous = store.get(EVENT_IDS, index_key)
        ev_key = key(id_key(primary), f"{_ms(timestamp):015d}", dataset["id"], event_id)
        wb = WriteBatch()
        if previous is not None:
            if previous.decode() == ev_key:
                return set()  # idempotent replay: nothing changes
            wb.delete(EVENTS, previous.decode())
        body = {"record": record, "dataset": dataset["id"], "ingestedAt": _ms(ingested_at), "batch": batch_id}
        wb.put_json(EVENTS, ev_key, body)
        wb.put(EVENT_IDS, index_key, ev_key.encode())
        if batch_id:
            wb.put(BATCH_EVENTS, key(batch_id, ev_key), b"")
        store.write(wb)
        pid = self._sandbox.identity.profile_id_of(primary, store)
        return {pid} if store.get(PROFILES, pid) is None else set()

    def put_records(
        self,
        store: PointStore,
        dataset: dict[str, Any],
        rows: Sequence[tuple[int, Identity, dict[str, Any], Sequence[str]]],
        ingested_at: datetime,
        *,
        upsert: bool = False,
    ) -> tuple[dict[int, TesseraError], set[str]]:
        """:meth:`put_record` for ``(index, primary, record, deletes)`` rows in order, in one write.

        Returns the rows refused (by index) and the profiles whose merged view must be refreshed.
        """
        ds_id = dataset["id"]
        frag_keys = [key(id_key(primary), ds_id) for _, primary, _, _ in rows]
        current: dict[str, Any] = {}
        if upsert:
            for k, raw in store.get_many(FRAGMENTS, frag_keys).items():
                current[k] = orjson.loads(raw)["record"]
        raw_seq = store.get(META, "seq")
        seq = int(raw_seq) if raw_seq else 0
        ms = _ms(ingested_at)
        stamp = f"{ms:015d}"
        wb = WriteBatch()
        failed: dict[int, TesseraError] = {}
        primaries: set[Identity] = set()
        for (row, primary, record, deletes), frag_key in zip(rows, frag_keys, strict=True):
            try:
                if upsert:
                    doc = apply_record(current.get(frag_key), record, upsert=True, deletes=deletes)
                    current[frag_key] = doc
                else:
                    doc = apply_record(None, {}, upsert=False, deletes=deletes) if deletes else record
            except TesseraError as err:
                failed[row] = err
                continue
            seq += 1
            body = dump_json({"record": doc, "ingestedAt": ms, "seq": seq, "dataset": ds_id})
            ik = id_key(primary)
            wb.put(FRAGMENTS, frag_key, body)
            wb.put(VERSIONS, key(frag_key, stamp, f"{seq:012d}"), body)
            wb.put(DATASET_FRAGMENTS, key(ds_id, ik), b"")
            self._index_fragment(ik, ds_id)
            primaries.add(primary)
        if primaries:
            wb.put(META, "seq", str(seq).encode())
        store.write(wb)
        profile_id_of = self._sandbox.identity.profile_id_of
        return failed, {profile_id_of(p) for p in primaries}

    def put_events(
        self,
        store: PointStore,
        dataset: dict[str, Any],
        rows: Sequence[tuple[int, Identity, dict[str, Any], datetime]],
        ingested_at: datetime,
        batch_id: str | None,
    ) -> tuple[dict[int, TesseraError], set[str]]:
        """:meth:`put_event` for ``(index, primary, record, timestamp)`` rows in order, in one write.

        Returns the rows refused (none: events are checked before) and the profiles seen for the
        first time (their materialised view must be created).
        """
        ds_id = dataset["id"]
        index_keys = [key(ds_id, str(record["_id"])) for _, _, record, _ in rows]
        known = {k: v.decode() for k, v in store.get_many(EVENT_IDS, index_keys).items()}
        ingested_ms = _ms(ingested_at)
        wb = WriteBatch()
        primaries: set[Identity] = set()
        for (_, primary, record, timestamp), index_key in zip(rows, index_keys, strict=True):
            ev_key = key(id_key(primary), f"{_ms(timestamp):015d}", ds_id, str(record["_id"]))
            previous = known.get(index_key)
            if previous is not None:
                if previous == ev_key:
                    continue  # idempotent replay: nothing changes
                wb.delete(EVENTS, previous)
            known[index_key] = ev_key
            body = {"record": record, "dataset": ds_id, "ingestedAt": ingested_ms, "batch": batch_id}
            wb.put_json(EVENTS, ev_key, body)
            wb.put(EVENT_IDS, index_key, ev_key.encode())
            if batch_id:
                wb.put(BATCH_EVENTS, key(batch_id, ev_key), b"")
            primaries.add(primary)
        store.write(wb)
        profile_id_of = self._sandbox.identity.profile_id_of
        pids = list({profile_id_of(p) for p in primaries})
        present = store.get_many(PROFILES, pids)
        return {}, {pid for pid in pids if pid not in present}

    def prefetch_for_events(
        self,
        store: PointStore,
        dataset_id: str,
        rows: Sequence[tuple[dict[str, Any], Any, Sequence[Identity], Any]],
    ) -> None:
        """Let ``store`` read ahead, in one go each, what :meth:`put_event` reads for these checked
        event rows ``(record, time, identities, declared primary)``: the id-index entries and
        the documents of the profiles holding their identities now (a superset of the profiles
        the rows land in; one that linking changes is read on its own). It reads ahead when it
        can (:meth:`~tessera.store.staged.StagedStore.prefetch_keys`: always over Redis, where
        each read is a round trip; locally from 32 keys on)."""
        prefetch_keys = getattr(store, "prefetch_keys", None)
        if prefetch_keys is None or not rows:
            return
        prefetch_keys(EVENT_IDS, [key(dataset_id, str(record["_id"])) for record, _, _, _ in rows])
        profile_id_of = self._sandbox.identity.profile_id_of
        prefetch_keys(PROFILES, list({profile_id_of(i) for _, _, identities, _ in rows for i in identities}))

    def prefetch_events(self, store: PointStore, members: Iterable[Identity]) -> None:
        """Let ``store`` read these identities' events ahead in few round trips, when it can
        (a :class:`~tessera.store.staged.StagedStore` over Redis): a chunk's refresh and
        streaming evaluation then read them from memory instead of one round trip each."""
        prefetch = getattr(store, "prefetch", None)
        if prefetch is not None:
            prefetch(EVENTS, [key(id_key(m), "") for m in members])

    def refresh(self, store: PointStore, profile_ids: Iterable[str], now: datetime) -> None:
        """Re-merge the materialised profiles (default policy) of ``profile_ids``."""
        policy = self._sandbox.merge_policies.default_for(PROFILE_CLASS)
        pids = sorted(set(profile_ids))
        members_of = self._sandbox.identity.members
        members = {pid: members_of(pid, store) for pid in pids}
        self.prefetch_events(store, (m for ms in members.values() for m in ms))
        # one point read for every fragment of every profile, instead of a scan per identity
        stored = self._fragment_rows(store, [m for ms in members.values() for m in ms])
        wb = WriteBatch()
        # A profile id whose identities all moved on (a merged graph, a singleton that joined
        # one) has nothing to merge: only a stored view needs deleting.
        gone = [pid for pid in pids if not members[pid]]
        for pid in store.get_many(PROFILES, gone):
            wb.delete(PROFILES, pid)
            sample.delete(wb, pid)
        for pid in pids:
            pid_members = members[pid]
            if not pid_members:
                continue
            fragments = list(self._fragments(store, pid_members, policy, stored=stored))
            if not fragments and not self.has_events(store, pid_members):
                wb.delete(PROFILES, pid)
                sample.delete(wb, pid)
                continue
            # Segment memberships are not stored in the document: they are kept once, by the
            # segment service, and joined in when the profile is read. A batch job changing
            # millions of memberships then rewrites no profile document.
            view = self._merge(store, pid, pid_members, fragments, policy, no_memberships=True)
            wb.put_json(PROFILES, pid, view.to_json())
            sample.put(wb, pid)
        store.write(wb)

    # -- reads ----------------------------------------------------------------------------------

    def _fragment_keys(self, members: Sequence[Identity]) -> list[str]:
        """Keys of the current fragments the members may have, in store (scan) order."""
        index = self._fragment_index()
        keys: list[str] = []
        for identity in members:
            ik = id_key(identity)
            datasets = index.get(ik)
            if datasets:
                keys.extend(key(ik, ds) for ds in sorted(datasets))
        return keys

    def _fragment_rows(self, store: PointStore, members: Sequence[Identity]) -> dict[str, bytes]:
        return store.get_many(FRAGMENTS, self._fragment_keys(members))

    def _fragments(
        self,
        store: PointStore,
        members: Sequence[Identity],
        policy: MergePolicy,
        as_of: datetime | None = None,
        *,
        stored: dict[str, bytes] | None = None,
    ) -> Iterator[Fragment]:
        allowed = set(policy.order) if policy.attribute_merge == "dataSetPrecedence" else None
        index = self._fragment_index()
        if as_of is None and stored is None:
            stored = self._fragment_rows(store, members)
        for identity in members:
            ik = id_key(identity)
            datasets = index.get(ik)
            if not datasets:
                continue
            if as_of is None:
                assert stored is not None
                frag_keys = (key(ik, ds) for ds in sorted(datasets))
                rows: Iterable[tuple[str, bytes]] = ((k, stored[k]) for k in frag_keys if k in stored)
            else:
                rows = self._versions_as_of(store, key(ik, ""), as_of)
            for _, raw in rows:
                body = orjson.loads(raw)
                if allowed is not None and body["dataset"] not in allowed:
                    continue
                if body.get("deleted"):
                    continue
                yield Fragment(
                    body["dataset"],
                    identity,
                    body["record"],
                    parse_time(body["ingestedAt"]),
                    sequence=body["seq"],
                    schema_class=PROFILE_CLASS,
                )

    def _versions_as_of(self, store: PointStore, prefix: str, as_of: datetime) -> Iterator[tuple[str, bytes]]:
        limit_ms = _ms(as_of)
        latest: dict[str, bytes] = {}
        for k, raw in store.scan(VERSIONS, prefix):
            frag_key, _, rest = k.rpartition(KEY_SEP)
            frag_key, _, ms = frag_key.rpartition(KEY_SEP)
            if int(ms) <= limit_ms:
                latest[frag_key] = raw
        yield from latest.items()

    def has_events(self, store: PointStore, members: Sequence[Identity]) -> bool:
        """Whether any of these identities has an event."""
        any_under = getattr(store, "any_under", None)  # a staged store can answer from its writes
        if any_under is not None:
            return any(any_under(EVENTS, key(id_key(i), "")) for i in members)
        return any(next(iter(store.scan(EVENTS, key(id_key(i), ""), limit=1)), None) for i in members)

    def _merge(
        self,
        store: PointStore,
        pid: str,
        members: Sequence[Identity],
        fragments: list[Fragment],
        policy: MergePolicy,
        *,
        no_memberships: bool = False,
    ) -> ProfileView:
        merged = merge(fragments, policy)
        identities = self._sandbox.identity.describe_members(members, store)
        primary = self._sandbox.identity.primary_of(members)
        memberships = {} if no_memberships else self._sandbox.memberships_of(pid, store)
        attributes = dict(merged.attributes)
        if memberships:
            attributes["segmentMembership"] = {"ups": memberships}
        return ProfileView(
            profile_id=pid,
            attributes=attributes,
            identities=identities,
            primary=primary,
            sources=list(merged.source_datasets),
            last_modified=merged.last_modified,
            provenance=dict(merged.provenance),
            memberships=memberships,
            merge_policy_id=policy.id,
        )

    def stored_document(self, pid: str, store: PointStore | None = None) -> dict[str, Any] | None:
        """The materialised profile document of ``pid`` (default merge policy) with its current
        segment memberships joined in, or ``None`` when none is stored."""
        store = store or self._store
        raw = store.get(PROFILES, pid)
        if raw is None:
            return None
        doc: dict[str, Any] = orjson.loads(raw)
        memberships = self._sandbox.memberships_of(pid, store)
        doc["segmentMembership"] = memberships
        if memberships:
            # otherwise the attributes keep what records brought (imported audiences)
            doc.setdefault("attributes", {})["segmentMembership"] = {"ups": memberships}
        return doc

    def resolve(self, identity: Identity | str) -> str | None:
        """The profile id holding ``identity`` (``None`` when nothing is stored for it)."""
        store = self._store
        if isinstance(identity, str):
            if store.get(PROFILES, identity) is not None:
                return identity
            return None
        pid = self._sandbox.identity.profile_id_of(identity, store)
        members = self._sandbox.identity.members(pid, store)
        if store.get(PROFILES, pid) is not None or self.has_events(store, members):
            return pid
        return None

    def get(
        self,
        identity: Identity | str,
        *,
        merge_policy_id: str | None = None,
        as_of: datetime | None = None,
        fields: Sequence[str] | None = None,
        store: PointStore | None = None,
    ) -> ProfileView | None:
        """The merged profile of the person holding ``identity`` (or with that profile id).

        Returns ``None`` when nothing is stored for it (an unknown identity is not an error).
        ``store`` reads a staged view (streaming segmentation inside an ingesting chunk).

        Raises:
            SemanticError: the person's identity graph is above the graph limit (HTTP 422).
            NotFound: ``merge_policy_id`` does not exist.
        """
        store = store or self._store
        policy = (
            self._sandbox.merge_policies.get(merge_policy_id)
            if merge_policy_id
            else self._sandbox.merge_policies.default_for(PROFILE_CLASS)
        )
        if isinstance(identity, str):
            pid = identity
            members = self._sandbox.identity.members(pid, store)
            if not members:
                return None
            anchor = members[0]
        else:
            anchor = identity
            pid = self._sandbox.identity.profile_id_of(identity, store)
            members = []  # listed below only when merging on read: a lookup needs just the size
        size = len(members) if members else self._sandbox.identity.size(pid)
        if size > self._sandbox.identity.graph_limit:
            raise SemanticError(
                f"Too many related identities: this profile's graph has {size} identities, "
                f"above the limit of {self._sandbox.identity.graph_limit}",
                path="entityId",
            )
        materialised = (
            as_of is None
            and policy.default
            and policy.identity_graph == "pdg"
            and policy.schema_name == PROFILE_CLASS
        )
        if policy.identity_graph == "none":
            members = [anchor]
        elif not materialised and not members:
            members = self._sandbox.identity.members(pid, store)
        if materialised:
            doc = self.stored_document(pid, store)
            if doc is None:
                return None
            view = _view_from_json(doc)
        else:
            fragments = list(self._fragments(store, members, policy, as_of))
            if not fragments and not self.has_events(store, members):
                return None
            view = self._merge(store, pid, members, fragments, policy)
        if fields:
            view.attributes = project(view.attributes, fields)
        return view

    def events(
        self,
        identity: Identity | str,
        *,
        merge_policy_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        descending: bool = False,
        limit: int = 1000,
        cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The person's events (all allowed datasets), ordered by timestamp, one page at a time.

        Returns ``(events, next_cursor)``; ``next_cursor`` is ``None`` on the last page.
        """
        store = self._store
        policy = (
            self._sandbox.merge_policies.get(merge_policy_id)
            if merge_policy_id
            else self._sandbox.merge_policies.default_for(PROFILE_CLASS)
        )
        if isinstance(identity, str):
            members = self._sandbox.identity.members(identity, store)
        else:
            members = (
                [identity]
                if policy.identity_graph == "none"
                else self._sandbox.identity.members(
                    self._sandbox.identity.profile_id_of(identity, store), store
                )
            )
        rows = sorted(self._all_events(store, members, since=start), key=lambda r: r[0], reverse=descending)
        if end is not None:
            rows = [r for r in rows if r[0][0] < _ms(end)]
        if cursor:
            try:
                offset = int(cursor)
            except ValueError as exc:
                raise InvalidInput(f"Invalid paging cursor {cursor!r}", path="start") from exc
        else:
            offset = 0
        page = rows[offset : offset + limit]
        next_cursor = str(offset + limit) if offset + limit < len(rows) else None
        return [body for _, body in page], next_cursor

    def _all_events(
        self,
        store: PointStore,
        members: Sequence[Identity],
        limit: int | None = None,
        since: datetime | None = None,
    ) -> Iterator[tuple[tuple[int, str, str], dict[str, Any]]]:
        """Stored event documents with their key and identity, for the events API."""
        for order, k, identity, raw in self._event_rows(store, members, limit, since):
            body = orjson.loads(raw)
            body["eventKey"] = k
            body["identity"] = identity.to_json()
            yield order, body

    @staticmethod
    def _event_rows(
        store: PointStore, members: Sequence[Identity], limit: int | None, since: datetime | None
    ) -> Iterator[tuple[tuple[int, str, str], str, Identity, bytes]]:
        """(time order, key, identity, stored document) of these identities' events, undecoded."""
        left = limit
        for identity in members:
            if left is not None and left <= 0:
                return
            ik = id_key(identity)
            # keys sort by time within an identity: start right before the first at `since`
            after = None if since is None else key(ik, f"{_ms(since):015d}")
            for k, raw in store.scan(EVENTS, key(ik, ""), start_after=after, limit=left):
                parts = k.split(KEY_SEP)
                if left is not None:
                    left -= 1
                yield (int(parts[2]), parts[3], parts[4]), k, identity, raw

    PROFILE_ATTRIBUTES_PATH = "$.attributes"
    """Where a stored profile document (:meth:`profile_documents`) holds the merged attributes."""
    EVENT_RECORD_PATH = "$.record"
    """Where a stored event document (:meth:`event_documents`) holds the event record."""

    def profile_documents(self, chunk: int = 100_000) -> Iterator[pa.Table]:
        """Every materialised profile as raw JSON, in Arrow chunks of ``profile_id`` (string) and
        ``doc`` (JSON text holding the attributes at :attr:`PROFILE_ATTRIBUTES_PATH`)."""
        import pyarrow as pa

        for part in scan_arrow(self._store, PROFILES, chunk):
            yield pa.table({"profile_id": part["key"], "doc": part["value"].cast(pa.string())})

    def event_documents(self, store: PointStore | None = None, chunk: int = 250_000) -> Iterator[pa.Table]:
        """Every stored event as raw JSON, in Arrow chunks of ``owner`` (string: ``id_key`` of the
        identity it is stored under), ``ts`` (int64 ms), ``tiebreak`` (string) and ``doc`` (JSON
        text, the record at :attr:`EVENT_RECORD_PATH`); ``(ts, tiebreak)`` is the order of
        :meth:`events_for_members`. For batch jobs that parse events outside Python: the key is
        taken apart by Arrow, not per row in Python. Chunks are large: DuckDB spreads the parse of
        a chunk over its threads only when it is big (100k-row chunks: 4.3 s, 250k: 3.4 s at 2.25M)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        for part in scan_arrow(store or self._store, EVENTS, chunk):
            # key: owner (two parts), time, dataset, event id; split from the right like rsplit
            pieces = pc.split_pattern(part["key"], KEY_SEP, max_splits=3, reverse=True)
            owner, ms, dataset, event_id = (pc.list_element(pieces, i) for i in range(4))
            yield pa.table(
                {
                    "owner": owner,
                    "ts": pc.cast(ms, pa.int64()),
                    "tiebreak": pc.binary_join_element_wise(dataset, event_id, KEY_SEP),
                    "doc": part["value"].cast(pa.string()),
                }
            )

    def events_for_members(
        self,
        members: Sequence[Identity],
        store: PointStore | None = None,
        *,
        limit: int | None = None,
        since: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Event records of these identities, timestamp order (for segment evaluation).

        With ``limit``, at most that many are read (the earliest of the first identities first):
        a caller getting ``limit`` events back cannot tell whether there were more, so it asks
        for one more than it will use. With ``since``, only events at that time or later (by the
        millisecond time of their keys) are read."""
        rows = sorted(self._event_rows(store or self._store, members, limit, since), key=lambda r: r[0])
        return [orjson.loads(raw)["record"] for _, _, _, raw in rows]

    # -- deletes --------------------------------------------------------------------------------

    def delete_dataset_data(self, dataset_id: str) -> int:
        """Delete all Profile data of a dataset (the reference's profile system job)."""
        removed = 0
        touched: set[str] = set()
        with self._sandbox.write_lock:
            staged = self._sandbox.begin()
            for k, _ in list(staged.scan(DATASET_FRAGMENTS, key(dataset_id, ""))):
                ident_key = k.split(KEY_SEP, 1)[1]
                frag_key = key(ident_key, dataset_id)
                wb = WriteBatch().delete(FRAGMENTS, frag_key).delete(DATASET_FRAGMENTS, k)
                for vk, _ in staged.scan(VERSIONS, key(frag_key, "")):
                    wb.delete(VERSIONS, vk)
                staged.write(wb)
                ns, ident = ident_key.split(KEY_SEP, 1)
                touched.add(self._sandbox.identity.profile_id_of(Identity(ns, ident), staged))
                removed += 1
            for k, raw in list(staged.scan(EVENT_IDS, key(dataset_id, ""))):
                ev_key = raw.decode()
                staged.write(WriteBatch().delete(EVENTS, ev_key).delete(EVENT_IDS, k))
                parts = ev_key.split(KEY_SEP)
                touched.add(self._sandbox.identity.profile_id_of(Identity(parts[0], parts[1]), staged))
                removed += 1
            from tessera.model import utcnow

            self.refresh(staged, touched, utcnow())
            staged.commit()
        return removed

    def delete_event_batch(self, batch_id: str) -> int:
        """Delete the events one batch brought (record batches cannot be deleted one by one)."""
        removed = 0
        touched: set[str] = set()
        with self._sandbox.write_lock:
            staged = self._sandbox.begin()
            for k, _ in list(staged.scan(BATCH_EVENTS, key(batch_id, ""))):
                ev_key = k.split(KEY_SEP, 1)[1]
                parts = ev_key.split(KEY_SEP)
                staged.write(
                    WriteBatch()
                    .delete(EVENTS, ev_key)
                    .delete(BATCH_EVENTS, k)
                    .delete(EVENT_IDS, key(parts[3], parts[4]))
                )
                touched.add(self._sandbox.identity.profile_id_of(Identity(parts[0], parts[1]), staged))
                removed += 1
            from tessera.model import utcnow

            self.refresh(staged, touched, utcnow())
            staged.commit()
        return removed

    def delete_identity_data(self, store: PointStore, identity: Identity) -> int:
        """Delete every fragment, version and event stored under ``identity`` (privacy)."""
        removed = 0
        wb = WriteBatch()
        prefix = key(id_key(identity), "")
        for k, raw in store.scan(FRAGMENTS, prefix):
            body = orjson.loads(raw)
            wb.delete(FRAGMENTS, k).delete(DATASET_FRAGMENTS, key(body["dataset"], id_key(identity)))
            removed += 1
        for k, _ in store.scan(VERSIONS, prefix):
            wb.delete(VERSIONS, k)
        for k, raw in store.scan(EVENTS, prefix):
            body = orjson.loads(raw)
            parts = k.split(KEY_SEP)
            wb.delete(EVENTS, k).delete(EVENT_IDS, key(parts[3], parts[4]))
            if body.get("batch"):
                wb.delete(BATCH_EVENTS, key(body["batch"], k))
            removed += 1
        store.write(wb)
        return removed

    def count(self) -> int:
        return self._store.count(PROFILES)

    def scan_profiles(
        self, start_after: str | None = None, limit: int | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        for k, raw in self._store.scan(PROFILES, start_after=start_after, limit=limit):
            yield k, orjson.loads(raw)


def _view_from_json(doc: dict[str, Any]) -> ProfileView:
    primary = doc.get("primary")
    return ProfileView(
        profile_id=doc["profileId"],
        attributes=doc["attributes"],
        identities=doc["identities"],
        primary=Identity(primary["namespace"], primary["id"]) if primary else None,
        sources=doc["sources"],
        last_modified=parse_time(doc["lastModifiedAt"]) if doc.get("lastModifiedAt") else None,
        provenance=doc.get("provenance", {}),
        memberships=doc.get("segmentMembership", {}),
        merge_policy_id=doc.get("mergePolicyId", ""),
    )


def project(attributes: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """Keep only the given dotted paths (the ``fields`` parameter of the Profile Access API).

    >>> project({"person": {"name": {"firstName": "A"}, "age": 3}, "x": 1}, ["person.name"])
    {'person': {'name': {'firstName': 'A'}}}
    """
    out: dict[str, Any] = {}
    for path in fields:
        parts = [p for p in path.strip().split(".") if p]
        node: Any = attributes
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                node = None
                break
            node = node[part]
        if node is None or not parts:
            continue
        target = out
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = node
    return out


__all__ = ["EVENT_CLASS", "NotFound", "ProfileService", "ProfileView", "id_key", "project"]
