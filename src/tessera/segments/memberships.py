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
LEGACY = "memberships"
"""Formats 1-3: ``<profile id>|<segment id>`` → record (read only by the format-4 migration)."""
IN = frozenset({"realized", "existing"})

Memberships = dict[str, dict[str, Any]]
"""One profile's memberships: segment id → record."""


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


def read(store: PointStore, profile_id: str) -> Memberships:
    """``{segment id: {status, lastQualificationTime}}`` of one profile."""
    raw = store.get(MEMBERSHIPS, profile_id)
    return {} if raw is None else dict(orjson.loads(raw))


def read_many(store: PointStore, profile_ids: Iterable[str]) -> dict[str, Memberships]:
    """The memberships of those ``profile_ids`` that have any."""
    return {pid: orjson.loads(raw) for pid, raw in store.get_many(MEMBERSHIPS, list(profile_ids)).items()}


def scan_profiles(store: PointStore) -> Iterator[tuple[str, Memberships]]:
    """Every profile holding a membership, with its memberships, in profile id order (read in
    bulk: a job reads them all)."""
    for keys, values in scan_chunks(store, MEMBERSHIPS):
        yield from zip(keys, map(orjson.loads, values), strict=True)


def scan_raw(store: PointStore) -> Iterator[tuple[list[str], list[bytes]]]:
    """Every profile's memberships as stored (JSON), in chunks, in profile id order."""
    return scan_chunks(store, MEMBERSHIPS)


def scan_all(store: PointStore) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every membership as ``(profile id, segment id, record)``, by profile then segment."""
    for pid, ups in scan_profiles(store):
        for sid, rec in ups.items():
            yield pid, sid, rec


def any_stored(store: PointStore) -> bool:
    """Whether any profile holds a membership."""
    return may_have_rows(store, MEMBERSHIPS)


def write(wb: WriteBatch, profile_id: str, ups: Mapping[str, Mapping[str, Any]]) -> None:
    """Store ``ups`` as the whole of the profile's memberships (segments in id order)."""
    if ups:
        wb.put(MEMBERSHIPS, profile_id, dump_json(dict(sorted(ups.items()))))
    else:
        wb.delete(MEMBERSHIPS, profile_id)


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
    "Change",
    "Deadline",
    "Memberships",
    "any_stored",
    "apply",
    "as_seen",
    "expired",
    "read",
    "read_many",
    "scan_all",
    "scan_profiles",
    "scan_raw",
    "transition",
    "write",
]
