"""The seam between the segmentation service and the PQL compiler.

The service never parses PQL itself. It asks an :class:`Engine` to compile an expression once
into a :class:`Compiled` object (a Python predicate for streaming and edge evaluation, the
checked expression for the SQL compiler, eligibility verdicts, ``inSegment`` dependencies and
the time windows the result depends on), and to render many compiled segments into one DuckDB
query for batch jobs. :class:`PqlEngine` adapts ``tessera.pql``; tests may pass another engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from tessera.errors import PqlError, SemanticError

if TYPE_CHECKING:
    from tessera.pql import BatchSql

Predicate = Callable[[dict[str, Any], list[dict[str, Any]], datetime, Mapping[str, bool]], Any]
"""``fn(profile attributes, events in timestamp order, now, {segment id: member?}) -> value``."""

Explainer = Callable[[dict[str, Any], list[dict[str, Any]], datetime, Mapping[str, bool]], dict[str, Any]]


@dataclass(frozen=True)
class Verdict:
    """Whether an expression may run in a mode, and the rule that decides it, in words."""

    eligible: bool
    reason: str = ""


@dataclass(frozen=True)
class Compiled:
    """One expression compiled once, evaluated many times.

    Attributes:
        text: canonical ``pql/text`` of the expression.
        predicate: streaming/edge evaluator.
        checked: the compiler's checked expression (input of :meth:`Engine.batch_sql`).
        dependencies: segment ids referenced by ``inSegment``.
        windows: relative durations (``3 hours before now``) the result depends on.
        calendar: the expression uses calendar-relative times (``today``, ``this month``).
        continuous: streaming eligibility; synchronous: edge eligibility.
        explain: optional per-condition explanation of one evaluation.
    """

    text: str
    predicate: Predicate
    checked: Any = None
    dependencies: frozenset[str] = frozenset()
    windows: tuple[timedelta, ...] = ()
    calendar: bool = False
    continuous: Verdict = Verdict(True)
    synchronous: Verdict = Verdict(True)
    explain: Explainer | None = None
    json: str | None = None
    value: Predicate | None = None
    """The expression's value without boolean coercion (computed attributes); else ``predicate``."""
    event_types: frozenset[str] | None = None
    """Event types the result depends on (empty: no events); ``None``: any event may change it.
    Streaming skips a segment when only events of other types changed."""
    event_horizon: timedelta | None = None
    """Events older than this before ``now`` cannot change the result (streaming then reads only
    the newer ones); ``None``: any event may."""
    extra: dict[str, Any] = field(default_factory=dict)


class Engine(Protocol):
    """What the segmentation service needs from a PQL implementation."""

    def compile(self, fmt: str, value: str, *, boolean: bool = True) -> Compiled:
        """Parse and check ``value`` (``pql/text`` or ``pql/json``); raises ``PqlError``.

        ``boolean`` is False for computed attributes (any result type)."""
        ...

    def batch_query(
        self,
        con: Any,
        table: str,
        rows: Iterable[tuple[str, dict[str, Any], list[dict[str, Any]]]],
        segments: Mapping[str, Compiled],
        now: datetime,
        memberships: Mapping[str, set[str]],
    ) -> Iterable[tuple[str, dict[str, bool]]]:
        """Evaluate ``segments`` over ``rows`` (profile id, attributes, events) in one DuckDB scan.

        ``memberships`` maps already-evaluated segment ids to their member profile ids, for
        ``inSegment``. Yields ``(profile id, {segment id: member?})``.

        An engine may also offer ``batch_members`` with the same arguments, returning
        ``{segment id: member profile ids}``; the service prefers it for batch jobs.
        """
        ...


_UNIT = {
    "millisecond": timedelta(milliseconds=1),
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    # Month and year windows are calendar-dependent; the due queue also adds calendar
    # boundaries for them (see ``calendar``), and these lengths are upper bounds.
    "month": timedelta(days=31),
    "year": timedelta(days=366),
}
_WINDOW = re.compile(r"(\d+)\s*(millisecond|second|minute|hour|day|week|month|year)s?\b", re.IGNORECASE)
_CALENDAR = re.compile(r"\b(today|yesterday|tomorrow|this|last|next|month|year)\b", re.IGNORECASE)
_IN_SEGMENT = re.compile(r"inSegment\s*\(\s*\"((?:[^\"\\]|\\.)*)\"\s*\)", re.IGNORECASE)


