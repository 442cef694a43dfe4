"""The Profile Query Language (PQL): one typed AST, a streaming evaluator and a SQL compiler.

Typical use::

    from tessera import pql
    seg = pql.check('homeAddress.countryCode = "US"', profile_schema, event_schema)
    fn = pql.compile_python(seg)                         # fn(profile, events, ctx) -> bool
    fn(profile, events, pql.EvalContext(now=now))
    sql = pql.compile_sql({"seg1": seg}, "profiles", now)  # one scan, one column per segment

Errors are :class:`tessera.errors.PqlError` with line, column and a caret snippet.
"""

from __future__ import annotations

import json as _json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tessera.errors import PqlError
from tessera.pql import ast
from tessera.pql.check import CheckedExpr, check_node
from tessera.pql.eligibility import Eligibility
from tessera.pql.eligibility import eligibility as _eligibility
from tessera.pql.limits import LIMITS
from tessera.pql.parser import ast_depth, parse, to_text
from tessera.pql.pql_json import from_json as _from_json
from tessera.pql.pql_json import to_json as _to_json
from tessera.pql.relation import load_relation, prune_schema
from tessera.pql.to_python import EvalContext, compile_node

__all__ = [
    "BatchSql",
    "CheckedExpr",
    "Eligibility",
    "EvalContext",
    "check",
    "compile_batch",
    "compile_python",
    "compile_sql",
    "compile_sql_value",
    "eligibility",
    "load_relation",
    "parse",
    "parse_json",
    "to_json",
    "to_text",
]


def parse_json(doc: str | dict[str, Any]) -> ast.Node:
    """Parse ``pql/json`` (a JSON string or an already-decoded dict) into an AST.

    >>> to_text(parse_json({"nodeType": "literal", "literalType": "integer", "value": "6"}))
    '6'
    """
    if isinstance(doc, str):
        if len(doc) > LIMITS.max_length * 10:
            raise PqlError(f"The pql/json document is longer than {LIMITS.max_length * 10} characters.")
        try:
            doc = _json.loads(doc)
        except (ValueError, RecursionError) as e:
            raise PqlError(f"pql/json is not valid JSON: {e}.") from None
    try:
        node = _from_json(doc)
    except RecursionError:
        raise PqlError("The pql/json document is nested too deeply.") from None
    if ast_depth(node) > LIMITS.max_depth:
        raise PqlError(f"The expression is nested more than {LIMITS.max_depth} levels deep.")
    return node


def to_json(node: ast.Node | CheckedExpr) -> dict[str, Any]:
    """Render an AST (or checked expression) as a ``pql/json`` document."""
    return _to_json(node.node if isinstance(node, CheckedExpr) else node)


def check(
    expr: str | ast.Node,
    profile_schema: dict[str, Any] | None = None,
    event_schema: dict[str, Any] | None = None,
    *,
    boolean: bool = True,
) -> CheckedExpr:
    """Parse (if text) and check an expression against the union schemas.

    Args:
        expr: ``pql/text`` or an AST.
        profile_schema: resolved profile union JSON Schema; None checks syntax only.
        event_schema: resolved ExperienceEvent union JSON Schema (reached through ``xEvent``).
        boolean: True for segment definitions; False for computed attributes (any result type).

    Raises:
        PqlError: syntax, unknown field (with "did you mean"), type errors.
    """
    if isinstance(expr, str):
        return check_node(parse(expr), expr, profile_schema, event_schema, boolean)
    return check_node(expr, "", profile_schema, event_schema, boolean)


def _checked(e: CheckedExpr | str | ast.Node, boolean: bool) -> CheckedExpr:
    return e if isinstance(e, CheckedExpr) else check(e, boolean=boolean)


def compile_python(
    expr: CheckedExpr | str | ast.Node,
) -> Callable[[dict[str, Any], list[dict[str, Any]], EvalContext], Any]:
    """Compile once into ``fn(profile, events, ctx)``.

    Segments (``boolean=True``) return a bool; computed attributes return their value (None = null).

    >>> fn = compile_python('person.age >= 18')
    >>> fn({"person": {"age": 20}}, [], EvalContext())
    True
    """
    c = _checked(expr, True)
    return compile_node(c.node, c.boolean)


