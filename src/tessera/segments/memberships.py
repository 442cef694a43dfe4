"""Membership records and transitions (``segmentMembership.ups``).

A membership is ``{status, lastQualificationTime}`` with status ``realized`` (entered at that
time), ``existing`` (still in at a later batch evaluation) or ``exited`` (left at that time).
Every status change is a :class:`Change`, handed to the change listeners (destinations) in the
same store write as the membership itself.

Storage (store format 4): one document per profile in :data:`MEMBERSHIPS`, ``profile id →
{segment id: record}`` (segment ids in order). A batch job over a million profiles and fifty
segments touches ~15 million memberships; one row per (profile, segment) cost a store row write
per membership even when only its status word changed, and a full scan of them all to learn the
previous state. Per profile, a job writes one row per profile that changed and reads one per
profile, and streaming reads a profile's memberships with one point read. Formats up to 3 kept
one row per (profile, segment) in :data:`LEGACY` (migrated by :mod:`tessera.ops.migrations`).

Confirmations are not written. A batch evaluation turns every ``realized`` member that still
qualifies into ``existing``; at the second job over a million profiles that rewrote every
record. Instead each segment has a *round* (:data:`ROUNDS`: how many batch jobs evaluated it),
and a stored ``realized`` record carries the round it was written in (field :data:`ROUND`,
absent for round 0). Every job bumps its segments' rounds and rewrites each realized record it
does not confirm (it exits), so a realized record from an earlier round has been confirmed and
reads as ``existing``, with the time it entered. Readers here see records *settled*: statuses
derived, round fields removed. Writers stamp each realized record with its segment's current
round (:func:`write`): a record that still reads ``realized`` was entered in the current round.

A batch job plans its transitions from every record's (status, validUntil, round), per segment.
Reading and decoding every document for that was a third of a job that changes nothing, so the
job keeps them grouped in :class:`MembershipIndex` (one row per segment), and every other writer
marks the profiles it rewrites (:data:`DIRTY`, by :func:`write`): the next job re-reads only
those documents.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import orjson

from tessera.model import format_time, parse_time
from tessera.store import PointStore, WriteBatch, dump_json
from tessera.store.base import may_have_rows, scan_chunks

MEMBERSHIPS = "profile_memberships"
ROUNDS = "segment_rounds"
"""One document (key :data:`ROUNDS_KEY`): segment id → its round (absent: 0)."""
ROUNDS_KEY = "rounds"
ROUND = "round"
"""Stored on ``realized`` records only: the round of their segment they were written in."""
INDEX = "membership_index"
"""Segment id → its records grouped by (status, validUntil, round): ``[[status, validUntil,
round, [profile id, ...]], ...]``; valid only while key :data:`INDEX_VALID` is present."""
INDEX_VALID = "\x00valid"
"""A key no segment id can be: present while the index holds every stored record."""
DIRTY = "membership_index_dirty"
"""Profile ids whose memberships were written since the index was (key only)."""
LEGACY = "memberships"
"""Formats 1-3: ``<profile id>|<segment id>`` → record (read only by the format-4 migration)."""
IN = frozenset({"realized", "existing"})

Memberships = dict[str, dict[str, Any]]
"""One profile's memberships: segment id → record."""
Rounds = Mapping[str, int]
"""Segment id → how many batch jobs evaluated it."""
GroupKey = tuple[Any, Any, int]
"""A stored record's (status, validUntil, round)."""


class Change(NamedTuple):
    """One membership status change, as destinations receive it (a named tuple: a job over a
    million profiles makes millions of them, and a frozen dataclass costs ~4x more to build)."""

    profile_id: str
    segment_id: str
    status: str
    time: datetime
    previous: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "profileId": self.profile_id,
            "segmentId": self.segment_id,
            "status": self.status,
            "lastQualificationTime": format_time(self.time),
            "previousStatus": self.previous,
        }


def rounds(store: PointStore) -> dict[str, int]:
    """Each segment's round: how many batch jobs evaluated it (segments never evaluated: absent)."""
    raw = store.get(ROUNDS, ROUNDS_KEY)
    return {} if raw is None else dict(orjson.loads(raw))


def next_rounds(wb: WriteBatch, current: Rounds, segment_ids: Iterable[str]) -> dict[str, int]:
    """Bump the rounds of ``segment_ids`` (a batch job evaluated them) in ``wb``; returns them all."""
    bumped = dict(current)
    for sid in segment_ids:
        bumped[sid] = bumped.get(sid, 0) + 1
    wb.put(ROUNDS, ROUNDS_KEY, dump_json(bumped))
    return bumped


