"""Membership records and transitions (``segmentMembership.ups``).

A membership is stored under ``<profile id>|<segment id>`` as ``{status, lastQualificationTime}``
with status ``realized`` (entered at that time), ``existing`` (still in at a later batch
evaluation) or ``exited`` (left at that time). Every status change is a :class:`Change`, handed
to the change listeners (destinations) in the same store write as the membership itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from tessera.model import format_time, parse_time
from tessera.store import PointStore, WriteBatch, key
from tessera.store.base import KEY_SEP

MEMBERSHIPS = "memberships"
IN = frozenset({"realized", "existing"})


@dataclass(frozen=True)
class Change:
    """One membership status change, as destinations receive it."""

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


def read(store: PointStore, profile_id: str) -> dict[str, dict[str, Any]]:
    """``{segment id: {status, lastQualificationTime}}`` of one profile."""
    out: dict[str, dict[str, Any]] = {}
    for k, raw in store.scan(MEMBERSHIPS, key(profile_id, "")):
        out[k.rsplit(KEY_SEP, 1)[1]] = orjson.loads(raw)
    return out


def scan_all(store: PointStore) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every membership as ``(profile id, segment id, record)``."""
    for k, raw in store.scan(MEMBERSHIPS):
        pid, sid = k.rsplit(KEY_SEP, 1)
        yield pid, sid, orjson.loads(raw)


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
    if isinstance(stamp, str) and len(stamp) == 24 and stamp[-1] == "Z":
        ref = format_time(when)
        return stamp <= ref if or_equal else stamp < ref
    at = parse_time(stamp)
    return at <= when if or_equal else at < when


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
    wb: WriteBatch,
    profile_id: str,
    segment_id: str,
    previous: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    now: datetime,
) -> Change:
    wb.put_json(MEMBERSHIPS, key(profile_id, segment_id), dict(new))
    return Change(
        profile_id, segment_id, str(new["status"]), now, previous.get("status") if previous else None
    )


__all__ = ["IN", "MEMBERSHIPS", "Change", "apply", "as_seen", "expired", "read", "scan_all", "transition"]
