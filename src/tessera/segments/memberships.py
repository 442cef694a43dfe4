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
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
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
LEGACY = "memberships"
"""Formats 1-3: ``<profile id>|<segment id>`` → record (read only by the format-4 migration)."""
IN = frozenset({"realized", "existing"})

Memberships = dict[str, dict[str, Any]]
"""One profile's memberships: segment id → record."""
Rounds = Mapping[str, int]
"""Segment id → how many batch jobs evaluated it."""


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


def status_in(rec: Mapping[str, Any], round_now: int) -> Any:
    """The status a stored (unsettled) record reads as while its segment is at ``round_now``."""
    status = rec.get("status")
    if status == "realized" and rec.get(ROUND, 0) != round_now:
        return "existing"
    return status


def read(store: PointStore, profile_id: str, current: Rounds | None = None) -> Memberships:
    """``{segment id: {status, lastQualificationTime}}`` of one profile (``current``: the
    segments' rounds, read from ``store`` when not given)."""
    raw = store.get(MEMBERSHIPS, profile_id)
    if raw is None:
        return {}
    return settle(dict(orjson.loads(raw)), rounds(store) if current is None else current)


def read_many(store: PointStore, profile_ids: Iterable[str]) -> dict[str, Memberships]:
    """The memberships of those ``profile_ids`` that have any."""
    found = store.get_many(MEMBERSHIPS, list(profile_ids))
    if not found:
        return {}
    now = rounds(store)
    return {pid: settle(orjson.loads(raw), now) for pid, raw in found.items()}


def scan_profiles(store: PointStore) -> Iterator[tuple[str, Memberships]]:
    """Every profile holding a membership, with its memberships, in profile id order (read in
    bulk: a job reads them all)."""
    now = rounds(store)
    for keys, values in scan_chunks(store, MEMBERSHIPS):
        for pid, raw in zip(keys, values, strict=True):
            yield pid, settle(orjson.loads(raw), now)


def scan_raw(store: PointStore) -> Iterator[tuple[list[str], list[bytes]]]:
    """Every profile's memberships as stored (JSON, unsettled: see :func:`settle`), in chunks,
    in profile id order."""
    return scan_chunks(store, MEMBERSHIPS)


def scan_all(store: PointStore) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every membership as ``(profile id, segment id, record)``, by profile then segment."""
    for pid, ups in scan_profiles(store):
        for sid, rec in ups.items():
            yield pid, sid, rec


def any_stored(store: PointStore) -> bool:
    """Whether any profile holds a membership."""
    return may_have_rows(store, MEMBERSHIPS)


def write(wb: WriteBatch, profile_id: str, ups: Mapping[str, Mapping[str, Any]], *, current: Rounds) -> None:
    """Store ``ups`` (settled records) as the whole of the profile's memberships (segments in id
    order), each ``realized`` record stamped with its segment's ``current`` round."""
    if not ups:
        wb.delete(MEMBERSHIPS, profile_id)
        return
    stored: dict[str, Mapping[str, Any]] = {}
    for sid in sorted(ups):
        rec = ups[sid]
        if rec.get("status") == "realized":
            at = current.get(sid, 0)
            if at or ROUND in rec:
                rec = {**rec, ROUND: at} if at else {k: v for k, v in rec.items() if k != ROUND}
        stored[sid] = rec
    wb.put(MEMBERSHIPS, profile_id, dump_json(stored))


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
    return Deadline(when, or_equal=or_equal).passed_by(stamp)


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


def _stale(previous: Mapping[str, Any] | None, now: datetime, ttl_days: int) -> bool:
    until = (previous or {}).get("validUntil")
    if not until:
        return True
    return _earlier(until, now + timedelta(days=ttl_days) / 2, or_equal=False)


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
    "IN",
    "LEGACY",
    "MEMBERSHIPS",
    "ROUND",
    "ROUNDS",
    "ROUNDS_KEY",
    "Change",
    "Deadline",
    "Memberships",
    "any_stored",
    "apply",
    "as_seen",
    "expired",
    "read",
    "read_many",
    "rounds",
    "next_rounds",
    "settle",
    "status_in",
    "scan_all",
    "scan_profiles",
    "scan_raw",
    "transition",
    "write",
]