def settle(ups: Memberships, rounds: Rounds) -> Memberships:
    """Stored records as readers see them, in place: a ``realized`` record from an earlier round
    of its segment was confirmed by a later job and reads ``existing``; round fields go.

    >>> settle({"s": {"status": "realized", "lastQualificationTime": "t", "round": 1}}, {"s": 2})
    {'s': {'status': 'existing', 'lastQualificationTime': 't'}}
    >>> settle({"s": {"status": "realized", "round": 2}}, {"s": 2})
    {'s': {'status': 'realized'}}
    """
    for sid, rec in ups.items():
        if rec.get("status") == "realized" and rec.pop(ROUND, 0) != rounds.get(sid, 0):
            rec["status"] = "existing"
    return ups


def read(store: PointStore, profile_id: str, current: Rounds | None = None) -> Memberships:
    """``{segment id: {status, lastQualificationTime}}`` of one profile (``current``: the
    segments' rounds, read from ``store`` when not given)."""
    raw = store.get(MEMBERSHIPS, profile_id)
    if raw is None:
        return {}
    return settle(orjson.loads(raw), rounds(store) if current is None else current)


def read_many(
    store: PointStore, profile_ids: Iterable[str], current: Rounds | None = None
) -> dict[str, Memberships]:
    """The memberships of those ``profile_ids`` that have any (``current`` as for :func:`read`)."""
    found = store.get_many(MEMBERSHIPS, list(profile_ids))
    if not found:
        return {}
    now = rounds(store) if current is None else current
    return {pid: settle(orjson.loads(raw), now) for pid, raw in found.items()}


def scan_profiles(store: PointStore) -> Iterator[tuple[str, Memberships]]:
    """Every profile holding a membership, with its memberships, in profile id order (read in
    bulk: a job reads them all)."""
    now = rounds(store)
    for keys, values in scan_chunks(store, MEMBERSHIPS):
        for pid, raw in zip(keys, values, strict=True):
            yield pid, settle(orjson.loads(raw), now)


def scan_all(store: PointStore) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every membership as ``(profile id, segment id, record)``, by profile then segment."""
    for pid, ups in scan_profiles(store):
        for sid, rec in ups.items():
            yield pid, sid, rec


def any_stored(store: PointStore) -> bool:
    """Whether any profile holds a membership."""
    return may_have_rows(store, MEMBERSHIPS)


def write(
    wb: WriteBatch,
    profile_id: str,
    ups: Mapping[str, Mapping[str, Any]],
    *,
    current: Rounds,
    indexed: bool = False,
) -> None:
    """Store ``ups`` (settled records) as the whole of the profile's memberships (segments in id
    order), each ``realized`` record stamped with its segment's ``current`` round. The profile
    is marked for the :class:`MembershipIndex` to read again, unless the caller keeps the index
    up to date itself (``indexed``: batch jobs)."""
    if not indexed:
        wb.put(DIRTY, profile_id, b"")
    if not ups:
        wb.delete(MEMBERSHIPS, profile_id)
        return
    stored: dict[str, Mapping[str, Any]] = {}
    for sid in sorted(ups):
        rec = ups[sid]
        if rec.get("status") == "realized":
            at = current.get(sid, 0)
            if rec.get(ROUND, 0) != at:  # (records a job stamped already are not copied)
                rec = {**rec, ROUND: at} if at else {k: v for k, v in rec.items() if k != ROUND}
        stored[sid] = rec
    wb.put(MEMBERSHIPS, profile_id, dump_json(stored))


def group_key(rec: Mapping[str, Any]) -> GroupKey:
    """A stored record's group in the :class:`MembershipIndex`."""
    return rec.get("status"), rec.get("validUntil"), rec.get(ROUND, 0)


