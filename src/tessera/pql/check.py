"""Checks a PQL AST against the profile and ExperienceEvent union schemas.

With schemas, every field path is resolved (unknown field → PqlError with position and a "did you
mean"), operand types are checked (ordering comparisons, arithmetic, list operators, time operands)
and, for segments, the result must be usable as a boolean. Without schemas, only the syntax and
function arities are checked and values are treated dynamically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tessera.errors import PqlError
from tessera.pql import ast as A
from tessera.pql.functions import FUNCTIONS
from tessera.pql.limits import unsafe_regex
from tessera.pql.parser import snippet
from tessera.pql.types import T


@dataclass(frozen=True)
class CheckedExpr:
    """A parsed and checked PQL expression, ready for either back end.

    Attributes:
        node: the AST.
        text: the source text (for error positions), or "" when built from JSON/AST.
        boolean: True for segment definitions (result coerced to boolean).
        profile_schema / event_schema: the resolved union schemas it was checked against (or None).
        result_type: the static result type when schemas were given.
    """

    node: A.Node
    text: str = ""
    boolean: bool = True
    profile_schema: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    event_schema: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    result_type: T | None = None


def _err(text: str, node: A.Node, message: str) -> PqlError:
    pos = getattr(node, "pos", -1)
    if text and pos >= 0:
        line, col, snip = snippet(text, pos)
        return PqlError(message, line=line, column=col, snippet=snip)
    return PqlError(message)


def check_arity(node: A.Node, text: str = "") -> None:
    """Every function call has an allowed number of arguments (no schema needed)."""
    for n in A.walk(node):
        if isinstance(n, A.Call):
            fn = FUNCTIONS[n.name]
            k = len(n.args) - (0 if n.method else 0)
            if k < fn.min_args or (fn.max_args is not None and k > fn.max_args):
                want = (
                    str(fn.min_args)
                    if fn.min_args == fn.max_args
                    else f"{fn.min_args} or more"
                    if fn.max_args is None
                    else f"{fn.min_args} to {fn.max_args}"
                )
                recv = " (counting the value before the dot)" if n.method else ""
                raise _err(text, n, f"{n.name}() takes {want} argument(s){recv}, not {k}.")
        if isinstance(n, A.Param) and n.position != 1:
            raise _err(text, n, f"Only $1 (the profile) can be used, not ${n.position}.")


def check_regexes(node: A.Node, text: str = "") -> None:
    """Literal patterns of ``matches`` and ``regexGroup`` are valid and safe to run
    (:func:`tessera.pql.limits.unsafe_regex`)."""
    for n in A.walk(node):
        pattern: A.Node | None = None
        if isinstance(n, A.Binary) and n.op == "matches":
            pattern = n.right
        elif isinstance(n, A.Call) and n.name in {"matches", "regexGroup"} and len(n.args) > 1:
            pattern = n.args[1]
        if isinstance(pattern, A.Lit) and isinstance(pattern.value, str):
            reason = unsafe_regex(pattern.value)
            if reason is not None:
                raise _err(text, pattern, f"This regular expression is refused: {reason}.")


def check_node(
    node: A.Node,
    text: str = "",
    profile_schema: dict[str, Any] | None = None,
    event_schema: dict[str, Any] | None = None,
    boolean: bool = True,
) -> CheckedExpr:
    """Check ``node``; see the module docstring. Raises PqlError."""
    check_arity(node, text)
    check_regexes(node, text)
    result: T | None = None
    if profile_schema is not None:
        from tessera.pql.to_sql import SqlCompiler

        comp = SqlCompiler(
            profile_schema,
            event_schema or {"type": "object", "properties": {}},
            datetime(2000, 1, 1, tzinfo=UTC),
            text,
        )
        _, result = comp.sql(node)
        if boolean and result is not None and result.numeric and not isinstance(node, A.Field):
            raise _err(text, node, "A segment definition must be a condition (true/false), not a number.")
    return CheckedExpr(node, text, boolean, profile_schema, event_schema, result)
