"""Streaming / edge / batch-only classification of an expression (spec §6), with reasons in words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tessera.pql import ast as A

_UNIT = {"millisecond": timedelta(milliseconds=1), "second": timedelta(seconds=1), "minute": timedelta(minutes=1),
         "hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
_DAY = timedelta(hours=24)


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
    def method(self) -> str:
        """``"streaming"``, ``"edge"`` (edge but not streaming never happens) or ``"batch"``."""
        return "streaming" if self.streaming else "edge" if self.edge else "batch"


def _window_ok(when: A.Occurs | None) -> bool:
    """The time constraint keeps the event within the last 24 hours."""
    if when is None:
        return False
    if when.kind == "on" and isinstance(when.target, A.TimeLit) and when.target.kind == "today":
        return True
    if (when.kind == "offset" and when.direction == "before" and when.cmp in ("<", "<=")
            and isinstance(when.target, A.TimeLit) and when.target.kind == "now"
            and isinstance(when.amount, A.Lit) and isinstance(when.amount.value, int)
            and when.unit in _UNIT):
        return when.amount.value * _UNIT[when.unit] <= _DAY
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
    if len(other_events) > chain_sources:
        reasons.append("it reads events outside chain(...) (select/exists/filters/aggregations over xEvent "
                       "need the full event history)")
    for c in chains:
        for s in c.steps:
            if not _window_ok(s.when):
                reasons.append(f"chain step {s.label} has no time window of 24 hours or less "
                               "(use WHEN(today) or WHEN(< 24 hours before now))")
    if any(isinstance(n, A.Agg) for n in nodes):
        reasons.append("it aggregates over events, which needs the full history")
    if any(isinstance(n, A.ObjLit) for n in nodes) or any(isinstance(n, A.Call) and n.name in ("groupBy", "average") for n in nodes):
        reasons.append("it builds grouped or averaged values, which are batch-only")
    streaming = not reasons
    edge = streaming
    if chains and in_seg:
        reasons.append("it combines an event condition with inSegment(...) in one rule")
        streaming = edge = False
    if not reasons and not chains and in_seg:
        streaming = edge = True  # segment of segments
    return Eligibility(streaming, edge, tuple(reasons))