def time_dependence(text: str) -> tuple[tuple[timedelta, ...], bool]:
    """Relative windows and calendar dependence of a ``pql/text`` expression.

    >>> time_dependence('xEvent[timestamp occurs < 3 hours before now].count() > 0')
    ((datetime.timedelta(seconds=10800),), False)
    >>> time_dependence('chain(xEvent, timestamp, [A: WHAT(eventType = "x") WHEN(today)])')[1]
    True
    """
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    windows = sorted({int(n) * _UNIT[u.lower()] for n, u in _WINDOW.findall(stripped)})
    return tuple(windows), bool(_CALENDAR.search(stripped))


def in_segment_ids(text: str) -> frozenset[str]:
    """Segment ids referenced by ``inSegment("...")``.

    >>> sorted(in_segment_ids('inSegment("a") and not inSegment("b")'))
    ['a', 'b']
    """
    return frozenset(_IN_SEGMENT.findall(text))


def next_boundaries(now: datetime) -> list[datetime]:
    """The next calendar boundaries (day, week, month, year starts, UTC) after ``now``."""
    day = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    week = day + timedelta(days=(7 - day.weekday()) % 7)
    month = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    year = datetime(now.year + 1, 1, 1, tzinfo=UTC)
    return [day, week, month, year]


SchemaSource = Callable[[], tuple[dict[str, Any] | None, dict[str, Any] | None]]
"""Returns the (profile, event) union JSON Schemas to check expressions against (None: syntax only)."""


