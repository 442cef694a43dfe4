"""THE function table: every built-in PQL function, with its signature, type rule, Python rule and
SQL rule in one row (STYLE.md principle 6).

Python rules receive evaluated arguments (``None`` = null), except arguments listed in
``item_args``, which arrive as callables ``item -> value`` (evaluated with the item as context), and
``lazy`` functions, which receive zero-argument thunks. SQL rules receive sqlglot expressions; item
arguments arrive as ``exp.Lambda`` nodes over one fresh variable. ``sql=None`` means the function is
only available in the streaming evaluator (the SQL compiler says so in words).
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

import regex as regex_engine
import sqlglot.expressions as E

from tessera.errors import PqlError
from tessera.pql import types as Ty
from tessera.pql.limits import LIMITS, unsafe_regex
from tessera.pql.types import T

PyRule = Callable[..., Any]
SqlRule = Callable[[list[E.Expression], list[T]], E.Expression]
TypeRule = Callable[[list[T]], T]


@dataclass(frozen=True, slots=True)
class Function:
    """One built-in: name, arity, argument scoping, result type and both back-end rules."""

    name: str
    min_args: int
    max_args: int | None
    ret: TypeRule
    py: PyRule
    sql: SqlRule | None
    item_args: frozenset[int] = frozenset()
    lazy: bool = False
    doc: str = ""


# --- Python helpers (null-aware) ---------------------------------------------------------------
def _s(v: Any) -> bool:
    return isinstance(v, str)


def _cs(flag: Any) -> bool:
    return flag is None or flag is True


def _str_test(test: Callable[[str, str], bool], negate: bool) -> PyRule:
    def rule(s: Any, t: Any, flag: Any = True) -> bool | None:
        if not (_s(s) and _s(t)):
            return None
        if not _cs(flag):
            s, t = s.lower(), t.lower()
        r = test(s, t)
        return (not r) if negate else r

    return rule


def _equals(s: Any, *rest: Any) -> bool | None:
    flag: Any = True
    if rest and isinstance(rest[-1], bool):
        flag, rest = rest[-1], rest[:-1]
    if not _s(s) or not rest or not all(_s(x) for x in rest):
        return None
    if not _cs(flag):
        return s.lower() in [x.lower() for x in rest]
    return s in rest


def _not_equal(s: Any, *rest: Any) -> bool | None:
    r = _equals(s, *rest)
    return None if r is None else not r


_REGEX_CACHE: dict[str, Any] = {}
_log = logging.getLogger("tessera.pql")


def regex(p: str) -> Any:
    """Compile (and cache) a PQL regex with the ``regex`` package; ``None`` when it is not a valid
    pattern or is refused by :func:`tessera.pql.limits.unsafe_regex`."""
    r = _REGEX_CACHE.get(p)
    if r is None:
        if unsafe_regex(p) is not None:
            return None
        try:
            r = regex_engine.compile(p)
        except (regex_engine.error, OverflowError, RecursionError, ValueError):
            return None
        if len(_REGEX_CACHE) < 10_000:
            _REGEX_CACHE[p] = r
    return r


def _search(r: Any, s: str) -> Any:
    """``r.search(s)`` within ``regex_timeout_ms``; a match out of time is no match (and logged)."""
    try:
        return r.search(s, timeout=LIMITS.regex_timeout_s)
    except TimeoutError:
        _log.warning(
            "regex %r ran out of time on a %d-character value; counted as no match", r.pattern, len(s)
        )
        return None


def _matches(s: Any, p: Any) -> bool | None:
    if not (_s(s) and _s(p)):
        return None
    r = regex(p)
    return None if r is None else _search(r, s) is not None


def _regex_group(s: Any, p: Any, n: Any = 0) -> str | None:
    if not (_s(s) and _s(p)) or not isinstance(n, int) or isinstance(n, bool):
        return None
    r = regex(p)
    m = _search(r, s) if r is not None else None
    if m is None or n > (r.groups if r else 0) or n < 0:
        return None
    g = m.group(n)
    # a group that took no part in the match is "" — what SQL engines give (RE2's extract has no
    # null for it), so the streaming evaluator and the batch SQL agree
    return g if isinstance(g, str) else ""


def like_regex(pat: str) -> re.Pattern[str]:
    """SQL LIKE pattern → anchored regex (``%`` any run, ``_`` one character)."""
    out = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pat)
    return re.compile(out + r"\Z", re.DOTALL)


def like(s: Any, p: Any) -> bool | None:
    if not (_s(s) and _s(p)):
        return None
    return like_regex(p).match(s) is not None


def _lst(v: Any) -> list[Any] | None:
    return v if isinstance(v, list) else None


def _nums(v: Any, f: Callable[[Any], Any] | None) -> list[int | float] | None:
    if not isinstance(v, list):
        return None
    vals = [f(x) for x in v] if f else v
    return [x for x in vals if isinstance(x, (int, float)) and not isinstance(x, bool)]


def _sum(a: Any, f: Any = None) -> Any:
    n = _nums(a, f)
    return 0 if not n else sum(n)


def _avg(a: Any, f: Any = None) -> Any:
    n = _nums(a, f)
    return (sum(n) / len(n)) if n else None


def _min(a: Any, f: Any = None) -> Any:
    n = _nums(a, f)
    return min(n) if n else None


def _max(a: Any, f: Any = None) -> Any:
    n = _nums(a, f)
    return max(n) if n else None


def _count(a: Any, f: Any = None) -> int:
    if not isinstance(a, list):
        return 0 if a is None else 1
    return len(a) if f is None else sum(1 for x in a if truthy(f(x)))


def _distinct(a: Any) -> list[Any] | None:
    if not isinstance(a, list):
        return None
    out: list[Any] = []
    for x in a:
        if x not in out:
            out.append(x)
    return out


def _intersects(a: Any, b: Any) -> bool | None:
    if not (isinstance(a, list) and isinstance(b, list)):
        return None
    return any(x is not None and x in b for x in a)


def _intersection(a: Any, b: Any) -> list[Any] | None:
    if not (isinstance(a, list) and isinstance(b, list)):
        return None
    out = [x for x in (_distinct(a) or []) if x in b]
    return out or None


def _subset(a: Any, b: Any) -> bool | None:
    if not (isinstance(a, list) and isinstance(b, list)):
        return None
    return all(x in b for x in a)


def _includes(a: Any, x: Any) -> bool | None:
    if not isinstance(a, list) or x is None:
        return None
    return x in a


def _sorted_n(desc: bool) -> PyRule:
    def rule(a: Any, key: Any, n: Any) -> list[Any] | None:
        if not isinstance(a, list) or not isinstance(n, int):
            return None
        keyed = [(key(x), i, x) for i, x in enumerate(a)]
        keyed = [k for k in keyed if isinstance(k[0], (int, float)) and not isinstance(k[0], bool)]
        keyed.sort(key=lambda k: (-k[0] if desc else k[0], k[1]))
        return [x for _, _, x in keyed[:n]]

    return rule


def _filter(a: Any, cond: Any) -> list[Any] | None:
    return [x for x in a if truthy(cond(x))] if isinstance(a, list) else None


def _map(a: Any, f: Any) -> Any:
    if isinstance(a, dict):  # grouped map: f receives (key, group) through map_entries
        out = {}
        for k, v in a.items():
            e = f((k, v))
            if isinstance(e, tuple) and len(e) == 2:
                out[e[0]] = e[1]
        return out
    return [f(x) for x in a] if isinstance(a, list) else None


def _group_by(a: Any, key: Any) -> dict[Any, list[Any]] | None:
    if not isinstance(a, list):
        return None
    out: dict[Any, list[Any]] = {}
    for x in a:
        k = key(x)
        if k is not None and not isinstance(k, (list, dict)):
            out.setdefault(k, []).append(x)
    return out


def _exists_item(a: Any, cond: Any) -> bool | None:
    return any(truthy(cond(x)) for x in a) if isinstance(a, list) else None


def _head(a: Any) -> Any:
    return a[0] if isinstance(a, list) and a else None


def _get(m: Any, k: Any) -> Any:
    return m.get(k) if isinstance(m, dict) and isinstance(k, str) else None


def _keys(m: Any) -> list[Any] | None:
    return list(m.keys()) if isinstance(m, dict) else None


def _values(m: Any) -> list[Any] | None:
    return list(m.values()) if isinstance(m, dict) else None


def _if(c: Any, a: Any, b: Any) -> Any:
    return a() if truthy(c()) else b()


def _date(y: Any, m: Any, d: Any) -> date | None:
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (y, m, d)):
        return None
    try:
        return date(y, m, d)
    except ValueError:
        return None


@functools.lru_cache(maxsize=65536)
def _parse_iso(v: str) -> datetime | None:
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def as_time(v: Any) -> datetime | None:
    """A data value as an aware UTC datetime (ISO strings, epoch ms, dates); ``None`` otherwise."""
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=UTC)
    if isinstance(v, str):
        return _parse_iso(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        try:
            return datetime.fromtimestamp(v / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _part(attr: str) -> PyRule:
    def rule(v: Any) -> int | None:
        t = as_time(v)
        return None if t is None else int(getattr(t, attr))

    return rule


def truthy(v: Any) -> bool:
    """PQL boolean-position coercion: null → false, arrays → non-empty, other values → defined."""
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, list):
        return len(v) > 0
    return True


# --- SQL helpers -------------------------------------------------------------------------------
def _lower(e: E.Expression) -> E.Expression:
    return E.Lower(this=e)


def _flag_error(t: T) -> PqlError:
    return PqlError(f"The case flag (the last argument) must be true or false, not {t.a}.")


def _sql_str(kind: str, negate: bool) -> SqlRule:
    def rule(args: list[E.Expression], types: list[T]) -> E.Expression:
        def test(blind: bool) -> E.Expression:
            s, t = args[0].copy(), args[1].copy()
            if blind:
                s, t = _lower(s), _lower(t)
            if kind == "starts":
                e: E.Expression = E.StartsWith(this=s, expression=t)
            elif kind == "ends":
                e = E.EndsWith(this=s, expression=t)
            else:
                e = E.GT(this=E.StrPosition(this=s, substr=t), expression=E.Literal.number(0))
            return E.Not(this=E.paren(e)) if negate else e

        if len(args) < 3:
            return test(False)
        flag = args[2]
        if isinstance(flag, E.Boolean):
            return test(not flag.this)
        if types[2].kind != "bool":
            raise _flag_error(types[2])
        # a flag read from the data: false ignores case; true and null (no flag) respect it
        blind = E.EQ(this=flag, expression=E.Boolean(this=False))
        return E.If(this=blind, true=test(True), false=test(False))

    return rule


def _sql_equals(negate: bool) -> SqlRule:
    def rule(args: list[E.Expression], types: list[T]) -> E.Expression:
        s, rest = args[0], args[1:]
        flag: E.Expression | None = None
        if rest and (isinstance(rest[-1], E.Boolean) or types[-1].kind == "bool"):
            flag, rest = rest[-1], rest[:-1]
        if not rest:
            return E.Null()

        def test(blind: bool) -> E.Expression:
            lhs, rhs = s.copy(), [r.copy() for r in rest]
            if blind:
                lhs, rhs = _lower(lhs), [_lower(r) for r in rhs]
            e: E.Expression = (
                E.In(this=lhs, expressions=rhs) if len(rhs) > 1 else E.EQ(this=lhs, expression=rhs[0])
            )
            return E.Not(this=E.paren(e)) if negate else e

        if flag is None:
            return test(False)
        if isinstance(flag, E.Boolean):
            return test(not flag.this)
        # a flag read from the data; a null one is no flag, so it is compared as a value: null
        by_flag = E.If(this=flag, true=test(False), false=test(True))
        return E.If(this=E.Is(this=flag.copy(), expression=E.Null()), true=E.Null(), false=by_flag)

    return rule


def _size(a: E.Expression) -> E.Expression:
    return E.ArraySize(this=a)


def _sql_agg(kind: str) -> SqlRule:
    def rule(args: list[E.Expression], types: list[T]) -> E.Expression:
        a = args[0] if len(args) == 1 else E.Transform(this=args[0], expression=args[1])
        if kind == "sum":
            return E.Coalesce(this=E.ArraySum(this=a), expressions=[E.Literal.number(0)])
        if kind == "min":
            return E.ArrayMin(this=a)
        if kind == "max":
            return E.ArrayMax(this=a)
        # average: sum / count of non-null values, null when there are none
        nn = E.ArrayFilter(
            this=a,
            expression=E.Lambda(
                this=E.Not(this=E.Is(this=E.to_identifier("_v"), expression=E.Null())),
                expressions=[E.to_identifier("_v")],
            ),
        )
        return E.Div(
            this=E.Cast(this=E.ArraySum(this=nn), to=E.DataType.build("DOUBLE")),
            expression=E.Nullif(this=_size(nn), expression=E.Literal.number(0)),
        )

    return rule


def _sql_count(args: list[E.Expression], types: list[T]) -> E.Expression:
    a = args[0] if len(args) == 1 else E.ArrayFilter(this=args[0], expression=args[1])
    return E.Coalesce(this=_size(a), expressions=[E.Literal.number(0)])


def _sql_null(args: list[E.Expression], types: list[T]) -> E.Expression:
    return E.Is(this=args[0], expression=E.Null())


def _sql_not_null(args: list[E.Expression], types: list[T]) -> E.Expression:
    return E.Not(this=E.Is(this=args[0], expression=E.Null()))


def _sql_part(cls: type[E.Func]) -> SqlRule:
    def rule(args: list[E.Expression], types: list[T]) -> E.Expression:
        return cast(E.Expression, cls(this=args[0]))

    return rule


def _sql_exists_item(args: list[E.Expression], types: list[T]) -> E.Expression:
    return E.GT(this=_size(E.ArrayFilter(this=args[0], expression=args[1])), expression=E.Literal.number(0))


def _sql_includes(args: list[E.Expression], types: list[T]) -> E.Expression:
    return E.ArrayContains(this=args[0], expression=args[1])


def _sql_if(args: list[E.Expression], types: list[T]) -> E.Expression:
    return E.If(this=args[0], true=args[1], false=args[2])


def _sql_head(args: list[E.Expression], types: list[T]) -> E.Expression:
    return E.Bracket(this=args[0], expressions=[E.Literal.number(0)], offset=0, safe=True)


def _sql_regex(args: list[E.Expression], types: list[T]) -> E.Expression:
    return E.RegexpLike(this=args[0], expression=args[1])


def _sql_overlap(args: list[E.Expression], types: list[T]) -> E.Expression:
    return E.ArrayOverlaps(this=args[0], expression=args[1])


def _var(name: str) -> E.Identifier:
    return E.to_identifier(name)


def _lambda(body: E.Expression, *params: str) -> E.Lambda:
    return E.Lambda(this=body, expressions=[_var(p) for p in params])


def _sql_intersection(args: list[E.Expression], types: list[T]) -> E.Expression:
    # Python keeps the receiver's order and its first occurrence of each value, and answers null
    # rather than an empty array; list_distinct would not keep the order, so filter on position.
    a, b = args
    by_position = _lambda(
        E.And(
            this=E.EQ(this=E.ArrayPosition(this=a.copy(), expression=_var("_x")), expression=_var("_i")),
            expression=E.ArrayContains(this=b, expression=_var("_x")),
        ),
        "_x",
        "_i",
    )
    # DuckDB numbers lambda positions from 1 like list_position; dialects counting from 0 shift it
    by_position.meta["position_base"] = 1
    kept = E.ArrayFilter(this=a, expression=by_position)
    return E.Nullif(this=kept, expression=E.Array(expressions=[]))


def _sql_regex_group(args: list[E.Expression], types: list[T]) -> E.Expression:
    # RE2 wants a constant group index, and asking for a group the pattern lacks is an error in
    # DuckDB but null in PQL: both need the pattern and index as literals, checked here.
    s, pattern = args[0], args[1]
    group = args[2] if len(args) > 2 else E.Literal.number(0)
    if not (isinstance(pattern, E.Literal) and pattern.is_string and isinstance(group, E.Literal)):
        # a pattern from the data could not be checked for safety before it runs
        raise PqlError(
            'regexGroup() takes its pattern and group number written out, as in regexGroup("(\\d+)", 1).'
        )
    compiled = regex(pattern.this)
    n = int(group.this) if not group.is_string and str(group.this).lstrip("-").isdigit() else -1
    if compiled is None or n < 0 or n > compiled.groups:
        return E.Null()
    return E.If(
        this=E.RegexpLike(this=s, expression=pattern),
        true=E.RegexpExtract(this=s.copy(), expression=pattern.copy(), group=E.Literal.number(n)),
        false=E.Null(),
    )


def _sql_sorted_n(desc: bool) -> SqlRule:
    def rule(args: list[E.Expression], types: list[T]) -> E.Expression:
        arr, key, n = args
        assert isinstance(key, E.Lambda)  # an item argument
        literal_count = isinstance(n, E.Literal) and not n.is_string
        if not literal_count and types[2].kind not in ("int", "null"):
            raise PqlError(f"topN() and bottomN() take a whole number of items, not {types[2].a}.")
        if not types[1].numeric:
            # the rule sorts by a numeric expression only; other keys leave nothing to pick
            return E.If(
                this=E.Is(this=arr, expression=E.Null()), true=E.Null(), false=E.Array(expressions=[])
            )
        (param,) = key.expressions
        body = key.this
        # Sort (key, position) pairs ascending; negating the key gives descending order while the
        # position keeps ties in the receiver's order, as the Python rule does.
        sort_key = E.Neg(this=E.Paren(this=body)) if desc else body
        pairs = E.Transform(
            this=arr,
            expression=E.Lambda(
                this=E.Struct(
                    expressions=[
                        E.PropertyEQ(this=_var("k"), expression=sort_key),
                        E.PropertyEQ(this=_var("i"), expression=_var("_i")),
                        E.PropertyEQ(this=_var("v"), expression=E.column(param.name)),
                    ]
                ),
                expressions=[param.copy(), _var("_i")],
            ),
        )
        keyed = E.ArrayFilter(
            this=pairs,
            expression=_lambda(
                E.Not(this=E.Is(this=E.Dot(this=E.column("_s"), expression=_var("k")), expression=E.Null())),
                "_s",
            ),
        )
        ordered = E.Transform(
            this=E.ArraySort(this=keyed),
            expression=_lambda(E.Dot(this=E.column("_s"), expression=_var("v")), "_s"),
        )
        if literal_count and int(n.this) >= 0:
            return E.ArraySlice(this=ordered, start=E.Literal.number(1), end=n)
        # A negative count keeps all but that many from the end (as a Python slice does), never
        # fewer than none; a null count is null.
        size = E.ArraySize(this=ordered.copy())
        from_end = E.Add(this=size, expression=n.copy())
        end = E.If(
            this=E.GTE(this=n.copy(), expression=E.Literal.number(0)),
            true=n.copy(),
            false=E.If(
                this=E.GT(this=from_end, expression=E.Literal.number(0)),
                true=from_end.copy(),
                false=E.Literal.number(0),
            ),
        )
        sliced = E.ArraySlice(this=ordered, start=E.Literal.number(1), end=end)
        return E.If(this=E.Is(this=n.copy(), expression=E.Null()), true=E.Null(), false=sliced)

    return rule


def _sql_map(args: list[E.Expression], types: list[T]) -> E.Expression:
    # over a grouped map the compiler builds the new map itself; over anything but a list: null
    if types[0].kind != "array":
        return E.Null()
    return E.Transform(this=args[0], expression=args[1])


def _sql_group_by(args: list[E.Expression], types: list[T]) -> E.Expression:
    arr, key = args
    assert isinstance(key, E.Lambda)  # an item argument
    if types[1].kind in ("array", "object", "map"):
        raise PqlError(
            f"groupBy() needs a key that is one value (a string, number or date), not {types[1].a}."
        )
    if types[0].kind != "array":
        return E.Null()
    (param,) = key.expressions
    group_key = _var("_gk")
    keys = E.ArrayFilter(
        this=E.ArrayDistinct(this=E.Transform(this=arr, expression=key)),
        expression=_lambda(E.Not(this=E.Is(this=group_key, expression=E.Null())), "_gk"),
    )
    members = E.ArrayFilter(
        this=arr.copy(),
        expression=E.Lambda(
            this=E.EQ(this=E.paren(key.this.copy()), expression=group_key.copy()), expressions=[param.copy()]
        ),
    )
    entry = E.Struct(
        expressions=[
            E.PropertyEQ(this=_var("k"), expression=group_key.copy()),
            E.PropertyEQ(this=_var("v"), expression=members),
        ]
    )
    groups = E.Anonymous(
        this="map_from_entries", expressions=[E.Transform(this=keys, expression=_lambda(entry, "_gk"))]
    )
    return E.If(this=E.Is(this=arr.copy(), expression=E.Null()), true=E.Null(), false=groups)


def _sql_get(args: list[E.Expression], types: list[T]) -> E.Expression:
    return E.Bracket(this=args[0], expressions=[args[1]])


def _sql_keys(args: list[E.Expression], types: list[T]) -> E.Expression:
    return E.MapKeys(this=args[0])


def _sql_values(args: list[E.Expression], types: list[T]) -> E.Expression:
    return E.Anonymous(this="map_values", expressions=[args[0]])


def _sql_subset(args: list[E.Expression], types: list[T]) -> E.Expression:
    return E.ArrayContainsAll(this=args[1], expression=args[0])


def _sql_superset(args: list[E.Expression], types: list[T]) -> E.Expression:
    return E.ArrayContainsAll(this=args[0], expression=args[1])


# --- type rules --------------------------------------------------------------------------------
def _const(t: T) -> TypeRule:
    return lambda ts: t


def _same(ts: list[T]) -> T:
    return ts[0]


def _item(ts: list[T]) -> T:
    return ts[0].item or Ty.ANY if ts[0].kind == "array" else Ty.ANY


def _agg_type(ts: list[T]) -> T:
    src = ts[1] if len(ts) > 1 else _item(ts)
    return src if src.numeric else Ty.NUM


def _if_type(ts: list[T]) -> T:
    return Ty.unify(ts[1], ts[2])


_STR_TESTS = {
    "startsWith": (lambda s, t: s.startswith(t), "starts", False),
    "endsWith": (lambda s, t: s.endswith(t), "ends", False),
    "contains": (lambda s, t: t in s, "contains", False),
    "doesNotStartWith": (lambda s, t: s.startswith(t), "starts", True),
    "doesNotEndWith": (lambda s, t: s.endswith(t), "ends", True),
    "doesNotContain": (lambda s, t: t in s, "contains", True),
}

_B = _const(Ty.BOOL)
_I = _const(Ty.INT)
FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in [
        *[
            Function(
                n, 2, 3, _B, _str_test(test, neg), _sql_str(k, neg), doc="string test, optional case flag"
            )
            for n, (test, k, neg) in _STR_TESTS.items()
        ],
        Function("equals", 2, None, _B, _equals, _sql_equals(False), doc="equals any of the strings"),
        Function("notEqualTo", 2, None, _B, _not_equal, _sql_equals(True), doc="equals none of the strings"),
        Function("matches", 2, 2, _B, _matches, _sql_regex, doc="regex found anywhere"),
        Function("regexGroup", 2, 3, _const(Ty.STR), _regex_group, _sql_regex_group, doc="capture group N"),
        Function("isNull", 1, 1, _B, lambda v: v is None, _sql_null),
        Function("isNotNull", 1, 1, _B, lambda v: v is not None, _sql_not_null),
        Function("intersects", 2, 2, _B, _intersects, _sql_overlap),
        Function("intersection", 2, 2, _same, _intersection, _sql_intersection),
        Function("subsetOf", 2, 2, _B, _subset, _sql_subset),
        Function("supersetOf", 2, 2, _B, lambda a, b: _subset(b, a), _sql_superset),
        Function("includes", 2, 2, _B, _includes, _sql_includes),
        Function("distinct", 1, 1, _same, _distinct, lambda a, t: E.ArrayDistinct(this=a[0])),
        Function("count", 1, 2, _I, _count, _sql_count, item_args=frozenset({1})),
        Function("sum", 1, 2, _agg_type, _sum, _sql_agg("sum"), item_args=frozenset({1})),
        Function("average", 1, 2, _const(Ty.NUM), _avg, _sql_agg("avg"), item_args=frozenset({1})),
        Function("min", 1, 2, _agg_type, _min, _sql_agg("min"), item_args=frozenset({1})),
        Function("max", 1, 2, _agg_type, _max, _sql_agg("max"), item_args=frozenset({1})),
        Function("head", 1, 1, _item, _head, _sql_head),
        Function("topN", 3, 3, _same, _sorted_n(True), _sql_sorted_n(True), item_args=frozenset({1})),
        Function("bottomN", 3, 3, _same, _sorted_n(False), _sql_sorted_n(False), item_args=frozenset({1})),
        Function(
            "filter",
            2,
            2,
            _same,
            _filter,
            lambda a, t: E.ArrayFilter(this=a[0], expression=a[1]),
            item_args=frozenset({1}),
        ),
        Function("map", 2, 2, _const(Ty.ANY), _map, _sql_map, item_args=frozenset({1})),
        Function(
            "groupBy", 2, 2, lambda ts: T("map", ts[0]), _group_by, _sql_group_by, item_args=frozenset({1})
        ),
        Function("exists", 2, 2, _B, _exists_item, _sql_exists_item, item_args=frozenset({1})),
        Function("get", 2, 2, lambda ts: ts[0].item or Ty.ANY, _get, _sql_get),
        Function("keys", 1, 1, _const(Ty.array_of(Ty.STR)), _keys, _sql_keys),
        Function("values", 1, 1, lambda ts: Ty.array_of(ts[0].item or Ty.ANY), _values, _sql_values),
        Function("if", 3, 3, _if_type, _if, _sql_if, lazy=True),
        Function("date", 3, 3, _const(Ty.DATE), _date, None),
        Function("mapEntry", 2, 2, _const(Ty.ANY), lambda k, v: (k, v), None),
        Function("inSegment", 1, 1, _B, lambda *a: None, None, doc="compiled specially"),
        Function("currentMonth", 0, 0, _I, lambda: None, None, doc="compiled to a constant"),
        Function("currentYear", 0, 0, _I, lambda: None, None, doc="compiled to a constant"),
        Function("currentDayOfMonth", 0, 0, _I, lambda: None, None, doc="compiled to a constant"),
        Function("getMonth", 1, 1, _I, _part("month"), _sql_part(E.Month)),
        Function("getYear", 1, 1, _I, _part("year"), _sql_part(E.Year)),
        Function("getDayOfMonth", 1, 1, _I, _part("day"), _sql_part(E.Day)),
    ]
}
"""Every built-in function by canonical name."""

_BY_LOWER = {n.lower(): n for n in FUNCTIONS}


def canonical_name(name: str) -> str | None:
    """The canonical spelling of a function name (names are case-insensitive), or None."""
    return _BY_LOWER.get(name.lower())


def suggest_function(name: str) -> str | None:
    """The closest known function name, for "did you mean" hints."""
    hits = difflib.get_close_matches(name.lower(), list(_BY_LOWER), n=1, cutoff=0.6)
    return _BY_LOWER[hits[0]] if hits else None


def suggest(name: str, options: Sequence[str]) -> str | None:
    """The closest of ``options`` to ``name`` (case-insensitive), or None."""
    low = {o.lower(): o for o in options}
    hits = difflib.get_close_matches(name.lower(), list(low), n=1, cutoff=0.6)
    return low[hits[0]] if hits else None