class MembershipIndex:
    """Every stored membership record, grouped per segment by (status, validUntil, round) into
    sets of profile ids: what a batch job needs to plan its transitions as set differences.

    Loaded from its rows plus the documents of the profiles written since (:data:`DIRTY`), or,
    without a valid index, from a scan of every document. A job moves profiles between groups
    as it changes their records (:meth:`move`) and saves the segments that changed.
    """

    def __init__(self, groups: dict[str, dict[GroupKey, set[str]]], dirty: list[str]) -> None:
        self.groups = groups
        """Segment id → group → profile ids."""
        self._dirty = dirty
        self._changed: set[str] = set()

    @classmethod
    def load(cls, store: PointStore) -> MembershipIndex:
        dirty = [pid for pid, _ in store.scan(DIRTY)]
        if store.get(INDEX, INDEX_VALID) is None:
            return cls._from_documents(store, dirty)
        groups: dict[str, dict[GroupKey, set[str]]] = {}
        for sid, raw in store.scan(INDEX):
            if sid != INDEX_VALID:
                groups[sid] = {
                    (status, until, at): set(pids) for status, until, at, pids in orjson.loads(raw)
                }
        index = cls(groups, dirty)
        index._reread(store, dirty)
        return index

    @classmethod
    def _from_documents(cls, store: PointStore, dirty: list[str]) -> MembershipIndex:
        index = cls({}, dirty)
        groups = index.groups
        for keys, values in scan_chunks(store, MEMBERSHIPS):
            for pid, raw in zip(keys, values, strict=True):
                for sid, rec in orjson.loads(raw).items():
                    by_key = groups.get(sid)
                    if by_key is None:
                        by_key = groups[sid] = {}
                    at = (rec.get("status"), rec.get("validUntil"), rec.get(ROUND, 0))  # group_key, inline
                    group = by_key.get(at)
                    if group is None:
                        group = by_key[at] = set()
                    group.add(pid)
        index._changed.update(groups)
        return index

    def _reread(self, store: PointStore, pids: Sequence[str]) -> None:
        """Put ``pids`` where their stored documents say now (written since the index was)."""
        for start in range(0, len(pids), 1000):
            part = pids[start : start + 1000]
            # out of their old groups with one set operation per group, not a lookup per profile
            # and group (streaming can mark a large share of the profiles between two jobs)
            leaving = set(part)
            for sid, by_key in self.groups.items():
                for group in by_key.values():
                    if not group.isdisjoint(leaving):
                        group -= leaving
                        self._changed.add(sid)
            found = store.get_many(MEMBERSHIPS, part)
            for pid in part:
                raw = found.get(pid)
                if raw is not None:
                    for sid, rec in orjson.loads(raw).items():
                        self.groups.setdefault(sid, {}).setdefault(group_key(rec), set()).add(pid)
                        self._changed.add(sid)

    def move(self, sid: str, pids: set[str], to: GroupKey) -> None:
        """Record that the records of ``pids`` in segment ``sid`` are now stored in group ``to``.
        The index may keep ``pids`` itself as that group (a job's first run moves millions of
        profiles into new groups; copying them was a tenth of it): the caller hands it over."""
        if not pids:
            return
        by_key = self.groups.setdefault(sid, {})
        for at, group in by_key.items():
            if at != to and not group.isdisjoint(pids):
                group -= pids
        target = by_key.get(to)
        if not target:
            by_key[to] = pids
        else:
            target |= pids
        self._changed.add(sid)

    def settle_written(self, pids: set[str], current: Rounds) -> None:
        """The documents of ``pids`` were written settled (see :func:`settle`): their realized
        records from an earlier round of their segment are stored ``existing`` now."""
        if not pids:
            return
        for sid, by_key in self.groups.items():
            round_now = current.get(sid, 0)
            for (status, until, at), group in list(by_key.items()):
                if status == "realized" and at != round_now and not group.isdisjoint(pids):
                    moved = group & pids
                    group -= moved
                    by_key.setdefault(("existing", until, 0), set()).update(moved)
                    self._changed.add(sid)

    def save(self, wb: WriteBatch) -> None:
        """Write the segments that changed, and clear the marks of the profiles read again."""
        for sid in sorted(self._changed):
            rows = [
                [status, until, at, list(pids)]
                for (status, until, at), pids in self.groups[sid].items()
                if pids
            ]
            if rows:
                wb.put(INDEX, sid, dump_json(rows))
            else:
                wb.delete(INDEX, sid)
        wb.put(INDEX, INDEX_VALID, b"")
        for pid in self._dirty:
            wb.delete(DIRTY, pid)

    @staticmethod
    def drop(wb: WriteBatch) -> None:
        """Invalidate the index (the next job reads every document), for writers that change
        records without keeping it up to date."""
        wb.delete(INDEX, INDEX_VALID)


