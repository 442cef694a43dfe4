"""Streaming / edge / batch-only classification of an expression (spec §6), with reasons in words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tessera.pql import ast as A

_UNIT = {
    "millisecond": timedelta(milliseconds=1),
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}
_DAY = timedelta(hours=24)
STREAMING_EVENT_WINDOW = _DAY
"""The longest window a streaming-eligible expression may put on the events it reads."""


@dataclass(frozen=True)
class Eligibility:
    """Where an expression may be evaluated.

    Attributes:
        streaming: may run continuously on incoming events (``evaluationInfo.continuous``).
        edge: may run synchronously at the edge (``evaluationInfo.synchronous``).
        reasons: why streaming/edge are excluded (empty when both are allowed).
    """

    streaming: bool
    edge: bool
    reasons: tuple[str, ...]

    @property
    def event_window(self) -> timedelta | None:
        """How far before now the events a streaming-eligible expression reads can lie: every
        event it reads is in a chain step or a filter with a window of at most a day (the rules
        above), so older events cannot change its result. ``None`` when it is not streaming."""
        return STREAMING_EVENT_WINDOW if self.streaming else None

    @property
    def method(self) -> str:
        """``"streaming"``, ``"edge"`` (edge but not streaming never happens) or ``"batch"``."""
        return "streaming" if self.streaming else "edge" if self.edge else "batch"


def _window_ok(when: A.Occurs | None) -> bool:
    """The time constraint keeps the event within the last 24 hours."""
    if when is None:
        return False
    if when.kind == "on" and isinstance(when.target, A.TimeLit) and when.target.kind == "today":
        return True
    if (
        when.kind == "offset"
        and when.direction == "before"
        and when.cmp in ("<", "<=")
        and isinstance(when.target, A.TimeLit)
        and when.target.kind == "now"
        and isinstance(when.amount, A.Lit)
        and isinstance(when.amount.value, int)
        and when.unit in _UNIT
    ):
        return when.amount.value * _UNIT[when.unit] <= _DAY
    return False


def _conjuncts(node: A.Node) -> list[A.Node]:
    if isinstance(node, A.Binary) and node.op.lower() == "and":
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def _windowed_event_filter(node: A.Node) -> bool:
    """``xEvent[... and timestamp occurs < N hours before now]`` with a window of 24 hours or less.

    Tessera goes beyond the reference rules here (spec §6.1 lists filters and aggregations over
    events as batch-only): a filter whose events are bounded to the last day needs only that
    day's events, which the streaming evaluator has, and its window closes on a timer. So
    windowed counts and sums (``xEvent[...].count() > 2``) stream in real time.
    """
    if not (isinstance(node, A.Filter) and isinstance(node.arr, A.XEvent)):
        return False
    for part in _conjuncts(node.cond):
        if (
            isinstance(part, A.Occurs)
            and isinstance(part.subject, A.Field)
            and part.subject.name == "timestamp"
            and _window_ok(part)
        ):
            return True
    return False


def eligibility(node: A.Node) -> Eligibility:
    """Classify a (segment) expression per spec §6.1/§6.2 (current rules).

    >>> eligibility(A.Binary("=", A.Field(A.Ctx(), "country"), A.Lit("US"))).method
    'streaming'
    """
    reasons: list[str] = []
    nodes = A.walk(node)
    chains = [n for n in nodes if isinstance(n, A.Chain)]
    in_seg = any(isinstance(n, A.Call) and n.name == "inSegment" for n in nodes)
    other_events = [n for n in nodes if isinstance(n, A.XEvent)]
    chain_sources = sum(1 for c in chains if isinstance(c.source, A.XEvent))
    windowed = sum(1 for n in nodes if _windowed_event_filter(n))
    if len(other_events) > chain_sources + windowed:
        reasons.append(
            "it reads events outside chain(...) without a time window of 24 hours or less "
            "(select/exists/filters/aggregations over all of xEvent need the full event history; "
            "add `and timestamp occurs < 24 hours before now` to the filter to stream it)"
        )
    for c in chains:
        for s in c.steps:
            if not _window_ok(s.when):
                reasons.append(
                    f"chain step {s.label} has no time window of 24 hours or less "
                    "(use WHEN(today) or WHEN(< 24 hours before now))"
                )
    if any(isinstance(n, A.Agg) for n in nodes):
        reasons.append("it aggregates over events, which needs the full history")
    if any(isinstance(n, A.ObjLit) for n in nodes) or any(
        isinstance(n, A.Call) and n.name in ("groupBy", "average") for n in nodes
    ):
        reasons.append("it builds grouped or averaged values, which are batch-only")
    streaming = not reasons
    edge = streaming
    if chains and in_seg:
        reasons.append("it combines an event condition with inSegment(...) in one rule")
        streaming = edge = False
    if not reasons and not chains and in_seg:
        streaming = edge = True  # segment of segments
    return Eligibility(streaming, edge, tuple(reasons))