class PqlEngine:
    """:class:`Engine` over ``tessera.pql``: check against the union schemas, compile once into a
    Python closure (streaming, edge) and, for batch jobs, into one DuckDB query for many segments.

    Batch falls back to the closures for ``inSegment`` (memberships are not in the relation), when
    no union schema is known, and when a segment no longer checks against the union schema (a field
    it reads was removed since it was saved: the closures read it as null, as the segment's other
    evaluations do); the results are the same, only slower.
    """

    def __init__(self, schemas: SchemaSource | None = None) -> None:
        self._schemas: SchemaSource = schemas or (lambda: (None, None))
        self._last_context: tuple[datetime, Any] | None = None

    def _context(self, now: datetime) -> Any:
        """The evaluation context for ``now``; the last one is reused (segments of one profile
        evaluation share it)."""
        last = self._last_context
        if last is not None and last[0] == now:
            return last[1]
        from tessera.pql import EvalContext

        ctx = EvalContext(now=now)
        self._last_context = (now, ctx)
        return ctx

    def compile(self, fmt: str, value: str, *, boolean: bool = True) -> Compiled:
        from tessera import pql
        from tessera.pql.to_python import compile_node, event_types

        profile_schema, event_schema = self._schemas()
        if fmt == "pql/json":
            checked = pql.check(pql.parse_json(value), profile_schema, event_schema, boolean=boolean)
        elif fmt == "pql/text":
            checked = pql.check(value, profile_schema, event_schema, boolean=boolean)
        else:
            raise PqlError(f"Unknown expression format {fmt!r}; use pql/text or pql/json")
        text = pql.to_text(checked.node)
        as_bool = compile_node(checked.node, True)
        as_value = compile_node(checked.node, False)
        windows, calendar = time_dependence(text)
        deps = in_segment_ids(text)
        context = self._context

        def with_members(profile: dict[str, Any], member: Mapping[str, bool]) -> dict[str, Any]:
            if not deps:
                return profile
            ups = {sid: {"status": "realized"} for sid, inside in member.items() if inside}
            return {**profile, "segmentMembership": {"ups": ups}}

        def predicate(
            profile: dict[str, Any], events: list[dict[str, Any]], now: datetime, member: Mapping[str, bool]
        ) -> Any:
            if not deps:
                return as_bool(profile, events, context(now))
            return as_bool(with_members(profile, member), events, context(now))

        def evaluate(
            profile: dict[str, Any], events: list[dict[str, Any]], now: datetime, member: Mapping[str, bool]
        ) -> Any:
            return as_value(with_members(profile, member), events, context(now))

        continuous = synchronous = Verdict(True)
        horizon = None
        if boolean:
            elig = pql.eligibility(checked)
            reason = "; ".join(elig.reasons)
            continuous, synchronous = Verdict(elig.streaming, reason), Verdict(elig.edge, reason)
            horizon = elig.event_window
        return Compiled(
            text=text,
            predicate=predicate,
            checked=checked,
            dependencies=deps,
            windows=windows,
            calendar=calendar,
            continuous=continuous,
            synchronous=synchronous,
            value=evaluate,
            json=None,
            event_types=event_types(checked.node),
            event_horizon=horizon,
        )

    def _batch_sql(self, table: str, segments: Mapping[str, Compiled], now: datetime) -> BatchSql | None:
        """The one query for ``segments``, or None when they are evaluated by their closures."""
        from tessera import pql

        profile_schema, event_schema = self._schemas()
        if profile_schema is None or any(c.dependencies for c in segments.values()):
            return None
        try:
            return pql.compile_batch(
                {sid: c.checked for sid, c in segments.items()},
                table,
                now,
                "duckdb",
                profile_schema=profile_schema,
                event_schema=event_schema,
            )
        except PqlError:
            return None

    @staticmethod
    def _closure_flags(
        rows: Iterable[tuple[str, dict[str, Any], list[dict[str, Any]]]],
        segments: Mapping[str, Compiled],
        now: datetime,
        memberships: Mapping[str, set[str]],
    ) -> Iterable[tuple[str, dict[str, bool]]]:
        for pid, attributes, events in rows:
            member = {sid: pid in pids for sid, pids in memberships.items()}
            yield (
                pid,
                {sid: bool(c.predicate(attributes, events, now, member)) for sid, c in segments.items()},
            )

    def batch_query(
        self,
        con: Any,
        table: str,
        rows: Iterable[tuple[str, dict[str, Any], list[dict[str, Any]]]],
        segments: Mapping[str, Compiled],
        now: datetime,
        memberships: Mapping[str, set[str]],
    ) -> Iterable[tuple[str, dict[str, bool]]]:

        batch = self._batch_sql(table, segments, now)
        if batch is None:
            yield from self._closure_flags(rows, segments, now, memberships)
            return
        # only the fields the segments read are loaded (see pql.BatchSql)
        _load_relation(con, table, batch, rows)
        cur = con.execute(batch.sql)
        names = list(segments)  # by position: a segment id may be any name, "profile_id" included
        while chunk := cur.fetchmany(50_000):
            for row in chunk:
                yield str(row[0]), {sid: bool(flag) for sid, flag in zip(names, row[1:], strict=True)}

    def batch_members(
        self,
        con: Any,
        table: str,
        rows: Iterable[tuple[str, dict[str, Any], list[dict[str, Any]]]],
        segments: Mapping[str, Compiled],
        now: datetime,
        memberships: Mapping[str, set[str]],
    ) -> dict[str, set[str]]:
        """:meth:`batch_query` answered per segment: the ids of its members.

        The flags stay in Arrow columns and only members are picked in Python: a flag per profile
        and segment through Python costs more than the query itself."""
        import numpy as np

        out: dict[str, set[str]] = {sid: set() for sid in segments}
        batch = self._batch_sql(table, segments, now)
        if batch is None:
            for pid, flags in self._closure_flags(rows, segments, now, memberships):
                for sid, flag in flags.items():
                    if flag:
                        out[sid].add(pid)
            return out
        _load_relation(con, table, batch, rows)
        result = con.sql(batch.sql).to_arrow_table()
        # one string per profile, shared by every segment's set (not one per membership)
        ids = result.column(0).to_pylist()
        for i, sid in enumerate(segments, start=1):  # columns in order: a segment id may be any name
            flags = np.equal(result.column(i).to_numpy(zero_copy_only=False), True)  # null: not in
            out[sid] = {ids[j] for j in np.flatnonzero(flags).tolist()}
        return out


def _load_relation(
    con: Any, table: str, batch: BatchSql, rows: Iterable[tuple[str, dict[str, Any], list[dict[str, Any]]]]
) -> None:
    """Fill the relation for ``batch``: rows that can load themselves straight from stored
    documents (``load_relation``, see :class:`tessera.segments.stored_profiles.StoredProfiles`)
    do; others are converted row by row."""
    from tessera import pql

    loader = getattr(rows, "load_relation", None)
    if loader is not None:
        loader(con, table, batch.profile_schema, batch.event_schema)
    else:
        pql.load_relation(con, table, batch.profile_schema, batch.event_schema, rows)