def _sql_parts(
    exprs: Mapping[str, CheckedExpr],
    profile_schema: dict[str, Any] | None,
    event_schema: dict[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, tuple[ast.Node, bool, str]]]:
    ps, es = profile_schema, event_schema
    for c in exprs.values():
        ps = ps or c.profile_schema
        es = es or c.event_schema
    if ps is None:
        raise PqlError("SQL compilation needs the profile union schema (check the expression with schemas).")
    es = es or {"type": "object", "properties": {}}
    return ps, es, {k: (c.node, c.boolean, c.text) for k, c in exprs.items()}


def compile_sql(
    segments: Mapping[str, CheckedExpr],
    table: str,
    now: datetime,
    dialect: str = "duckdb",
    *,
    profile_schema: dict[str, Any] | None = None,
    event_schema: dict[str, Any] | None = None,
) -> str:
    """``SELECT profile_id, <pred> AS "<segment id>", ... FROM table`` for many segments in one scan.

    The table follows the relation contract of :mod:`tessera.pql.relation`. ``now`` is folded into
    literals (no CURRENT_TIMESTAMP). ``dialect`` is any sqlglot dialect name (``duckdb``, ``spark``).
    Segments are coerced to booleans; non-boolean checked expressions (``boolean=False``) yield values.

    Raises:
        PqlError: an expression does not check against these schemas (they changed since it was
            checked); the message names the field and the place.
    """
    from tessera.pql.to_sql import build_select, for_dialect

    ps, es, parts = _sql_parts(segments, profile_schema, event_schema)
    return for_dialect(build_select(parts, table, ps, es, now), dialect).sql(dialect)


@dataclass(frozen=True)
class BatchSql:
    """One query for many segments, and the relation it needs.

    Attributes:
        sql: ``SELECT profile_id, <pred> AS "<segment id>", ... FROM table``.
        profile_schema / event_schema: the union schemas cut down to the fields the query reads;
            load the relation with these (:func:`load_relation`), not the full unions: every field
            of the relation is parsed when it is loaded and copied through each list filter.
    """

    sql: str
    profile_schema: dict[str, Any]
    event_schema: dict[str, Any]


def compile_batch(
    segments: Mapping[str, CheckedExpr],
    table: str,
    now: datetime,
    dialect: str = "duckdb",
    *,
    profile_schema: dict[str, Any] | None = None,
    event_schema: dict[str, Any] | None = None,
) -> BatchSql:
    """:func:`compile_sql`, plus the schemas of the smallest relation the query runs on unchanged.

    Raises:
        PqlError: as :func:`compile_sql`.
    """
    from tessera.pql.to_sql import build_select, for_dialect, reads_of

    ps, es, parts = _sql_parts(segments, profile_schema, event_schema)
    select = build_select(parts, table, ps, es, now)
    profile_reads, events_reads = reads_of(select)
    # the events column is a list of events: its reads start with the list's items
    events = prune_schema({"type": "array", "items": es}, events_reads) or {}
    return BatchSql(
        for_dialect(select, dialect).sql(dialect),
        prune_schema(ps, profile_reads) or ps,
        events.get("items") or es,
    )


def compile_sql_value(
    expr: CheckedExpr, table: str, now: datetime, name: str = "value", dialect: str = "duckdb"
) -> str:
    """SQL for one computed attribute: ``SELECT profile_id, <value> AS "<name>" FROM table``."""
    from dataclasses import replace

    return compile_sql({name: replace(expr, boolean=False)}, table, now, dialect)


def eligibility(expr: CheckedExpr | str | ast.Node) -> Eligibility:
    """Streaming / edge / batch classification with the excluding rules in words (spec §6)."""
    return _eligibility(_checked(expr, True).node)
