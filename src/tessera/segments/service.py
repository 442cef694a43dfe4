"""The segmentation service of one sandbox: streaming, batch and edge evaluation over one store.

Streaming (:meth:`SegmentService.on_change`) runs inside the ingesting chunk, so membership
transitions commit atomically with the data that caused them. Time windows close on their own:
every evaluation computes when the profile's result can next change without new data (an event
crossing a window edge, a calendar boundary) and keeps it in a due queue that :meth:`tick`
drains (a scheduler thread calls it; tests call it with an explicit time).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import math
import random
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from tessera.errors import InvalidInput, NotFound, TesseraError
from tessera.model import Identity, format_time, parse_time, utcnow
from tessera.ops import metrics as ops_metrics
from tessera.profile import sample
from tessera.segments import memberships as ms
from tessera.segments.computed import FIELD, ComputedAttributes, event_time
from tessera.segments.definitions import Definitions, dependency_order
from tessera.segments.engine import Compiled, Engine, PqlEngine, explain_by_parts, next_boundaries
from tessera.segments.stored_profiles import StoredProfiles
from tessera.store import PointStore, WriteBatch, get_json, key, scan_json

if TYPE_CHECKING:
    from tessera.platform import Sandbox

PROFILES = "profiles"
DUE = "segment_due"
DUE_BY_PROFILE = "segment_due_profile"
STATE = "segment_state"
"""Per profile: what the last streaming evaluation saw (segment generation, attribute hash, event
fingerprint per event type), so the next one re-evaluates only the segments the change can affect."""
JOBS = "segment_jobs"
PREVIEWS = "segment_previews"
EXACT_LIMIT = 1_000_000
"""Below this many profiles estimates are exact; above, a sample of this size is read (§b7)."""
EVENT_CAP = 1_000
"""An estimate reads at most this many events of one profile; a profile with more is evaluated
over those and counted as undecided in the interval (``profilesTruncated``)."""
EVENTS_PER_PROFILE = 20
"""An estimate reads events for at most this many per sampled profile on average (twice the
~10 of the issue's 1.4M-profile store): past that budget it stops reading further profiles."""

EXPIRY_INTERVAL = timedelta(hours=1)
"""How often the scheduler exits memberships past their ``validUntil`` (``ttlInDays``)."""

ChangeListener = Callable[[PointStore, WriteBatch, list[ms.Change]], None]
Row = tuple[str, dict[str, Any], list[dict[str, Any]]]
EventReader = Callable[[Sequence[Identity], PointStore], list[dict[str, Any]]]
"""Events of a profile's identities, timestamp order."""
_EPS = timedelta(milliseconds=1)
_ORDER_SLACK = timedelta(seconds=1)
"""Events are ordered by the millisecond time in their keys; their records' own timestamps may
differ below that, so walks that rely on the order look this much further."""
_PLAIN = frozenset({"realized", "existing", "exited"})
"""Statuses whose batch transitions :class:`_Transitions` decides as set differences."""
_PROFILES_PER_SLICE = 20_000
"""Profiles whose memberships a batch job changes and encodes at a time."""


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


class SegmentService:
    """Segment definitions, memberships, jobs, previews and computed attributes of one sandbox.

    Args:
        sandbox: the sandbox facade (store, write lock, identity, profiles).
        engine: the PQL engine; defaults to :class:`PqlEngine` over ``tessera.pql``.
    """

    def __init__(self, sandbox: Sandbox, engine: Engine | None = None) -> None:
        self._sandbox = sandbox
        self.engine: Engine = engine or PqlEngine(self._union_schemas)
        self.definitions = Definitions(sandbox.store, self.engine, getattr(sandbox, "name", "prod"))
        self.computed = ComputedAttributes(sandbox.store, self.engine)
        self._listeners: list[tuple[ChangeListener, Callable[[], Collection[str]] | None]] = []
        self._active_cache: dict[str, tuple[list[dict[str, Any]], list[tuple[dict[str, Any], Compiled]]]] = {}
        self._plan_cache: tuple[list[tuple[dict[str, Any], Compiled]], _StreamPlan] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._periodic: list[Callable[[datetime], object]] = []
        self._last_expiry: datetime | None = None
        from tessera.activation import Activation
        from tessera.segments.schedules import Schedules

        self.schedules = Schedules(self)
        self.activation = Activation(sandbox, self)

    @property
    def store(self) -> PointStore:
        return self._sandbox.store

    def _union_schemas(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The sandbox's profile and event union schemas, the profile one extended with the
        computed attributes (``computedAttributes.<name>``); ``None`` when not available yet."""
        schemas = getattr(self._sandbox, "schemas", None)
        if schemas is None:
            return None, None
        from tessera.xdm.standard import EXPERIENCE_EVENT, PROFILE

        try:
            profile: dict[str, Any] | None = dict(schemas.union(PROFILE))
        except TesseraError:
            profile = None
        try:
            event: dict[str, Any] | None = schemas.union(EXPERIENCE_EVENT)
        except TesseraError:
            event = None
        if profile is not None:
            names = [d["name"] for d in self.computed.list()] if hasattr(self, "computed") else []
            props = dict(profile.get("properties") or {})
            props[FIELD] = {"type": "object", "properties": {n: {} for n in names}}
            profile["properties"] = props
        return profile, event

    # -- definitions -----------------------------------------------------------------------------

    def create(self, body: Mapping[str, Any], *, seg_id: str | None = None) -> dict[str, Any]:
        """Create a segment definition (§b3); ``seg_id`` picks the id. See :meth:`Definitions.create`."""
        self._check_policy(body)
        return self.definitions.create(body, seg_id=seg_id)

    def get(self, seg_id: str) -> dict[str, Any]:
        return self.definitions.get(seg_id)

    def update(self, seg_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        self._check_policy(changes)
        return self.definitions.update(seg_id, changes)

    def _check_policy(self, body: Mapping[str, Any]) -> None:
        """A definition's ``mergePolicyId`` must name an existing merge policy (its evaluation
        reads profiles merged under it)."""
        mp = body.get("mergePolicyId")
        if mp is None:
            return
        if not isinstance(mp, str):
            raise InvalidInput("mergePolicyId must be a merge policy id (string)", path="mergePolicyId")
        try:
            self.policy_key(mp, strict=True)
        except NotFound as exc:
            raise InvalidInput(f"Merge policy {mp!r} does not exist", path="mergePolicyId") from exc

    def delete(self, seg_id: str) -> None:
        self.definitions.delete(seg_id, in_use=self.activation.uses_segment(seg_id))

    def add_listener(
        self, listener: ChangeListener, wants: Callable[[], Collection[str]] | None = None
    ) -> None:
        """Call ``listener(store, batch, changes)`` with membership changes, before their write.

        ``wants``: the segment ids whose changes the listener acts on, asked at each batch job
        (default: every segment). A job builds change objects only for segments some listener
        wants: a first job over a million profiles makes ~15 million of them, and usually no
        destination activates most segments. The listener may still receive others.
        """
        self._listeners.append((listener, wants))

    def _wanted(self) -> Collection[str] | None:
        """The segments whose batch changes some listener wants (``None``: every segment)."""
        wanted: set[str] = set()
        for _, wants in self._listeners:
            if wants is None:
                return None
            wanted.update(wants())
        return wanted

    def _active(self, mode: str) -> list[tuple[dict[str, Any], Compiled]]:
        docs_now = self.definitions.all()
        cached = self._active_cache.get(mode)
        if cached is not None and cached[0] is docs_now:
            return cached[1]
        docs = [
            d
            for d in self.definitions.all()
            if d["evaluationInfo"][mode]["enabled"] and d.get("lifecycleState", "published") != "inactive"
        ]
        active = [(d, self.definitions.compile(d)) for level in dependency_order(docs) for d in level]
        self._active_cache[mode] = (docs_now, active)
        return active

    def _stream_plan(self) -> _StreamPlan:
        """The continuous segments with what streaming needs from them, rebuilt when they change."""
        active = self._active("continuous")
        cached = self._plan_cache
        if cached is not None and cached[0] is active:
            return cached[1]
        windows: set[timedelta] = set()
        for _, c in active:
            windows.update(c.windows)
        generation = hashlib.blake2b(
            orjson.dumps(sorted((d["id"], d.get("version", 1)) for d, _ in active)), digest_size=8
        ).hexdigest()
        plan = _StreamPlan(
            segments=active,
            policies={d["id"]: d["mergePolicyId"] for d, _ in active if d.get("mergePolicyId")},
            ids=frozenset(d["id"] for d, _ in active),
            windows=frozenset(windows),
            calendar=any(c.calendar for _, c in active),
            generation=generation,
        )
        self._plan_cache = (active, plan)
        return plan

    # -- reading profiles --------------------------------------------------------------------------

    def policy_key(self, merge_policy_id: str | None, *, strict: bool = False) -> str | None:
        """``None`` when ``merge_policy_id`` reads the materialised profiles (absent, or the class
        default over the private graph), else the id of the policy to merge on read with.

        A stored definition whose policy was deleted since falls back to the default view (an
        ingest must not fail for it); ``strict`` raises instead.

        Raises:
            NotFound: with ``strict``, the policy does not exist.
        """
        if not merge_policy_id:
            return None
        from tessera.profile.fragments import PROFILE_CLASS

        try:
            policy = self._sandbox.merge_policies.get(merge_policy_id)
        except NotFound:
            if strict:
                raise
            return None
        if policy.default and policy.identity_graph == "pdg" and policy.schema_name == PROFILE_CLASS:
            return None
        return merge_policy_id

    def _profile(
        self,
        store: PointStore,
        pid: str,
        policy: str | None = None,
        *,
        doc: Mapping[str, Any] | None = None,
        events_of: EventReader | None = None,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """A profile's attributes and events as segments see them: the materialised profile
        (``doc`` when the caller has read it already), or with ``policy`` (see
        :meth:`policy_key`) merged on read under that merge policy. ``events_of`` reads the
        events of the profile's identities (default: all of them)."""
        read_events = events_of or self._all_events
        if policy is not None:
            return self._profile_with_policy(store, pid, policy, read_events)
        if doc is None:
            doc = get_json(store, PROFILES, pid)
        members = self._sandbox.identity.members(pid, store)
        events = read_events(members, store) if members else []
        # gone: no document and no event (a given reader may have read only some of them)
        if (
            doc is None
            and not events
            and (events_of is None or not self._sandbox.profiles.has_events(store, members))
        ):
            return None
        attributes = dict((doc or {}).get("attributes") or {})
        attributes.pop("segmentMembership", None)
        attributes.pop(FIELD, None)
        return attributes, events

    def _all_events(self, members: Sequence[Identity], store: PointStore) -> list[dict[str, Any]]:
        return self._sandbox.profiles.events_for_members(members, store)

    def _profile_with_policy(
        self, store: PointStore, pid: str, policy_id: str, events_of: EventReader
    ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        members = self._sandbox.identity.members(pid, store)
        if not members:
            return None
        view = self._sandbox.profiles.get(pid, merge_policy_id=policy_id, store=store)
        if view is None:
            return None
        if self._sandbox.merge_policies.get(policy_id).identity_graph == "none":
            members = members[:1]  # the profile service reads this policy from the anchor alone
        attributes = dict(view.attributes)
        attributes.pop("segmentMembership", None)
        attributes.pop(FIELD, None)
        return attributes, events_of(members, store)

    def memberships_of(
        self, profile_id: str, store: PointStore | None = None, *, now: datetime | None = None
    ) -> dict[str, Any]:
        """``segmentMembership.ups`` of a profile: ``{segment id: {status, lastQualificationTime,
        validUntil}}``. With ``now``, a membership past its ``validUntil`` reads as exited (as the
        next expiry sweep will write it, see ``ttlInDays``)."""
        recs = ms.read(store or self.store, profile_id)
        if now is None:
            return recs
        return {sid: ms.as_seen(rec, now) for sid, rec in recs.items()}

    def expire_memberships(
        self, now: datetime | None = None, candidates: Sequence[tuple[str, str, dict[str, Any]]] | None = None
    ) -> list[ms.Change]:
        """Exit the memberships whose ``validUntil`` has passed (``ttlInDays`` without a confirming
        evaluation). Profiles in continuous segments are re-evaluated first: one that still
        qualifies is confirmed rather than exited. Batch jobs and the scheduler call this."""
        now = now or utcnow()
        source = ms.scan_all(self.store) if candidates is None else candidates
        expired = [(pid, sid, rec) for pid, sid, rec in source if ms.expired(rec, now)]
        if not expired:
            return []
        changes: list[ms.Change] = []
        with self._sandbox.write_lock:
            # the definitions as of the lock: entering it may have reloaded them
            continuous = self._stream_plan().ids
            recheck = sorted({pid for pid, sid, _ in expired if sid in continuous})
            staged = self._sandbox.begin()
            try:
                if recheck:
                    wb = WriteBatch()
                    for pid in recheck:  # forget what was seen: every segment is evaluated
                        wb.delete(STATE, pid)
                    staged.write(wb)
                    changes.extend(self.on_change(staged, recheck, now))
                wb = WriteBatch()
                exits: list[ms.Change] = []
                by_profile: dict[str, list[str]] = {}
                for pid, sid, _ in expired:
                    by_profile.setdefault(pid, []).append(sid)
                # read again: the re-evaluation above may have confirmed or exited some
                rounds = ms.rounds(staged)
                for pid, ups in ms.read_many(staged, sorted(by_profile), rounds).items():
                    before = len(exits)
                    for sid in by_profile[pid]:
                        rec = ups.get(sid)
                        if rec is not None and ms.expired(rec, now):
                            new = ms.transition(rec, False, now)
                            if new is not None:
                                exits.append(ms.apply(ups, pid, sid, rec, new, now))
                    if len(exits) > before:
                        ms.write(wb, pid, ups, current=rounds)
                self._emit(staged, wb, exits)
                staged.write(wb)
                changes.extend(exits)
                staged.commit()
            except BaseException:
                staged.rollback()
                raise
        return changes

    # -- streaming ---------------------------------------------------------------------------------

    def on_change(self, store: PointStore, profile_ids: Iterable[str], now: datetime) -> list[ms.Change]:
        """Re-evaluate the continuous segments and computed attributes of changed profiles.

        Called inside the ingesting chunk with its staged store: the membership transitions are
        written to ``store`` and commit with the data. Returns the changes.
        """
        plan = self._stream_plan()
        active_cas = self.computed.active()
        if not plan.segments and not active_cas:
            return []  # nothing streams: batch jobs pick up removed profiles
        wb = WriteBatch()
        changes: list[ms.Change] = []
        pids = sorted(set(profile_ids))
        members_of = self._sandbox.identity.members
        self._sandbox.profiles.prefetch_events(store, (m for pid in pids for m in members_of(pid, store)))
        prefetch_keys = getattr(store, "prefetch_keys", None)
        if prefetch_keys is not None:  # what _evaluate_profile reads per profile, in one go each
            for table in (ms.MEMBERSHIPS, STATE, DUE_BY_PROFILE, PROFILES):
                prefetch_keys(table, pids)
        rounds = ms.rounds(store)
        empty = _EmptyVerdicts(plan, now)
        recent = self._recent_events(plan, now, active_cas)
        for pid in pids:
            changes.extend(
                self._evaluate_profile(store, wb, pid, now, plan, active_cas, rounds, empty, recent)
            )
        self._emit(store, wb, changes)
        store.write(wb)
        if active_cas:  # the profile service re-merges without computed attributes: put them back
            self._put_computed_values(store, set(profile_ids))
        return changes

    def _recent_events(self, plan: _StreamPlan, now: datetime, active_cas: list[Any]) -> EventReader | None:
        """A reader of only the events the plan's segments and the active computed attributes
        can see at ``now`` (within the longest event window of a segment or lookback of an
        attribute), or ``None`` when some segment may read any event. A profile with years of
        events is then read, decoded and fingerprinted for its last days, not its whole history."""
        if plan.horizon is None:
            return None
        horizon = max([plan.horizon, *(window for _, _, window in active_cas)])
        since = now - horizon - _ORDER_SLACK
        events_for_members = self._sandbox.profiles.events_for_members

        def recent(members: Sequence[Identity], store: PointStore) -> list[dict[str, Any]]:
            return events_for_members(members, store, since=since)

        return recent

    def _put_computed_values(self, store: PointStore, changed: set[str]) -> None:
        """Put the current ``computedAttributes`` on the materialised profiles of ``changed``.

        The profile service re-merged them earlier in the same chunk, without computed values;
        only that part changes, so it is patched in place rather than merged again. (Segment
        memberships are not in the documents: readers join them in, see
        ``ProfileService.stored_document``.)"""
        if not self.computed.any_values(store):
            return
        out = WriteBatch()
        pids = sorted(changed)
        for start in range(0, len(pids), 1000):  # one read per thousand profiles
            docs = store.get_many(PROFILES, pids[start : start + 1000])
            for pid in pids[start : start + 1000]:
                raw = docs.get(pid)
                if raw is None:
                    continue
                held = self.computed.values_of(pid, store)
                if held:
                    doc = orjson.loads(raw)
                    doc.setdefault("attributes", {})[FIELD] = held
                    out.put_json(PROFILES, pid, doc)
        if len(out):
            store.write(out)

    def _emit(self, store: PointStore, wb: WriteBatch, changes: list[ms.Change]) -> None:
        if changes:
            for listener, _ in self._listeners:
                listener(store, wb, changes)

    def _evaluate_profile(
        self,
        store: PointStore,
        wb: WriteBatch,
        pid: str,
        now: datetime,
        plan: _StreamPlan,
        active_cas: list[Any],
        rounds: ms.Rounds,
        empty: _EmptyVerdicts,
        events_of: EventReader | None = None,
    ) -> list[ms.Change]:
        current = ms.read(store, pid, rounds)
        ups = dict(current)  # what is written back when anything changed
        loaded = self._profile(store, pid, events_of=events_of)
        changes: list[ms.Change] = []
        if loaded is None:  # the profile is gone (merged away, split off, deleted): it leaves everything
            for sid, rec in current.items():
                if sid in plan.ids or rec.get("status") in ms.IN:
                    new = ms.transition(rec, False, now)
                    if new is not None:
                        changes.append(ms.apply(ups, pid, sid, rec, new, now))
            if changes:
                ms.write(wb, pid, ups, current=rounds)
            self._schedule(wb, pid, None, store.get(DUE_BY_PROFILE, pid))
            if store.get(STATE, pid) is not None:
                wb.delete(STATE, pid)
            return changes
        attributes, events = loaded
        windows = set(plan.windows)
        values: dict[str, Any] | None = None
        if active_cas:
            values = ComputedAttributes.compute(active_cas, attributes, events, now)
            self.computed.store_values(store, wb, pid, values, now, active_cas)
            attributes[FIELD] = values
            windows.update(w for _, _, w in active_cas)
        # Segments naming a non-default merge policy see the profile merged under it.
        seg_policy = {sid: self.policy_key(mp) for sid, mp in plan.policies.items()}
        views: dict[str | None, tuple[dict[str, Any], list[dict[str, Any]]] | None] = {None: loaded}
        for key_ in set(seg_policy.values()) - {None}:
            view = views[key_] = self._profile(store, pid, key_, events_of=events_of)
            if view is not None and values is not None:
                view[0][FIELD] = values
        # Which segments can this change affect? All of them when the profile's attributes (or
        # identity merge/split, which changes them), the segment set, or a window closing due by
        # now says so; otherwise only those reading an event type whose events changed.
        seen: Any = attributes
        if len(views) > 1:
            seen = {k or "": v[0] if v is not None else None for k, v in views.items()}
        state = _fingerprint(plan.generation, seen, events)
        raw = store.get(STATE, pid)
        before = orjson.loads(raw) if raw is not None else None
        due = store.get(DUE_BY_PROFILE, pid)
        changed: set[str] | None = None
        also: frozenset[int] = frozenset()
        if (
            before is not None
            and state["a"] is not None
            and before.get("g") == state["g"]
            and before.get("a") == state["a"]
            and (due is None or due.decode().split("\x1f", 1)[0] > f"{_ms(now):015d}")
        ):
            old_e, new_e = before.get("e") or {}, state["e"]
            changed = {t for t in set(old_e) | set(new_e) if old_e.get(t) != new_e.get(t)}
        elif before is None and not current and due is None and not attributes and len(views) == 1:
            # Never evaluated, in no segment, no attributes: a new visitor's first events. What it
            # was before is the empty profile, so only the segments reading the event types it
            # has can differ from their verdict on an empty profile, which was "not a member"
            # except for the few that hold on an empty profile (those are evaluated too).
            changed = set(state["e"])
            also = empty.holding()
        if before != state:
            wb.put_json(STATE, pid, state)
        # what inSegment reads: only worked out when some continuous segment uses it
        member: dict[str, bool] = {}
        if plan.reads_memberships:
            member = {sid: ms.as_seen(rec, now).get("status") in ms.IN for sid, rec in current.items()}
        if changed is None:
            todo = plan.segments
        elif also:
            todo = [plan.segments[i] for i in sorted(also.union(plan.affected(changed)))]
        else:
            todo = [plan.segments[i] for i in plan.affected(changed)]
        written = False
        for doc, compiled in todo:
            sid = doc["id"]
            view = views[seg_policy.get(sid)]
            qualifies = view is not None and bool(compiled.predicate(view[0], view[1], now, member))
            member[sid] = qualifies
            old = current.get(sid)
            if old is not None:
                old = ms.as_seen(old, now)  # an expired membership that qualifies again re-enters
            new = ms.transition(old, qualifies, now, ttl_days=doc.get("ttlInDays"))
            if new is not None:
                change = ms.apply(ups, pid, sid, old, new, now)
                written = True
                if change.status != change.previous:
                    changes.append(change)
        if written:
            ms.write(wb, pid, ups, current=rounds)
        self._schedule(wb, pid, self._next_change(events, windows, plan.calendar, now), due)
        return changes

    @staticmethod
    def _next_change(
        events: Sequence[dict[str, Any]], windows: set[timedelta], calendar: bool, now: datetime
    ) -> datetime | None:
        """When this profile's windowed results can next change without new data."""
        best: datetime | None = None
        if calendar:
            best = min(next_boundaries(now))
        if windows:
            # Events come in timestamp order, and only one younger than the longest window can
            # still cross a window's edge after now: the walk goes back from the newest and stops
            # at the first older one (a long history costs its recent events, not all of them).
            horizon = now - max(windows) - _EPS - _ORDER_SLACK
            for event in reversed(events):
                t = event_time(event)
                if t is None:
                    continue
                if t <= horizon:
                    break
                for w in windows:
                    # the edge itself and just after it, for both `<` and `<=` windows
                    for cand in (t + w, t + w + _EPS):
                        if cand > now and (best is None or cand < best):
                            best = cand
        return best

    @staticmethod
    def _schedule(wb: WriteBatch, pid: str, due: datetime | None, old: bytes | None) -> None:
        """Put ``pid``'s next due time in ``wb``; ``old`` is its stored ``DUE_BY_PROFILE`` row."""
        new_key = None if due is None else key(f"{_ms(due):015d}", pid)
        if old is not None and old.decode() != new_key:
            wb.delete(DUE, old.decode())
        if new_key is None:
            if old is not None:
                wb.delete(DUE_BY_PROFILE, pid)
        elif old is None or old.decode() != new_key:
            wb.put(DUE, new_key, b"").put(DUE_BY_PROFILE, pid, new_key.encode())

    def next_due(self) -> datetime | None:
        """The earliest time a scheduled re-evaluation is due."""
        for k, _ in self.store.scan(DUE, limit=1):
            return parse_time(int(k.split("\x1f", 1)[0]))
        return None

    def tick(self, now: datetime | None = None) -> list[ms.Change]:
        """Re-evaluate every profile whose windows close by ``now``; commit atomically."""
        now = now or utcnow()
        first = self.next_due()
        if first is None or first > now:
            return []  # the usual case, decided without taking the write lock
        limit = f"{_ms(now):015d}"
        with self._sandbox.write_lock:
            # Read under the lock: another process (or thread) may have re-evaluated and
            # rescheduled these profiles since the peek above, and re-evaluating from an older
            # read could commit a transition twice.
            due = []
            for k, _ in self.store.scan(DUE):
                stamp, pid = k.split("\x1f", 1)
                if stamp > limit:
                    break
                due.append(pid)
            if not due:
                return []
            staged = self._sandbox.begin()
            try:
                changes = self.on_change(staged, due, now)
                staged.commit()
            except BaseException:
                staged.rollback()
                raise
        return changes

    # -- edge ----------------------------------------------------------------------------------------

    def evaluate_synchronous(
        self,
        profile_id: str | None,
        event: Mapping[str, Any] | None = None,
        *,
        profile: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> dict[str, bool]:
        """Edge evaluation: synchronous segments for one profile plus an incoming event; stores nothing.

        Args:
            profile_id: a stored profile (its attributes and events are read), or ``None``.
            event: the incoming ExperienceEvent, evaluated as if already stored.
            profile: attributes to use instead of (or on top of) the stored ones.
            now: evaluation time; defaults to the event's timestamp or the current time.
        """
        store = self.store
        current: dict[str, dict[str, Any]] = {}
        if profile_id is not None:
            current = ms.read(store, profile_id)
        when = now or (event_time(event) if event is not None else None) or utcnow()
        active_cas = self.computed.active()
        views: dict[str | None, tuple[dict[str, Any], list[dict[str, Any]]]] = {}

        def view_for(policy: str | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            if policy not in views:
                attributes: dict[str, Any] = {}
                events: list[dict[str, Any]] = []
                if profile_id is not None:
                    loaded = self._profile(store, profile_id, policy)
                    if loaded is not None:
                        attributes, events = loaded
                if profile:
                    attributes = {**attributes, **dict(profile)}
                if event is not None:
                    events = sorted([*events, dict(event)], key=lambda e: str(e.get("timestamp", "")))
                if active_cas:
                    attributes[FIELD] = ComputedAttributes.compute(active_cas, attributes, events, when)
                views[policy] = (attributes, events)
            return views[policy]

        member = {sid: rec.get("status") in ms.IN for sid, rec in current.items()}
        out: dict[str, bool] = {}
        for doc, compiled in self._active("synchronous"):
            attributes, events = view_for(self.policy_key(doc.get("mergePolicyId")))
            member[doc["id"]] = out[doc["id"]] = bool(compiled.predicate(attributes, events, when, member))
        return out

    # -- batch ---------------------------------------------------------------------------------------

    def rows(self, now: datetime, store: PointStore | None = None, policy: str | None = None) -> list[Row]:
        """Every profile as (profile id, attributes with computed attributes, events); with
        ``policy`` (see :meth:`policy_key`) merged on read under that merge policy."""
        return list(self._iter_rows(now, store, policy))

    def batch_input(self, now: datetime) -> StoredProfiles | list[Row]:
        """Every profile, as a batch job reads them: straight from the stored documents, or as
        Python rows when computed attributes (evaluated in Python) are active."""
        if self.computed.active():
            return self.rows(now)
        return StoredProfiles(self._sandbox, lambda: self._iter_rows(now, self.store, None))

    def _iter_rows(self, now: datetime, store: PointStore | None, policy: str | None) -> Iterator[Row]:
        store = store or self.store
        active_cas = self.computed.active()
        for pid, doc in self._sandbox.profiles.scan_profiles():
            if policy is not None:
                loaded = self._profile(store, pid, policy)
                if loaded is None:
                    continue
                attributes, events = loaded
            else:
                members = self._sandbox.identity.members(pid, store)
                events = self._sandbox.profiles.events_for_members(members, store) if members else []
                attributes = dict(doc.get("attributes") or {})
                attributes.pop("segmentMembership", None)
            if active_cas:
                attributes[FIELD] = ComputedAttributes.compute(active_cas, attributes, events, now)
            yield pid, attributes, events

    def _sample_rows(
        self,
        now: datetime,
        pids: Sequence[str],
        policy: str | None,
        event_types: frozenset[str] | None,
        event_budget: int,
    ) -> _Sample:
        """Rows of these profiles (read in this order) for an estimate, reading events only when
        the expression or a computed attribute needs them: at most :data:`EVENT_CAP` per profile,
        and no further profiles once ``event_budget`` events have been read."""
        store = self.store
        active_cas = self.computed.active()
        need_events = bool(active_cas) or event_types is None or bool(event_types)
        # computed attributes read every event; otherwise only the types the expression names
        keep = None if active_cas or event_types is None else event_types
        out = _Sample(rows=[])
        read = 0

        def events_of(members: Sequence[Identity], at: PointStore) -> list[dict[str, Any]]:
            nonlocal read
            if not need_events:
                return []
            found = self._sandbox.profiles.events_for_members(members, at, limit=EVENT_CAP + 1)
            read += len(found)
            if len(found) > EVENT_CAP:
                out.truncated += 1  # evaluated over part of its events: the interval allows either answer
                found = found[:EVENT_CAP]
            if keep is not None:
                found = [e for e in found if e.get("eventType") in keep]
            return found

        for start in range(0, len(pids), 500):
            chunk = pids[start : start + 500]
            docs = store.get_many(PROFILES, chunk) if policy is None else {}
            for pid in chunk:
                raw = docs.get(pid)
                if policy is None and raw is None:
                    continue  # deleted since the ids were drawn
                doc = orjson.loads(raw) if raw is not None else None
                if doc is not None and policy is None and not need_events:
                    # neither events nor the identity graph are needed: the document is the row
                    attributes = dict(doc.get("attributes") or {})
                    attributes.pop("segmentMembership", None)
                    attributes.pop(FIELD, None)
                    loaded: tuple[dict[str, Any], list[dict[str, Any]]] | None = (attributes, [])
                else:
                    loaded = self._profile(store, pid, policy, doc=doc, events_of=events_of)
                out.examined += 1
                if doc is not None:
                    out.namespaces[pid] = _primary_namespace(doc)
                if loaded is not None:
                    attributes, events = loaded
                    if active_cas:
                        attributes[FIELD] = ComputedAttributes.compute(active_cas, attributes, events, now)
                    out.rows.append((pid, attributes, events))
                if read >= event_budget and pid != pids[-1]:
                    # the ids come in random order, so the profiles read so far are a sample too
                    out.complete = False
                    return out
        return out

    def _memberships_of(self, pids: Iterable[str], segment_ids: frozenset[str]) -> dict[str, set[str]]:
        """Current members among ``pids`` of each of ``segment_ids`` (what ``inSegment`` reads)."""
        out: dict[str, set[str]] = {sid: set() for sid in segment_ids}
        if not segment_ids:
            return out
        for pid in pids:
            for sid, rec in ms.read(self.store, pid).items():
                if sid in out and rec.get("status") in ms.IN:
                    out[sid].add(pid)
        return out

    def evaluate_batch(
        self,
        docs: Sequence[dict[str, Any]],
        rows: Iterable[Row],
        now: datetime,
        outside: Mapping[str, set[str]] | None = None,
    ) -> dict[str, set[str]]:
        """Members of each definition over ``rows``, in dependency order, through the SQL engine.

        ``rows`` are the materialised profiles; definitions naming another merge policy are
        evaluated over the profiles merged on read under it."""
        members: dict[str, set[str]] = {k: set(v) for k, v in (outside or {}).items()}
        import duckdb

        by_policy: dict[str | None, Iterable[Row]] = {None: rows}
        con = duckdb.connect()
        try:
            for level in dependency_order(list(docs)):
                groups: dict[str | None, dict[str, Compiled]] = {}
                for d in level:
                    groups.setdefault(self.policy_key(d.get("mergePolicyId")), {})[d["id"]] = (
                        self.definitions.compile(d)
                    )
                    members[d["id"]] = set()
                for policy, compiled in groups.items():
                    if policy not in by_policy:
                        by_policy[policy] = self.rows(now, policy=policy)
                    args = (con, "profiles_rel", by_policy[policy], compiled, now, members)
                    per_segment = getattr(self.engine, "batch_members", None)
                    if per_segment is not None:  # optional: skips a flag per profile and segment
                        for sid, pids in per_segment(*args).items():
                            if members[sid]:
                                members[sid] |= pids
                            else:  # the usual case: no copy of a set of up to every profile id
                                members[sid] = pids
                        continue
                    for pid, flags in self.engine.batch_query(*args):
                        for sid, flag in flags.items():
                            if flag:
                                members[sid].add(pid)
        finally:
            con.close()
        return members

    def _outside_members(self, docs: Sequence[Mapping[str, Any]], exclude: set[str]) -> dict[str, set[str]]:
        """Current members of the segments ``docs`` read with ``inSegment`` that the job does not
        evaluate itself (only those: reading every membership costs a scan of them all)."""
        wanted: set[str] = set()
        for d in docs:
            wanted |= self.definitions.compile(d).dependencies
        wanted -= exclude
        out: dict[str, set[str]] = {}
        if not wanted:
            return out
        for pid, sid, rec in ms.scan_all(self.store):
            if sid in wanted and rec.get("status") in ms.IN:
                out.setdefault(sid, set()).add(pid)
        return out

    def run_job(
        self,
        segments: Sequence[Mapping[str, Any]] | None = None,
        *,
        now: datetime | None = None,
        source: str = "api",
        properties: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run a segment job (§b4) synchronously and return the finished job object.

        Args:
            segments: ``[{"segmentId": id}, ...]``; ``None`` or ``[{"segmentId": "*"}]`` runs every
                batch-enabled, non-inactive definition.
        """
        job = self.submit_job(segments, source=source, properties=properties)
        return self.execute_job(job["id"], now=now)

    def submit_job(
        self,
        segments: Sequence[Mapping[str, Any]] | None = None,
        *,
        source: str = "api",
        properties: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a job in status NEW (run it with :meth:`execute_job`)."""
        wanted = [str(s.get("segmentId")) for s in (segments or [{"segmentId": "*"}])]
        if "*" in wanted:
            docs = [
                d
                for d in self.definitions.all()
                if d["evaluationInfo"]["batch"]["enabled"] and d.get("lifecycleState") != "inactive"
            ]
        else:
            docs = [self.definitions.get(sid) for sid in wanted]
        now_ms = int(time.time() * 1000)
        job: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "profileInstanceId": "ups",
            "source": source,
            "status": "NEW",
            "segments": [
                {
                    "segmentId": d["id"],
                    "segment": {
                        "id": d["id"],
                        "expression": d["expression"],
                        "mergePolicyId": d.get("mergePolicyId"),
                        "version": d["version"],
                    },
                }
                for d in docs
            ],
            "metrics": {},
            "schema": {"name": "_xdm.context.profile"},
            "properties": dict(properties or {}),
            "creationTime": now_ms,
            "updateTime": now_ms,
            "updateEpoch": now_ms // 1000,
        }
        job["_links"] = {
            "cancel": {"href": f"/segment/jobs/{job['id']}", "method": "DELETE"},
            "checkStatus": {"href": f"/segment/jobs/{job['id']}", "method": "GET"},
        }
        self.store.write(WriteBatch().put_json(JOBS, job["id"], job))
        return job

    def execute_job(self, job_id: str, *, now: datetime | None = None) -> dict[str, Any]:
        job = self.job(job_id)
        if job["status"] != "NEW":
            return job
        now = now or utcnow()
        start = time.time()
        job["status"] = "PROCESSING"
        self.store.write(WriteBatch().put_json(JOBS, job_id, job))
        try:
            docs = [self.definitions.get(s["segmentId"]) for s in job["segments"]]
            ids = {d["id"] for d in docs}
            rows = self.batch_input(now)
            seg_start = time.time()
            result = self.evaluate_batch(docs, rows, now, self._outside_members(docs, ids))
            seg_end = time.time()
            namespaces = rows.namespaces() if isinstance(rows, StoredProfiles) else self._namespaces(rows)
            metrics, stale = self._write_batch_results(docs, namespaces, result, now)
            if stale:
                self.expire_memberships(now, stale)
        except Exception as exc:
            job["status"] = "FAILED"
            job["errors"] = [{"code": type(exc).__name__, "msg": str(exc)}]
            self.store.write(WriteBatch().put_json(JOBS, job_id, job))
            ops_metrics.record_segment_job(self._sandbox.name, "FAILED", time.time() - start)
            raise
        end = time.time()
        ops_metrics.record_segment_job(self._sandbox.name, "SUCCEEDED", end - start)
        job["status"] = "SUCCEEDED"
        job["metrics"] = {
            "totalTime": _span(start, end),
            "profileSegmentationTime": _span(seg_start, seg_end),
            **metrics,
            "totalProfiles": len(namespaces),
        }
        job["updateTime"] = int(end * 1000)
        job["updateEpoch"] = int(end)
        self.store.write(WriteBatch().put_json(JOBS, job_id, job))
        return job

    def _namespaces(self, rows: Iterable[Row]) -> dict[str, str]:
        """Each row's profile id → its primary identity namespace."""
        namespaces: dict[str, str] = {}
        for pid, _, _ in rows:
            doc = get_json(self.store, PROFILES, pid) or {}
            primary = doc.get("primary") or {}
            namespaces[pid] = str(primary.get("namespace", "unknown"))
        return namespaces

    def _write_batch_results(
        self,
        docs: Sequence[dict[str, Any]],
        namespaces: Mapping[str, str],
        result: Mapping[str, set[str]],
        now: datetime,
    ) -> tuple[dict[str, Any], list[tuple[str, str, dict[str, Any]]]]:
        """Write the job's transitions for the profiles in ``namespaces`` (profile id → primary
        namespace); returns its metrics and the expired memberships of other segments seen on
        the way (for the expiry sweep).

        The previous state comes from the membership index (one set of profiles per segment and
        stored status, see ``ms.MembershipIndex``); transitions are set differences per segment,
        and only profiles whose record changes are read, decoded and written: a job that changes
        nothing, or only confirms members (see ``ms.settle``), writes no membership document."""
        counter: dict[str, int] = {}
        by_status: dict[str, dict[str, int]] = {}
        by_ns: dict[str, dict[str, int]] = {}
        with self._sandbox.write_lock, _no_cycle_collection():
            ttl: dict[str, int | None] = {d["id"]: d.get("ttlInDays") for d in docs}
            expiry = ms.Deadline(now, or_equal=True)
            refresh = {
                sid: ms.Deadline(now + timedelta(days=days) / 2, or_equal=False)
                for sid, days in ttl.items()
                if days is not None
            }
            wb = WriteBatch()
            # the job confirms its segments' realized members by moving the segments to their
            # next round (see ms.settle): only records that change are written
            rounds_before = ms.rounds(self.store)
            rounds_after = ms.next_rounds(wb, rounds_before, ttl)
            prior = {sid: _Prior() for sid in ttl}
            stale: list[tuple[str, str, dict[str, Any]]] = []
            # every stored record, grouped by (status, validUntil, round): a job writes the same
            # few of those to many profiles, so each group is classified once, not each record
            index = ms.MembershipIndex.load(self.store)
            # a status's profiles: its one group itself when there is one (the usual case: a
            # copy of millions of ids is fresh memory), else their union; read only until the
            # index changes its groups, after the transitions are applied
            in_status: dict[str, dict[Any, list[set[str]]]] = {sid: {} for sid in ttl}
            for sid, groups in index.groups.items():
                seg = prior.get(sid)
                round_now = rounds_before.get(sid, 0)
                for (status, until, at_round), pids_at in groups.items():
                    if status == "realized" and at_round != round_now:
                        status = "existing"  # confirmed by an earlier job
                    if seg is None:  # another segment: note its expired records for the sweep
                        if until is not None and status in ms.IN and expiry.passed_by(until) and pids_at:
                            rec = {"status": status, "validUntil": until}
                            stale.extend((pid, sid, rec) for pid in sorted(pids_at))
                        continue
                    if not pids_at:
                        continue
                    in_status[sid].setdefault(status, []).append(pids_at)
                    if status not in ms.IN:
                        continue
                    if until is None:
                        if sid in refresh:
                            seg.stale |= pids_at
                    elif expiry.passed_by(until):
                        seg.expired |= pids_at
                    elif sid in refresh and refresh[sid].passed_by(until):
                        seg.stale |= pids_at
            for sid, of_status in in_status.items():
                for status, parts in of_status.items():
                    prior[sid].by_status[status] = parts[0] if len(parts) == 1 else set().union(*parts)
            memberships = _Held(self.store, rounds_before, rounds_after)
            in_namespace: dict[str, set[str]] = {}  # namespace → its profiles (a few namespaces)
            for pid, ns in namespaces.items():
                group = in_namespace.get(ns)
                if group is None:
                    group = in_namespace[ns] = set()
                group.add(pid)
            changes: list[ms.Change] = []
            plans: list[_Transitions] = []
            for doc in docs:
                sid = doc["id"]
                members = result.get(sid, set())
                if prior[sid].by_status.keys() <= _PLAIN:
                    plan = _Transitions.plan(sid, ttl[sid], members, prior[sid], now, rounds_after[sid])
                    plans.append(plan)
                    statuses = plan.counts
                else:  # a status this code does not write: decided one membership at a time
                    statuses = self._each_transition(doc, members, prior[sid], memberships, changes, now)
                counter[sid] = len(members)
                by_status[sid] = statuses
                by_ns[sid] = _count_by_namespace(members, in_namespace)
            self._emit(self.store, wb, changes)
            # Applied a slice of profiles at a time, every segment's transitions for those
            # profiles, then their documents encoded and the decoded ones dropped: a job
            # changing millions of memberships keeps a slice's worth of records in memory, not
            # all of them (fresh memory is most of the cost on a VM). Changes are delivered by
            # profile, then segment in the job's order.
            rank = {doc["id"]: i for i, doc in enumerate(docs)}
            wanted = self._wanted()
            touched = sorted(
                set(memberships.edited).union(
                    *(plan.touched for plan in plans),
                    *(plan.confirmed for plan in plans if wanted is None or plan.sid in wanted),
                )
            )
            for start in range(0, len(touched), _PROFILES_PER_SLICE):
                part = touched[start : start + _PROFILES_PER_SLICE]
                memberships.prefetch(part)
                changes = []
                in_part = set(part)
                for plan in plans:
                    plan.apply(in_part, memberships, changes, record=wanted is None or plan.sid in wanted)
                changes.sort(key=lambda c: (c.profile_id, rank[c.segment_id]))
                memberships.write(wb, part)
                self._emit(self.store, wb, changes)
            if len(plans) == len(docs):
                for plan in plans:
                    plan.regroup(index)
                index.settle_written(memberships.written, rounds_after)
                index.save(wb)
            else:  # records changed one by one: the next job reads every document again
                index.drop(wb)
            self.store.write(wb)
        metrics = {
            "segmentedProfileCounter": counter,
            "segmentedProfileByStatusCounter": by_status,
            "segmentedProfileByNamespaceCounter": by_ns,
        }
        return metrics, stale

    @staticmethod
    def _each_transition(
        doc: Mapping[str, Any],
        members: set[str],
        prior: _Prior,
        memberships: _Held,
        changes: list[ms.Change],
        now: datetime,
    ) -> dict[str, int]:
        """A segment's batch transitions one membership at a time. Returns the status counts."""
        sid = doc["id"]
        recorded: set[str] = set().union(*prior.by_status.values())
        statuses: dict[str, int] = {}
        # a profile neither in the segment nor recorded before has no transition: only members
        # and recorded profiles are visited (not every profile per segment)
        for pid in sorted(members | recorded):
            old = memberships.before(pid).get(sid) if pid in recorded else None
            if old is not None and ms.expired(old, now) and pid not in members:
                new = ms.transition(old, False, now)  # past validUntil and not confirmed: exits
            else:
                if old is not None:
                    old = ms.as_seen(old, now)  # expired but qualifying again: re-enters
                new = ms.transition(old, pid in members, now, batch=True, ttl_days=doc.get("ttlInDays"))
            if new is not None:
                change = ms.apply(memberships.edit(pid), pid, sid, old, new, now)
                if change.status != change.previous:
                    changes.append(change)
            status = (new or old or {}).get("status")
            if status is not None and (new is not None or status in ms.IN):
                statuses[status] = statuses.get(status, 0) + 1
        return statuses

    def job(self, job_id: str) -> dict[str, Any]:
        doc = get_json(self.store, JOBS, job_id)
        if doc is None:
            raise NotFound(f"Segment job {job_id} does not exist", path="id")
        result: dict[str, Any] = doc
        return result

    def jobs(self, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        docs = [d for _, d in scan_json(self.store, JOBS) if status is None or d["status"] == status]
        docs.sort(key=lambda d: d["creationTime"], reverse=True)
        return docs[:limit]

    def recover(self) -> list[dict[str, Any]]:
        """Mark the jobs a stopped process left ``NEW`` or ``PROCESSING`` as ``FAILED`` with the
        reason (a job writes its memberships in one commit at its end, so nothing half-done
        stays); returns them. Submit the job again to evaluate."""
        failed = []
        for _, job in scan_json(self.store, JOBS):
            was = job.get("status")
            if was not in {"NEW", "PROCESSING"}:
                continue
            now_ms = int(time.time() * 1000)
            job["status"] = "FAILED"
            job["errors"] = [
                {
                    "code": "INTERRUPTED",
                    "msg": f"The server stopped while this job was {was}; "
                    "no membership of it was written. Submit the job again.",
                }
            ]
            job["updateTime"] = now_ms
            job["updateEpoch"] = now_ms // 1000
            self.store.write(WriteBatch().put_json(JOBS, job["id"], job))
            failed.append(job)
        return failed

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        job = self.job(job_id)
        if job["status"] in {"NEW", "QUEUED"}:
            job["status"] = "CANCELLED"
            self.store.write(WriteBatch().put_json(JOBS, job_id, job))
        return job

    # -- preview, estimate, explain ------------------------------------------------------------------

    def preview(
        self,
        expression: str,
        fmt: str = "pql/text",
        *,
        now: datetime | None = None,
        sample_size: int = 100,
        seed: int | None = None,
        merge_policy_id: str | None = None,
        max_profiles: int | None = None,
    ) -> dict[str, Any]:
        """Estimate the size of an unsaved expression and list a sample of matching profiles (§b7).

        At most ``max_profiles`` profiles are read: every profile when the sandbox has no more,
        else a uniform random sample of that many, drawn from the profiles' random order
        (:mod:`tessera.profile.sample`) with reads bounded by the sample size, and the size
        extrapolated with a 95 % normal-approximation interval. Only the sampled profiles' events are read, only when
        the expression (or a computed attribute) reads events, at most :data:`EVENT_CAP` per
        profile and :data:`EVENTS_PER_PROFILE` per profile on average, so the cost follows
        ``max_profiles``, not the size of the store.

        Args:
            expression: the PQL to estimate.
            fmt: ``pql/text`` or ``pql/json``.
            now: evaluation time (default: now).
            sample_size: how many matching profiles to list.
            seed: seeds the sample (default: a new one each call).
            merge_policy_id: evaluate over profiles merged under this policy.
            max_profiles: the bound; default the ``estimate_exact_limit`` setting (the reference's
                one million). The builder's live estimate passes ``estimate_sample_size``.
        """
        compiled = self.engine.compile(fmt, expression)
        preview_id = str(uuid.uuid4())
        now = now or utcnow()
        policy = self.policy_key(merge_policy_id, strict=True)
        if max_profiles is None:
            settings = getattr(self._sandbox, "settings", None)
            max_profiles = int(getattr(settings, "estimate_exact_limit", EXACT_LIMIT))
        limit = max(1, max_profiles)
        total = sample.count(self.store)
        pids = sample.draw(self.store, limit, random.Random(seed), total)
        read = self._sample_rows(now, pids, policy, compiled.event_types, EVENTS_PER_PROFILE * limit)
        if read.complete and len(pids) >= total:
            total = read.examined  # every profile was read: an exact count
        sampled = read.rows
        doc: dict[str, Any] = {
            "id": preview_id,
            "version": 0,
            "dependencies": sorted(compiled.dependencies),
            "expression": {"format": fmt, "value": expression},
            "mergePolicyId": merge_policy_id,
        }
        self.definitions._cache[(preview_id, 0)] = compiled
        # inSegment reads the stored memberships of the sampled profiles only
        outside = self._memberships_of((pid for pid, _, _ in sampled), compiled.dependencies)
        try:
            matched = sorted(self.evaluate_batch([doc], sampled, now, outside)[preview_id])
        finally:
            self.definitions._cache.pop((preview_id, 0), None)
        n, k, t = read.examined, len(matched), read.truncated
        estimate = estimate_size(total, n, k)
        if t:
            # a profile evaluated over part of its events might have answered either way
            estimate["confidenceIntervalBounds"] = [
                estimate_size(total, n, max(0, k - t))["confidenceIntervalBounds"][0],
                estimate_size(total, n, min(n, k + t))["confidenceIntervalBounds"][1],
            ]
            estimate["exact"] = False
        estimate["profilesTruncated"] = t
        by_ns: dict[str, int] = {}
        results: list[dict[str, Any]] = []
        for pid in matched:
            ns = read.namespaces.get(pid)
            if ns is None or len(results) < sample_size:
                pdoc = self._sandbox.profiles.stored_document(pid) or {"profileId": pid}
                ns = _primary_namespace(pdoc)
                if len(results) < sample_size:
                    results.append(pdoc)
            by_ns[ns] = by_ns.get(ns, 0) + 1
        result = {
            "previewId": preview_id,
            "state": "RESULT_READY",
            "results": results,
            "estimate": {
                **estimate,
                "estimatedNamespaceDistribution": [
                    {"namespaceId": ns, "profilesMatchedSoFar": c} for ns, c in sorted(by_ns.items())
                ],
                "state": "RESULT_READY",
                "_links": {"preview": f"/preview/{preview_id}"},
            },
            "predicateExpression": expression,
            "predicateType": fmt,
        }
        self.store.write(WriteBatch().put_json(PREVIEWS, preview_id, result))
        return result

    def get_preview(self, preview_id: str, *, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        doc = get_json(self.store, PREVIEWS, preview_id)
        if doc is None:
            raise NotFound(f"Preview {preview_id} does not exist", path="previewId")
        return {
            "results": doc["results"][offset : offset + limit],
            "state": doc["state"],
            "page": {"offset": offset, "size": len(doc["results"][offset : offset + limit])},
            "links": {},
        }

    def get_estimate(self, preview_id: str) -> dict[str, Any]:
        doc = get_json(self.store, PREVIEWS, preview_id)
        if doc is None:
            raise NotFound(f"Preview {preview_id} does not exist", path="previewId")
        result: dict[str, Any] = doc["estimate"]
        return result

    def delete_preview(self, preview_id: str) -> None:
        self.store.write(WriteBatch().delete(PREVIEWS, preview_id))

    def explain(self, seg_id: str, profile_id: str, *, now: datetime | None = None) -> dict[str, Any]:
        """Why a profile is (or is not) in a segment: the result, each sub-condition, matching events."""
        doc = self.definitions.get(seg_id)
        compiled = self.definitions.compile(doc)
        loaded = self._profile(self.store, profile_id, self.policy_key(doc.get("mergePolicyId")))
        if loaded is None:
            raise NotFound(f"Profile {profile_id} does not exist", path="profileId")
        attributes, events = loaded
        now = now or utcnow()
        active_cas = self.computed.active()
        if active_cas:
            attributes[FIELD] = ComputedAttributes.compute(active_cas, attributes, events, now)
        member = {sid: rec.get("status") in ms.IN for sid, rec in ms.read(self.store, profile_id).items()}
        result = bool(compiled.predicate(attributes, events, now, member))
        out: dict[str, Any] = {
            "segmentId": seg_id,
            "profileId": profile_id,
            "evaluatedAt": format_time(now),
            "qualifies": result,
            "expression": doc["expression"]["value"],
            "membership": ms.read(self.store, profile_id).get(seg_id),
        }
        if compiled.explain is not None:
            out["explanation"] = compiled.explain(attributes, events, now, member)
        else:
            out["explanation"] = explain_by_parts(self.engine, compiled.text, attributes, events, now, member)
        return out

    # -- scheduler thread -----------------------------------------------------------------------------

    def add_periodic(self, fn: Callable[[datetime], object]) -> None:
        self._periodic.append(fn)

    def catch_up(self) -> None:
        """See ``Sandbox.catch_up``: other processes' writes, before reading outside the lock."""
        fn = getattr(self._sandbox, "catch_up", None)
        if fn is not None:
            fn()

    def reload(self) -> None:
        """Forget what this process remembers of the stored definitions (another process changed
        them). The scheduler thread, listeners and activation stay: a round in progress on this
        object goes on with the reloaded definitions."""
        self.definitions = Definitions(
            self._sandbox.store, self.engine, getattr(self._sandbox, "name", "prod")
        )
        self.computed = ComputedAttributes(self._sandbox.store, self.engine)
        self._active_cache = {}
        self._plan_cache = None

    def start(self, interval: float = 1.0) -> None:
        """Start the scheduler thread: closes windows, runs due schedules, drives destinations."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                self.run_periodic(utcnow())

        self._thread = threading.Thread(target=loop, name="tessera-segments", daemon=True)
        self._thread.start()

    def run_periodic(self, now: datetime) -> None:
        """One scheduler round (what the thread does each interval).

        With several processes on one sandbox, the sandbox's ``timer_guard`` (a cross-process
        lease, see :mod:`tessera.scaleout.coordination`) lets one of them run the round and the
        others skip it, so a due schedule runs and a webhook batch is sent by one process only.
        """
        guard = getattr(self._sandbox, "timer_guard", None)
        if guard is None:
            self._run_rounds(now)
            return
        try:
            with guard() as ours:
                if ours:
                    self._run_rounds(now)
        except Exception:  # noqa: BLE001 - the lease's store unreachable: try again next round
            logging.getLogger(__name__).exception("segment scheduler: cannot take the timer lease")

    def _run_rounds(self, now: datetime) -> None:
        rounds: list[Callable[[datetime], object]] = [self.tick, self.schedules.run_due, *self._periodic]
        if self._last_expiry is None or now - self._last_expiry >= EXPIRY_INTERVAL:
            self._last_expiry = now
            rounds.append(self.expire_memberships)
        for fn in rounds:
            try:
                fn(now)
            except Exception:  # noqa: BLE001 - a failing round must not kill the scheduler
                logging.getLogger(__name__).exception("segment scheduler round failed")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.activation.close()


def _count_by_namespace(members: set[str], in_namespace: Mapping[str, set[str]]) -> dict[str, int]:
    """How many ``members`` have each primary namespace (``unknown``: none, or not known), by
    set intersections: a lookup per member and segment in Python cost seconds per job."""
    if len(in_namespace) > 32:  # many namespaces: one lookup per member is cheaper
        of = {pid: ns for ns, pids in in_namespace.items() for pid in pids}
        counted = Counter(of.get(pid, "unknown") for pid in members)
        return dict(counted)
    out: dict[str, int] = {}
    for ns, pids in in_namespace.items():
        # counted without building the intersection: usually most members share a namespace
        n = len(members & pids) if len(pids) < len(members) else len(members) - len(members - pids)
        if n:
            out[ns] = n
    rest = len(members) - sum(out.values())
    if rest:
        out["unknown"] = out.get("unknown", 0) + rest
    return out


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector: a job builds millions of small acyclic objects (sets of
    profile ids, records, changes), and each full collection walks every one of them again (a
    third of a job's membership time at 20k profiles). Reference counting still frees them."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass
class _Prior:
    """A job segment's stored memberships before the job, as sets of profile ids."""

    by_status: dict[Any, set[str]] = field(default_factory=dict)
    expired: set[str] = field(default_factory=set)
    """In the segment, past ``validUntil`` (read as exited)."""
    stale: set[str] = field(default_factory=set)
    """In the segment, not expired, ``validUntil`` due for a rewrite when confirmed (ttl)."""


class _Held:
    """A batch job's view of the stored memberships: read per slice of profiles, decoded when
    first needed, settled as after the job (its segments one round on: the realized members it
    confirms read ``existing`` without a write)."""

    def __init__(self, store: PointStore, rounds_before: ms.Rounds, rounds_after: ms.Rounds) -> None:
        self._store = store
        self._before = rounds_before
        self._after = rounds_after
        self._raw: dict[str, bytes] = {}
        self._decoded: dict[str, ms.Memberships] = {}
        self.edited: dict[str, ms.Memberships] = {}
        """Profiles whose memberships the job changed, with their memberships after it."""
        self.written: set[str] = set()
        """Profiles whose memberships :meth:`write` wrote."""

    def prefetch(self, pids: Sequence[str]) -> None:
        """Read the stored memberships of ``pids`` in one go (the job is about to change them)."""
        self._raw.update(self._store.get_many(ms.MEMBERSHIPS, pids))

    def _stored(self, pid: str) -> bytes | None:
        raw = self._raw.get(pid)
        return raw if raw is not None else self._store.get(ms.MEMBERSHIPS, pid)

    def get(self, pid: str) -> ms.Memberships:
        ups = self._decoded.get(pid)
        if ups is None:
            raw = self._stored(pid)
            ups = self._decoded[pid] = ms.settle(orjson.loads(raw), self._after) if raw is not None else {}
        return ups

    def before(self, pid: str) -> ms.Memberships:
        """The profile's memberships as they read before the job."""
        raw = self._stored(pid)
        return ms.settle(orjson.loads(raw), self._before) if raw is not None else {}

    def edit(self, pid: str) -> ms.Memberships:
        """The profile's memberships, to change in place (see :meth:`write`)."""
        ups = self.edited.get(pid)
        if ups is None:
            ups = self.edited[pid] = self.get(pid)
        return ups

    def write(self, wb: WriteBatch, pids: Sequence[str]) -> None:
        """Add the edited memberships of ``pids`` to ``wb`` and forget them (decoded and stored).
        The job keeps the membership index up to date itself."""
        edited, decoded, raw, after = self.edited, self._decoded, self._raw, self._after
        for pid in pids:
            ups = edited.pop(pid, None)
            if ups is not None:
                ms.write(wb, pid, ups, current=after, indexed=True)
                self.written.add(pid)
            decoded.pop(pid, None)
            raw.pop(pid, None)


@dataclass
class _Transitions:
    """One segment's batch transitions, decided as set differences: what :func:`ms.transition`
    decides per membership (with a batch confirmation, ``ttlInDays`` and expiry), applied only to
    the profiles whose record changes. A confirmation (realized -> existing) changes no record:
    the job's new round makes it read ``existing`` (see :func:`ms.settle`)."""

    sid: str
    until: str | None
    """``validUntil`` of the records the job writes (``ttlInDays`` after it), if any."""
    now: datetime
    round: int
    """The segment's round after the job."""
    prior: _Prior
    entering: set[str]
    confirmed: set[str]
    leaving: set[str]
    touched: set[str]
    """Profiles whose record changes."""
    counts: dict[str, int]

    @classmethod
    def plan(
        cls, sid: str, ttl_days: int | None, members: set[str], prior: _Prior, now: datetime, round_after: int
    ) -> _Transitions:
        realized = prior.by_status.get("realized", set())
        existing = prior.by_status.get("existing", set())
        expired = prior.expired
        live_realized = realized - expired if expired else realized
        live_existing = existing - expired if expired else existing
        # Sets of up to every profile, per segment: the usual jobs (every member new, or every
        # one confirmed or kept) are recognised by one comparison instead of five passes that
        # each build a set of millions of ids.
        none: set[str] = set()
        if not realized and not existing:
            entering, confirmed, kept, leaving = members, none, none, none  # a first job
        elif not realized and not expired and members == existing:
            entering, confirmed, kept, leaving = none, none, members, none  # nothing changes
        elif not existing and not expired and members == realized:
            entering, confirmed, kept, leaving = none, members, none, none  # all confirmed
        else:
            entering = members.difference(live_realized, live_existing)  # expired ones enter again
            confirmed = members & live_realized  # realized -> existing, keeping the time it entered
            kept = members & live_existing
            leaving = (realized - members) | (existing - members)
        refreshed = (kept | confirmed) & prior.stale if prior.stale else none  # validUntil moves forward
        counts = {"realized": len(entering), "existing": len(confirmed) + len(kept), "exited": len(leaving)}
        return cls(
            sid,
            format_time(now + timedelta(days=ttl_days)) if ttl_days is not None else None,
            now,
            round_after,
            prior,
            entering,
            confirmed,
            leaving,
            entering if not leaving and not refreshed else entering | leaving | refreshed,
            {status: n for status, n in counts.items() if n},
        )

    def apply(self, part: set[str], memberships: _Held, changes: list[ms.Change], *, record: bool) -> None:
        """Change the records of the profiles of ``part`` in ``memberships``, adding a change per
        status change when ``record`` (in no particular order: the caller sorts them). Runs once
        per changed membership, millions of times in a large job: lookups are bound locally, and
        every profile entering (or leaving) shares one record, which is never changed in place."""
        touched, confirmed = self.touched, self.confirmed
        pids = touched & part
        if record:
            pids |= confirmed & part
        if not pids:
            return
        sid, now, until = self.sid, self.now, self.until
        stamp = format_time(now)
        entered: dict[str, Any] = {"status": "realized", "lastQualificationTime": stamp}
        if until is not None:
            entered["validUntil"] = until
        entered[ms.ROUND] = self.round
        exited = {"status": "exited", "lastQualificationTime": stamp}
        edit, add, change_of = memberships.edit, changes.append, ms.Change
        entering, leaving = self.entering, self.leaving
        expired = self.prior.expired
        was_realized = self.prior.by_status.get("realized", set())
        for pid in pids:
            if pid in confirmed:  # reads existing from now on; only a due validUntil is written
                if pid in touched:
                    ups = edit(pid)
                    ups[sid] = {**ups[sid], "validUntil": until}
                if record:
                    add(change_of(pid, sid, "existing", now, "realized"))
                continue
            ups = edit(pid)
            old = ups.get(sid)
            new: dict[str, Any]
            if pid in entering:
                # an expired membership reads as exited (at its validUntil) before entering again
                previous = "exited" if pid in expired else old.get("status") if old else None
                new, status = entered, "realized"
            elif pid in leaving:
                previous, status = "realized" if pid in was_realized else "existing", "exited"
                new = exited
            else:  # still in: only validUntil moves forward, no status change to deliver
                ups[sid] = {**(old or {}), "validUntil": until}
                continue
            ups[sid] = new
            if record:
                add(change_of(pid, sid, status, now, previous))

    def regroup(self, index: ms.MembershipIndex) -> None:
        """Move the profiles whose records :meth:`apply` changed to their new groups in ``index``
        (the last use of this plan: the index takes its sets over)."""
        refreshed = self.touched - self.entering - self.leaving
        index.move(self.sid, self.entering, ("realized", self.until, self.round))
        index.move(self.sid, self.leaving, ("exited", None, 0))
        index.move(self.sid, refreshed, ("existing", self.until, 0))


@dataclass
class _Sample:
    """What an estimate read: rows in sample order, profiles evaluated over part of their events,
    and whether every drawn profile was read (False: the event budget ran out first)."""

    rows: list[Row]
    examined: int = 0
    """Drawn profiles still stored (rows has those with a view under the merge policy)."""
    truncated: int = 0
    complete: bool = True
    namespaces: dict[str, str] = field(default_factory=dict)
    """Primary identity namespace of the profiles whose stored document was read."""


@dataclass(frozen=True)
class _StreamPlan:
    segments: list[tuple[dict[str, Any], Compiled]]
    policies: dict[str, str]
    """Segment id → its mergePolicyId, for the segments that name one."""
    ids: frozenset[str]
    windows: frozenset[timedelta]
    calendar: bool
    generation: str
    _by_type: dict[str, list[int]] = field(default_factory=dict, init=False)
    _always: list[int] = field(default_factory=list, init=False)
    _any_event: list[int] = field(default_factory=list, init=False)
    horizon: timedelta | None = field(default=None, init=False)
    """The longest event window of the segments that read events: older events cannot change
    any of them. ``None`` when one may read any event (see ``Compiled.event_horizon``)."""
    empty_holding: frozenset[int] | None = field(default=None, init=False)
    """Segments without ``inSegment`` or calendar times that hold on an empty profile (filled
    by ``_EmptyVerdicts`` on first use)."""

    def __post_init__(self) -> None:
        by_type: dict[str, list[int]] = {}
        always: list[int] = []  # inSegment: a dependency may have changed in this evaluation
        any_event: list[int] = []  # may read any event
        for i, (_, c) in enumerate(self.segments):
            if c.dependencies:
                always.append(i)
            elif c.event_types is None:
                any_event.append(i)
            else:
                for t in c.event_types:
                    by_type.setdefault(t, []).append(i)
        horizons = [c.event_horizon for _, c in self.segments if c.event_types != frozenset()]
        if all(h is not None for h in horizons):
            object.__setattr__(
                self, "horizon", max((h for h in horizons if h is not None), default=timedelta(0))
            )
        object.__setattr__(self, "_by_type", by_type)
        object.__setattr__(self, "_always", always)
        object.__setattr__(self, "_any_event", any_event)

    @property
    def reads_memberships(self) -> bool:
        """Some segment uses ``inSegment`` (reads the profile's other memberships)."""
        return bool(self._always)

    def affected(self, changed: set[str]) -> list[int]:
        """Positions (in dependency order) of the segments a change of events of these types can
        affect, when the attributes did not change."""
        picked = set(self._always)
        if changed:
            picked.update(self._any_event)
            by_type = self._by_type
            for t in changed:
                picked.update(by_type.get(t, ()))
        return sorted(picked)


class _EmptyVerdicts:
    """Which continuous segments an empty profile (no attributes, no events) is in at ``now``,
    worked out only when a profile needs it, at most once per streaming call.

    Without events or attributes a result can only change with the calendar (windows measure
    from the data's times, see ``_next_change``), so the plan keeps the verdicts of the segments
    that do not read the calendar and only those that do are evaluated again for each call."""

    def __init__(self, plan: _StreamPlan, now: datetime) -> None:
        self._plan = plan
        self._now = now
        self._holding: frozenset[int] | None = None

    def holding(self) -> frozenset[int]:
        """Positions of the segments without ``inSegment`` that hold on an empty profile (the
        others are evaluated on every profile anyway)."""
        if self._holding is None:
            plan, now = self._plan, self._now
            if plan.empty_holding is None:
                held = frozenset(
                    i
                    for i, (_, c) in enumerate(plan.segments)
                    if not c.dependencies and not c.calendar and c.predicate({}, [], now, {})
                )
                object.__setattr__(plan, "empty_holding", held)  # a cache on a frozen plan
            assert plan.empty_holding is not None
            self._holding = plan.empty_holding.union(
                i
                for i, (_, c) in enumerate(plan.segments)
                if not c.dependencies and c.calendar and c.predicate({}, [], now, {})
            )
        return self._holding


_NO_TYPE = "\x00"


def _fingerprint(
    generation: str, attributes: Mapping[str, Any], events: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """What a streaming evaluation depends on, compactly: the segment generation, a hash of the
    attributes, and per event type the number of events and a sum of hashes of their ``_id`` and
    timestamp (events are immutable records identified by ``_id``)."""
    try:
        attrs: str | None = hashlib.blake2b(
            orjson.dumps(attributes, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS), digest_size=8
        ).hexdigest()
    except TypeError:
        attrs = None  # not serialisable: never trusted, every segment is evaluated
    acc: dict[str, list[int]] = {}
    for e in events:
        t = e.get("eventType")
        k = t if type(t) is str else _NO_TYPE
        h = zlib.crc32(f"{e.get('_id')}\x1f{e.get('timestamp')}".encode())
        a = acc.get(k)
        if a is None:
            acc[k] = [1, h]
        else:
            a[0] += 1
            a[1] = (a[1] + h) & 0xFFFFFFFF
    return {"g": generation, "a": attrs, "e": acc}


def _primary_namespace(doc: Mapping[str, Any]) -> str:
    return str((doc.get("primary") or {}).get("namespace", "unknown"))


def _span(start: float, end: float) -> dict[str, int]:
    return {
        "startTimeInMs": int(start * 1000),
        "endTimeInMs": int(end * 1000),
        "totalTimeInMs": int((end - start) * 1000),
    }


def estimate_size(total: int, sampled: int, matched: int) -> dict[str, Any]:
    """Size estimate with a 95 % interval from ``matched`` of ``sampled`` out of ``total`` profiles.

    >>> estimate_size(100, 100, 30)["estimatedSize"], estimate_size(100, 100, 30)["standardError"]
    (30, 0.0)
    >>> e = estimate_size(10_000, 1_000, 100); e["estimatedSize"], e["confidenceIntervalBounds"]
    (1000, [824, 1176])
    """
    if sampled <= 0 or total <= 0:
        return {
            "estimatedSize": 0,
            "standardError": 0.0,
            "confidenceInterval": "95%",
            "confidenceIntervalBounds": [0, 0],
            "profilesReadSoFar": 0,
            "profilesMatchedSoFar": 0,
            "numRowsToRead": total,
            "totalRows": total,
            "exact": True,
        }
    p = matched / sampled
    exact = sampled >= total
    fpc = 0.0 if exact else math.sqrt((total - sampled) / max(total - 1, 1))
    se = 0.0 if exact else total * math.sqrt(p * (1 - p) / sampled) * fpc
    size = round(p * total)
    low, high = max(0, round(size - 1.96 * se)), min(total, round(size + 1.96 * se))
    return {
        "estimatedSize": size,
        "standardError": round(se, 3),
        "confidenceInterval": "95%",
        "confidenceIntervalBounds": [low, high],
        "profilesReadSoFar": sampled,
        "profilesMatchedSoFar": matched,
        "numRowsToRead": sampled,
        "totalRows": total,
        "exact": exact,
    }


__all__ = ["EXACT_LIMIT", "SegmentService", "estimate_size"]
