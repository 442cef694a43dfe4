"""Calendar arithmetic shared by both back ends (UTC only).

``occurs`` is reduced to a list of bound constraints ``(op, bound)`` by :func:`occurs_bounds`, generic
over the bound type so the Python evaluator applies them to datetimes and the SQL compiler turns the
same rules into comparisons (constant anchors become literals computed here at compile time).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Generic, TypeVar

X = TypeVar("X")

FIXED = {
    "millisecond": timedelta(milliseconds=1),
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}
MONTHS = {"month": 1, "year": 12, "decade": 120, "century": 1200, "millennium": 12000}


@dataclass(frozen=True, slots=True)
class Span(Generic[X]):
    """A half-open time interval ``[start, end)``; a point has ``point=True`` and start == end."""

    start: X
    end: X
    point: bool = False


def shift(t: datetime, n: int, unit: str) -> datetime:
    """``t`` moved by ``n`` units (calendar units clamp the day, e.g. 31 Mar − 1 month = 28/29 Feb)."""
    if unit in FIXED:
        return t + n * FIXED[unit]
    months = t.year * 12 + (t.month - 1) + n * MONTHS[unit]
    y, m = divmod(months, 12)
    if not 1 <= y <= 9999:
        raise OverflowError("date out of range")
    d = min(t.day, calendar.monthrange(y, m + 1)[1])
    return t.replace(year=y, month=m + 1, day=d)


def trunc(t: datetime, unit: str) -> datetime:
    """Start of the calendar ``unit`` containing ``t`` (weeks start on Monday)."""
    if unit == "millisecond":
        return t.replace(microsecond=t.microsecond - t.microsecond % 1000)
    if unit == "second":
        return t.replace(microsecond=0)
    if unit == "minute":
        return t.replace(second=0, microsecond=0)
    if unit == "hour":
        return t.replace(minute=0, second=0, microsecond=0)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    span = MONTHS[unit] // 12
    return day.replace(year=max(1, t.year - t.year % span), month=1, day=1)


def day_span(d: date) -> Span[datetime]:
    start = datetime(d.year, d.month, d.day, tzinfo=UTC)
    return Span(start, start + timedelta(days=1))


def time_word(kind: str, now: datetime) -> Span[datetime]:
    """``now`` (a point), ``today``, ``yesterday``, ``tomorrow`` (whole UTC days)."""
    if kind == "now":
        return Span(now, now, True)
    today = trunc(now, "day")
    offset = {"today": 0, "yesterday": -1, "tomorrow": 1}[kind]
    start = today + timedelta(days=offset)
    return Span(start, start + timedelta(days=1))


def period(rel: str, unit: str, now: datetime) -> Span[datetime]:
    """``this|last|next <unit>``: the whole calendar unit containing now, shifted by -1/0/+1."""
    base = trunc(now, unit)
    start = shift(base, {"this": 0, "last": -1, "next": 1}[rel], unit)
    return Span(start, shift(start, 1, unit))


def occurs_bounds(
    kind: str,
    target: Span[X],
    target2: Span[X] | None,
    cmp: str | None,
    n: int | None,
    unit: str | None,
    direction: str | None,
    shift_fn: Callable[[X, int, str], X],
    trunc_fn: Callable[[X, str], X],
) -> list[tuple[str, X]]:
    """The constraints ``(op, bound)`` (op one of < <= > >=) that a timestamp must meet.

    Rules (documented choices where the spec is silent):
    * ``on P``: inside P (a point means exactly that instant);
    * ``before P``: earlier than P's start; ``after P``: at or after P's end (later than a point);
    * ``between A and B``: from A's start up to B's end, both inclusive;
    * ``<op> N unit before A``: B = A.start − N units; ``<`` ⇒ B < t, ``<=`` ⇒ B ≤ t, with t earlier than
      A (strictly before A.start when A is a whole day/period, at or before A when A is an instant);
      ``>`` ⇒ t < B, ``>=`` ⇒ t ≤ B; ``=`` ⇒ t in the calendar unit containing B.
      ``after`` mirrors this from A.end (e.g. ``< 2 weeks after Y.timestamp``: A ≤ t < A + 2 weeks).
    """
    if kind == "on":
        if target.point:
            return [(">=", target.start), ("<=", target.start)]
        return [(">=", target.start), ("<", target.end)]
    if kind == "before":
        return [("<", target.start)]
    if kind == "after":
        return [(">", target.end)] if target.point else [(">=", target.end)]
    if kind == "between":
        assert target2 is not None
        return [(">=", target.start), ("<=" if target2.point else "<", target2.end)]
    assert cmp is not None and n is not None and unit is not None
    if direction == "before":
        anchor = target.start
        bound = shift_fn(anchor, -n, unit)
        upper = ("<=", anchor) if target.point else ("<", anchor)
        if cmp == "<":
            return [(">", bound), upper]
        if cmp == "<=":
            return [(">=", bound), upper]
        if cmp == ">":
            return [("<", bound)]
        if cmp == ">=":
            return [("<=", bound)]
    else:
        anchor = target.end
        bound = shift_fn(anchor, n, unit)
        lower = (">=", anchor)
        if cmp == "<":
            return [lower, ("<", bound)]
        if cmp == "<=":
            return [lower, ("<=", bound)]
        if cmp == ">":
            return [(">", bound)]
        if cmp == ">=":
            return [(">=", bound)]
    start = trunc_fn(bound, unit)
    return [(">=", start), ("<", shift_fn(start, 1, unit))]


def check(op: str, a: Any, b: Any) -> bool:
    """Apply one bound constraint to two datetimes."""
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)