def split_top_level(text: str) -> tuple[str, list[str]]:
    """Split an expression at its top-level ``and``/``or`` (outside brackets and strings).

    Returns the operator (``"and"``, ``"or"`` or ``""`` when there is none or they are mixed) and
    the parts, outer parentheses removed.

    >>> split_top_level('(a = 1) and xEvent[b = "x and y"].count() > 0')
    ('and', ['a = 1', 'xEvent[b = "x and y"].count() > 0'])
    """
    text = _strip_parens(text.strip())
    parts: list[str] = []
    ops: set[str] = set()
    depth, start, i, quote = 0, 0, 0, ""
    low = text.lower()
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            for op in ("and", "or"):
                end = i + len(op)
                if (
                    low.startswith(op, i)
                    and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_"))
                    and (end >= len(text) or not (text[end].isalnum() or text[end] == "_"))
                ):
                    parts.append(text[start:i].strip())
                    ops.add(op)
                    start = end
                    i = end - 1
                    break
        i += 1
    parts.append(text[start:].strip())
    if len(ops) != 1:
        return "", [text]
    return ops.pop(), [_strip_parens(p) for p in parts]


def _strip_parens(text: str) -> str:
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for i, ch in enumerate(text):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(text) - 1:
                return text
        text = text[1:-1].strip()
    return text


def event_filters(text: str) -> list[str]:
    """The ``xEvent[...]`` filters written in an expression (balanced brackets).

    >>> event_filters('xEvent[eventType = "a"].count() > 0 and xEvent[x[0] = 1].count() = 0')
    ['xEvent[eventType = "a"]', 'xEvent[x[0] = 1]']
    """
    out = []
    for m in re.finditer(r"xEvent\s*\[", text):
        depth = 0
        for j in range(m.end() - 1, len(text)):
            depth += text[j] == "["
            depth -= text[j] == "]"
            if depth == 0:
                out.append(text[m.start() : j + 1])
                break
    return out


def explain_by_parts(
    engine: Engine,
    text: str,
    attributes: dict[str, Any],
    events: list[dict[str, Any]],
    now: datetime,
    member: Mapping[str, bool],
    *,
    depth: int = 3,
) -> dict[str, Any]:
    """Explain an evaluation from the expression's text: each top-level condition (recursively,
    ``depth`` levels) with whether it held, and for every ``xEvent[...]`` filter the ids of the
    events it matched. Parts the engine cannot compile alone are reported with ``held: None``."""
    op, parts = split_top_level(text)
    try:
        held: Any = bool(engine.compile("pql/text", text).predicate(attributes, events, now, member))
    except PqlError:
        held = None
    node: dict[str, Any] = {"condition": text, "held": held}
    if op and depth > 0:
        node["operator"] = op
        node["conditions"] = [
            explain_by_parts(engine, part, attributes, events, now, member, depth=depth - 1) for part in parts
        ]
    elif not op:
        matched = {}
        for flt in event_filters(text):
            try:
                compiled = engine.compile("pql/text", flt, boolean=False)
                value = (compiled.value or compiled.predicate)(attributes, events, now, member)
            except PqlError:
                continue
            if isinstance(value, list):
                matched[flt] = [e.get("_id") for e in value if isinstance(e, Mapping)]
        if matched:
            node["matchedEvents"] = matched
    return node


def require_eligible(compiled: Compiled, evaluation_info: Mapping[str, Any]) -> None:
    """Refuse a definition asked to run in a mode its expression is not eligible for."""
    for mode, verdict in (("continuous", compiled.continuous), ("synchronous", compiled.synchronous)):
        if (evaluation_info.get(mode) or {}).get("enabled") and not verdict.eligible:
            raise SemanticError(
                f"This expression cannot be evaluated {'in streaming' if mode == 'continuous' else 'on the edge'}: "
                f"{verdict.reason or 'not eligible'}. Enable batch evaluation only, or change the expression.",
                path=f"evaluationInfo.{mode}.enabled",
            )


__all__ = [
    "Compiled",
    "Engine",
    "PqlEngine",
    "Verdict",
    "in_segment_ids",
    "require_eligible",
    "time_dependence",
]