def transition(
    previous: Mapping[str, Any] | None,
    qualifies: bool,
    now: datetime,
    *,
    batch: bool = False,
    ttl_days: int | None = None,
) -> dict[str, Any] | None:
    """The new record after an evaluation, or ``None`` when nothing changes.

    Streaming keeps ``realized`` while a profile stays in; a batch evaluation marks it ``existing``.
    With ``ttl_days`` a membership carries ``validUntil`` (the definition's ``ttlInDays`` after the
    last evaluation that confirmed it); a confirmation rewrites it once half the ttl has passed, so
    a profile that stays in is not rewritten at every evaluation.

    >>> from datetime import UTC, datetime
    >>> t = datetime(2024, 1, 1, tzinfo=UTC)
    >>> transition(None, True, t)["status"], transition(None, False, t)
    ('realized', None)
    >>> transition({"status": "realized", "lastQualificationTime": "x"}, True, t, batch=True)["status"]
    'existing'
    >>> transition({"status": "existing"}, False, t)["status"]
    'exited'
    >>> transition(None, True, t, ttl_days=30)["validUntil"]
    '2024-01-31T00:00:00.000Z'
    """
    status = previous.get("status") if previous else None
    if qualifies:
        if status in IN:
            rec: dict[str, Any] | None = None
            if batch and status == "realized":
                kept = (previous or {}).get("lastQualificationTime") or format_time(now)
                rec = {**(previous or {}), "status": "existing", "lastQualificationTime": kept}
            if ttl_days is not None and _stale(previous, now, ttl_days):
                rec = {**(rec or previous or {}), "validUntil": format_time(now + timedelta(days=ttl_days))}
            return rec
        new = {"status": "realized", "lastQualificationTime": format_time(now)}
        if ttl_days is not None:
            new["validUntil"] = format_time(now + timedelta(days=ttl_days))
        return new
    if status in IN:
        return {"status": "exited", "lastQualificationTime": format_time(now)}
    return None


def _earlier(stamp: Any, when: datetime, *, or_equal: bool) -> bool:
    """``stamp`` (a stored time) is before ``when`` (or at it, with ``or_equal``).

    Times this module writes are ``format_time`` strings, whose text order is their time order:
    comparing text spares a parse per membership in jobs over millions of them."""
    return _deadline(when, or_equal).passed_by(stamp)


class Deadline:
    """Whether stored times are before ``when`` (or at it, with ``or_equal``), its text formatted
    once for a job's many comparisons (see :func:`_earlier`)."""

    def __init__(self, when: datetime, *, or_equal: bool) -> None:
        self._when = when
        self._text = format_time(when)
        self._or_equal = or_equal

    def passed_by(self, stamp: Any) -> bool:
        if isinstance(stamp, str) and len(stamp) == 24 and stamp[-1] == "Z":
            return stamp <= self._text if self._or_equal else stamp < self._text
        at = parse_time(stamp)
        return at <= self._when if self._or_equal else at < self._when


@functools.lru_cache(maxsize=64)
def _deadline(when: datetime, or_equal: bool) -> Deadline:
    """One :class:`Deadline` per time: a streaming call compares every membership it reads with
    the same ``now``."""
    return Deadline(when, or_equal=or_equal)


def _stale(previous: Mapping[str, Any] | None, now: datetime, ttl_days: int) -> bool:
    until = (previous or {}).get("validUntil")
    if not until:
        return True
    return _renewal(now, ttl_days).passed_by(until)


@functools.lru_cache(maxsize=64)
def _renewal(now: datetime, ttl_days: int) -> Deadline:
    """A validity ending before this is renewed (halfway through a new one); one per (now, ttl),
    as for :func:`_deadline`."""
    return Deadline(now + timedelta(days=ttl_days) / 2, or_equal=False)


def expired(record: Mapping[str, Any], now: datetime) -> bool:
    """An in-segment membership whose ``validUntil`` has passed without a confirming evaluation."""
    until = record.get("validUntil")
    return record.get("status") in IN and until is not None and _earlier(until, now, or_equal=True)


def as_seen(record: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A membership as readers see it at ``now``: expired ones read as ``exited`` at ``validUntil``."""
    if expired(record, now):
        return {"status": "exited", "lastQualificationTime": record["validUntil"]}
    return record


def apply(
    ups: Memberships,
    profile_id: str,
    segment_id: str,
    previous: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    now: datetime,
) -> Change:
    """Put ``new`` into the profile's memberships ``ups`` (the caller :func:`write` writes them once
    it has applied every change of the profile) and return the change."""
    ups[segment_id] = dict(new)
    return Change(
        profile_id, segment_id, str(new["status"]), now, previous.get("status") if previous else None
    )


__all__ = [
    "Change",
    "DIRTY",
    "Deadline",
    "GroupKey",
    "IN",
    "INDEX",
    "INDEX_VALID",
    "LEGACY",
    "MEMBERSHIPS",
    "MembershipIndex",
    "Memberships",
    "ROUND",
    "ROUNDS",
    "ROUNDS_KEY",
    "any_stored",
    "apply",
    "as_seen",
    "expired",
    "group_key",
    "next_rounds",
    "read",
    "read_many",
    "rounds",
    "scan_all",
    "scan_profiles",
    "settle",
    "transition",
    "write",
]
