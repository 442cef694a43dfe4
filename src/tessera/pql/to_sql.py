"""AST → sqlglot expression trees → DuckDB or Spark SQL over the relation of ``relation.py``.

Only whitelisted sqlglot node kinds are emitted (deps.md §3): array sizes are ``ArraySize`` (never
``Length``), filters/transforms are ``ArrayFilter``/``Transform`` with ``Lambda`` nodes, and every
user literal is a sqlglot ``Literal`` (quoted by sqlglot, never pasted). The evaluation time is a
parameter: relative times are folded into TIMESTAMP literals at compile time (no CURRENT_TIMESTAMP).
Types come from the schemas and drive boolean coercion: booleans → ``COALESCE(x, FALSE)``, arrays →
non-empty, other values → ``IS NOT NULL`` (spec §4).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, cast

import sqlglot.expressions as E

from tessera.errors import PqlError
from tessera.pql import ast as A
from tessera.pql import timeops
from tessera.pql import types as Ty
from tessera.pql.functions import FUNCTIONS, suggest
from tessera.pql.parser import snippet
from tessera.pql.relation import ITEM, Reads
from tessera.pql.timeops import Span
from tessera.pql.types import T

WHITELIST: frozenset[type[E.Expression]] = frozenset(
    {
        E.Select,
        E.From,
        E.Table,
        E.TableAlias,
        E.Alias,
        E.Column,
        E.Identifier,
        E.Dot,
        E.Literal,
        E.Boolean,
        E.Null,
        E.Cast,
        E.TryCast,
        E.DataType,
        E.DataTypeParam,
        E.Paren,
        E.And,
        E.Or,
        E.Not,
        E.EQ,
        E.NEQ,
        E.LT,
        E.LTE,
        E.GT,
        E.GTE,
        E.Add,
        E.Sub,
        E.Mul,
        E.Div,
        E.Mod,
        E.Neg,
        E.Is,
        E.In,
        E.Like,
        E.If,
        E.Coalesce,
        E.Nullif,
        E.Lower,
        E.StartsWith,
        E.EndsWith,
        E.StrPosition,
        E.RegexpLike,
        E.Array,
        E.ArraySize,
        E.ArrayFilter,
        E.Transform,
        E.Lambda,
        E.ArraySum,
        E.ArrayMin,
        E.ArrayMax,
        E.ArrayContains,
        E.ArrayOverlaps,
        E.ArrayContainsAll,
        E.ArrayDistinct,
        E.Bracket,
        E.ArrayPosition,
        E.ArraySlice,
        E.RegexpExtract,
        E.Struct,
        E.PropertyEQ,
        E.MapKeys,
        E.Anonymous,
        E.Interval,
        E.Var,
        E.Month,
        E.Year,
        E.Day,
        E.Flatten,
        E.Case,
        E.ArraySort,
        E.TimestampTrunc,
    }
)
"""The sqlglot node kinds the compiler may emit; anything else is a bug (checked on every compile)."""

_INTERVAL = {
    "millisecond": ("MILLISECOND", 1),
    "second": ("SECOND", 1),
    "minute": ("MINUTE", 1),
    "hour": ("HOUR", 1),
    "day": ("DAY", 1),
    "week": ("DAY", 7),
    "month": ("MONTH", 1),
    "year": ("YEAR", 1),
    "decade": ("YEAR", 10),
    "century": ("YEAR", 100),
    "millennium": ("YEAR", 1000),
}
_COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
_TIMEISH = frozenset({"time", "date", "str", "any"})
_ATOMIC = (E.Column, E.Literal, E.Dot, E.Func, E.Paren, E.Identifier, E.Boolean, E.Null, E.Bracket, E.Cast)
Typed = tuple[E.Expression, T]


def _p(e: E.Expression) -> E.Expression:
    return e if isinstance(e, _ATOMIC) else E.Paren(this=e)


def _num(v: int) -> E.Expression:
    return E.Literal.number(str(v))


def ts_literal(t: datetime) -> E.Expression:
    """A UTC datetime as a ``CAST('...' AS TIMESTAMP)`` literal."""
    naive = t.astimezone(UTC).replace(tzinfo=None)
    return E.Cast(this=E.Literal.string(naive.isoformat(sep=" ")), to=E.DataType.build("TIMESTAMP"))


def literal(v: Any) -> E.Expression:
    """A Python scalar as a sqlglot literal (quoted by sqlglot)."""
    if v is None:
        return E.Null()
    if isinstance(v, bool):
        return E.Boolean(this=v)
    if isinstance(v, int):
        return _num(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return E.Null()
        return E.Cast(this=E.Literal.number(repr(v)), to=E.DataType.build("DOUBLE"))
    if isinstance(v, str):
        return E.Literal.string(v)
    raise TypeError(v)


def coerce(e: E.Expression, t: T) -> E.Expression:
    """Boolean-position coercion of a typed SQL expression (spec §4)."""
    if t.kind == "bool":
        return E.Coalesce(this=e, expressions=[E.Boolean(this=False)])
    if t.kind == "array":
        return E.Coalesce(
            this=E.GT(this=E.ArraySize(this=e), expression=_num(0)), expressions=[E.Boolean(this=False)]
        )
    return E.Not(this=E.Is(this=_p(e), expression=E.Null()))


def _is_constant(n: A.Node) -> bool:
    return not any(isinstance(x, (A.Field, A.Var, A.XEvent, A.Ctx, A.Param)) for x in A.walk(n))


class SqlCompiler:
    """Compiles checked ASTs against a profile schema and an event schema at a fixed ``now``."""

    def __init__(
        self, profile_schema: dict[str, Any], event_schema: dict[str, Any], now: datetime, src: str = ""
    ) -> None:
        self.profile_t = Ty.from_schema(profile_schema)
        self.event_t = Ty.from_schema(event_schema)
        self.now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
        self.src = src
        self.counter = 0
        self.stack: list[Typed] = [(E.column("profile"), self.profile_t)]
        self.vars: dict[str, Typed] = {}

    # -- helpers ---------------------------------------------------------------------------------
    def err(self, node: object, message: str) -> PqlError:
        pos = getattr(node, "pos", -1)
        if self.src and pos >= 0:
            line, col, snip = snippet(self.src, pos)
            return PqlError(message, line=line, column=col, snippet=snip)
        return PqlError(message)

    def fresh(self) -> E.Identifier:
        self.counter += 1
        return E.to_identifier(f"_v{self.counter}")

    def with_item(self, item_t: T, build: Any) -> tuple[E.Lambda, T]:
        """A one-parameter lambda whose body sees the item as the implicit context."""
        var = self.fresh()
        self.stack.append((var, item_t))
        try:
            body, bt = build()
        finally:
            self.stack.pop()
        return E.Lambda(this=body, expressions=[var]), bt

    def with_var(
        self, name: str, item_t: T, build: Any, extra: Mapping[str, Typed] | None = None
    ) -> tuple[E.Lambda, T]:
        """A one-parameter lambda binding ``name`` (and the ``extra`` names) in its body."""
        var = self.fresh()
        body, bt = self._with_vars({name: (var, item_t), **(extra or {})}, build)
        return E.Lambda(this=body, expressions=[var]), bt

    def _with_vars(self, bound: Mapping[str, Typed], build: Any) -> Typed:
        """``build()`` with the names in ``bound`` visible (shadowing outer ones) while it runs."""
        saved = {name: self.vars.get(name) for name in bound}
        self.vars.update(bound)
        try:
            out: Typed = build()
            return out
        finally:
            for name, old in saved.items():
                if old is None:
                    self.vars.pop(name, None)
                else:
                    self.vars[name] = old

    def cond(self, n: A.Node) -> E.Expression:
        e, t = self.sql(n)
        return coerce(e, t)

    def field(self, node: A.Node, base: Typed, name: str) -> Typed:
        be, bt = base
        if bt.kind == "object":
            props = (bt.schema or {}).get("properties", {})
            if name not in props:
                hint = suggest(name, list(props))
                msg = f"Unknown field {name!r}." + (f" Did you mean {hint!r}?" if hint else "")
                raise self.err(node, msg)
            return E.Dot(this=be, expression=E.to_identifier(name, quoted=True)), Ty.from_schema(props[name])
        if bt.kind == "map":
            return E.Bracket(this=be, expressions=[E.Literal.string(name)]), bt.item or Ty.ANY
        if bt.kind == "array" and bt.item is not None and bt.item.kind in ("object", "map"):
            lam, ft = self.with_item(bt.item, lambda: self.field(node, self.stack[-1], name))
            out: E.Expression = E.Transform(this=be, expression=lam)
            if ft.kind == "array":
                out = E.Flatten(this=out)
                ft = ft.item or Ty.ANY
            v = self.fresh()
            nonnull = E.Lambda(this=E.Not(this=E.Is(this=v, expression=E.Null())), expressions=[v])
            return E.ArrayFilter(this=out, expression=nonnull), Ty.array_of(ft)
        raise self.err(node, f"Cannot read field {name!r} of {bt.a} value.")

    # -- nodes -----------------------------------------------------------------------------------
    def sql(self, n: A.Node) -> Typed:
        meth = getattr(self, "s_" + type(n).__name__, None)
        if meth is None:
            raise TypeError(f"internal: no SQL rule for {type(n).__name__} nodes")
        out: Typed = meth(n)
        return out

    def s_Lit(self, n: A.Lit) -> Typed:
        v = n.value
        t = (
            Ty.NULL
            if v is None
            else Ty.BOOL
            if isinstance(v, bool)
            else Ty.INT
            if isinstance(v, int)
            else Ty.NUM
            if isinstance(v, float)
            else Ty.STR
        )
        return literal(v), t

    def s_ListLit(self, n: A.ListLit) -> Typed:
        items = [self.sql(i) for i in n.items]
        t = Ty.NULL
        for _, it in items:
            t = Ty.unify(t, it)
        return E.Array(expressions=[e for e, _ in items]), Ty.array_of(t)

    def s_ObjLit(self, n: A.ObjLit) -> Typed:
        fields: list[E.Expression] = []
        props: dict[str, Any] = {}
        for name, value in n.items:
            e, t = self.sql(value)
            fields.append(E.PropertyEQ(this=E.to_identifier(name, quoted=True), expression=e))
            props[name] = Ty.to_schema(t)
        if not fields:  # SQL has no empty struct; a field nobody can name stands in
            fields.append(E.PropertyEQ(this=E.to_identifier("", quoted=True), expression=E.Null()))
        return E.Struct(expressions=fields), T("object", schema={"type": "object", "properties": props})

    def s_Lambda(self, n: A.Lambda) -> Typed:
        # A lambda in value position is applied to the profile: `(Profile) => Profile.x = 1`.
        bound = {p: self.stack[0] if i == 0 else (E.Null(), Ty.NULL) for i, p in enumerate(n.params)}
        return self._with_vars(bound, lambda: self.sql(n.body))

    def _instant(self, n: A.Node) -> Typed:
        # outside `occurs` a time word or period is the instant it starts at, as in the evaluator
        span = self.const_span(n)
        assert span is not None
        return ts_literal(span.start), Ty.TIME

    def s_TimeLit(self, n: A.TimeLit) -> Typed:
        return self._instant(n)

    def s_Period(self, n: A.Period) -> Typed:
        return self._instant(n)

    def s_Ctx(self, n: A.Ctx) -> Typed:
        if n.up >= len(self.stack):
            raise self.err(n, "'^' goes above the profile.")
        return self.stack[-1 - n.up]

    def s_Param(self, n: A.Param) -> Typed:
        return self.stack[0]

    def s_XEvent(self, n: A.XEvent) -> Typed:
        return E.column("events"), Ty.array_of(self.event_t)

    def s_Var(self, n: A.Var) -> Typed:
        if n.name not in self.vars:
            raise self.err(n, f"Unknown variable {n.name!r}.")
        return self.vars[n.name]

    def s_Field(self, n: A.Field) -> Typed:
        if isinstance(n.obj, A.Ctx) and n.obj.up == 0 and n.name in self.vars:
            return self.vars[n.name]
        return self.field(n, self.sql(n.obj), n.name)

    def s_Unary(self, n: A.Unary) -> Typed:
        if n.op == "not":
            return E.Not(this=_p(self.cond(n.arg))), Ty.BOOL
        e, t = self.sql(n.arg)
        return E.Neg(this=_p(e)), t

    def s_Binary(self, n: A.Binary) -> Typed:
        op = n.op
        if op in ("and", "or"):
            cls = E.And if op == "and" else E.Or
            return cls(this=_p(self.cond(n.left)), expression=_p(self.cond(n.right))), Ty.BOOL
        (le, lt), (re_, rt) = self.sql(n.left), self.sql(n.right)
        kinds = {lt.kind, rt.kind}
        if op in _COMPARISONS and kinds & {"time", "date"} and len(kinds) > 1 and kinds <= _TIMEISH:
            # the evaluator compares a time with a date or a string as two instants
            (le, lt), (re_, rt) = (self._instant_of(le, lt), Ty.TIME), (self._instant_of(re_, rt), Ty.TIME)
        le, re_ = _p(le), _p(re_)
        if op in _COMPARISONS:
            if (
                op not in ("=", "!=")
                and not (lt.numeric and rt.numeric)
                and lt.kind != rt.kind
                and "any" not in (lt.kind, rt.kind)
                and "null" not in (lt.kind, rt.kind)
            ):
                raise self.err(n, f"Cannot compare {lt.a} with {rt.a}.")
            cls2 = {"=": E.EQ, "!=": E.NEQ, "<": E.LT, "<=": E.LTE, ">": E.GT, ">=": E.GTE}[op]
            if (
                op in ("=", "!=")
                and not (lt.numeric and rt.numeric)
                and lt.kind != rt.kind
                and "null" not in (lt.kind, rt.kind)
            ) and "any" not in (lt.kind, rt.kind):  # different types: never equal (null stays null)
                nul = E.Or(
                    this=E.Is(this=le, expression=E.Null()),
                    expression=E.Is(this=re_, expression=E.Null()),
                )
                return E.If(this=nul, true=E.Null(), false=E.Boolean(this=op == "!=")), Ty.BOOL
            return cast(E.Expression, cls2(this=le, expression=re_)), Ty.BOOL
        if op in ("+", "-", "*", "/", "%"):
            if not (lt.numeric or lt.kind in ("any", "null")) or not (
                rt.numeric or rt.kind in ("any", "null")
            ):
                raise self.err(n, f"Arithmetic needs numbers, not {lt.a} and {rt.a}.")
            if op == "/":
                return E.Div(this=le, expression=E.Nullif(this=re_, expression=_num(0))), Ty.NUM
            if op == "%":
                return E.Mod(this=le, expression=E.Nullif(this=re_, expression=_num(0))), Ty.unify(lt, rt)
            cls3 = {"+": E.Add, "-": E.Sub, "*": E.Mul}[op]
            return cast(E.Expression, cls3(this=le, expression=re_)), Ty.unify(lt, rt)
        if op in ("in", "notIn"):
            if isinstance(n.right, A.ListLit):
                e: E.Expression = E.In(this=le, expressions=[self.sql(i)[0] for i in n.right.items])
            else:
                if rt.kind != "array":
                    raise self.err(n, f"'{op}' needs a list on its right, not {rt.a}.")
                guard = E.Is(this=le, expression=E.Null())
                e = E.If(this=guard, true=E.Null(), false=E.ArrayContains(this=re_, expression=le))
            return (E.Not(this=_p(e)) if op == "notIn" else e), Ty.BOOL
        if op == "like":
            return E.Like(this=le, expression=re_), Ty.BOOL
        if op == "matches":
            return E.RegexpLike(this=le, expression=re_), Ty.BOOL
        raise self.err(n, f"Unknown operator {op!r}.")

    def s_Call(self, n: A.Call) -> Typed:
        fn = FUNCTIONS[n.name]
        if n.name == "inSegment":
            seg = n.args[0]
            if not isinstance(seg, A.Lit) or not isinstance(seg.value, str):
                raise self.err(n, "inSegment needs a segment id in double quotes.")
            props = (self.profile_t.schema or {}).get("properties", {})
            if "segmentMembership" not in props:
                return E.Boolean(this=False), Ty.BOOL
            base = self.field(n, self.stack[0], "segmentMembership")
            ups = self.field(n, base, "ups")
            member = self.field(n, ups, seg.value)
            status = self.field(n, member, "status")
            member_in = E.In(
                this=status[0], expressions=[E.Literal.string("realized"), E.Literal.string("existing")]
            )
            return E.Coalesce(this=member_in, expressions=[E.Boolean(this=False)]), Ty.BOOL
        if n.name in ("currentMonth", "currentYear", "currentDayOfMonth"):
            attr = {"currentMonth": "month", "currentYear": "year", "currentDayOfMonth": "day"}[n.name]
            return _num(getattr(self.now, attr)), Ty.INT
        if n.name == "if":
            test = self.cond(n.args[0])
            (a1, t1), (a2, t2) = self.sql(n.args[1]), self.sql(n.args[2])
            if t1.kind != t2.kind and not (t1.numeric and t2.numeric) and "null" not in (t1.kind, t2.kind):
                # SQL needs one branch type: branches of different kinds meet as conditions, which is
                # what they are in a segment (a boolean position).
                a1, a2, t1 = coerce(a1, t1), coerce(a2, t2), Ty.BOOL
                t2 = Ty.BOOL
            return E.If(this=test, true=a1, false=a2), Ty.unify(t1, t2)
        if n.name == "date":
            if not all(isinstance(a, A.Lit) for a in n.args):
                raise self.err(n, "date() takes whole numbers written out, as in date(2024, 5, 1).")
            day = self.const_value(n)
            if not isinstance(day, date):
                return E.Null(), Ty.DATE
            return E.Cast(this=E.Literal.string(day.isoformat()), to=E.DataType.build("DATE")), Ty.DATE
        if n.name == "mapEntry":
            raise self.err(
                n, "mapEntry(K, value) builds the entries of map((K, G) => ...) over a grouped map."
            )
        if n.name == "map" and len(n.args) == 2:
            recv = self.sql(n.args[0])
            if recv[1].kind == "map":
                return self._map_groups(n, recv)
        assert fn.sql is not None, n.name
        args: list[E.Expression] = []
        types: list[T] = []
        recv_t: T | None = None
        for i, a in enumerate(n.args):
            if i in fn.item_args:
                item_t = (
                    recv_t.item if recv_t is not None and recv_t.kind == "array" and recv_t.item else Ty.ANY
                )
                if isinstance(a, A.Lambda):
                    # over list items, parameters after the first have nothing to bind (null), as
                    # in the evaluator
                    extra = {p: (E.Null(), Ty.NULL) for p in a.params[1:]}
                    body = a.body
                    lam, bt = self.with_var(a.params[0], item_t, lambda b=body: self.sql(b), extra)
                else:
                    if fn.name in ("count", "filter", "exists"):
                        lam, bt = self.with_item(item_t, lambda a=a: (self.cond(a), Ty.BOOL))
                    else:
                        lam, bt = self.with_item(item_t, lambda a=a: self.sql(a))
                args.append(lam)
                types.append(bt)
            else:
                if fn.lazy and i == 0:
                    e, t = self.cond(a), Ty.BOOL
                else:
                    e, t = self.sql(a)
                args.append(_p(e) if i == 0 else e)
                types.append(t)
                if i == 0:
                    recv_t = t
        try:
            return fn.sql(args, types), fn.ret(types)
        except PqlError as exc:
            if exc.snippet:
                raise
            raise self.err(n, exc.message) from None

    @staticmethod
    def _listed(e: E.Expression, t: T) -> Typed | None:
        """What a filter or a from-clause ranges over: a list as it is, a single object or map as a
        list of itself (null stays null), as the evaluator does; ``None`` for anything else."""
        if t.kind == "array":
            return e, t
        if t.kind in ("object", "map"):
            one = E.If(
                this=E.Is(this=e, expression=E.Null()), true=E.Null(), false=E.Array(expressions=[e.copy()])
            )
            return one, Ty.array_of(t)
        return None

    def _map_groups(self, n: A.Call, recv: Typed) -> Typed:
        """``groups.map((K, G) => mapEntry(K, value))``: a new map with the same keys."""
        lam = n.args[1]
        if not (
            isinstance(lam, A.Lambda)
            and len(lam.params) == 2
            and isinstance(lam.body, A.Call)
            and lam.body.name == "mapEntry"
            and len(lam.body.args) == 2
            and isinstance(lam.body.args[0], (A.Var, A.Field))
            and getattr(lam.body.args[0], "name", None) == lam.params[0]
        ):
            raise self.err(
                n, "map() over a grouped map takes (K, G) => mapEntry(K, value): one entry per group key K."
            )
        me, mt = recv
        entry = self.fresh()
        key_name, group_name = lam.params
        bound = {
            key_name: (E.Dot(this=entry.copy(), expression=E.to_identifier("key")), Ty.ANY),
            group_name: (E.Dot(this=entry.copy(), expression=E.to_identifier("value")), mt.item or Ty.ANY),
        }
        value_node = lam.body.args[1]
        ve, vt = self._with_vars(bound, lambda: self.sql(value_node))
        pair = E.Struct(
            expressions=[
                E.PropertyEQ(this=E.to_identifier("k"), expression=bound[key_name][0].copy()),
                E.PropertyEQ(this=E.to_identifier("v"), expression=ve),
            ]
        )
        entries = E.Transform(
            this=E.Anonymous(this="map_entries", expressions=[me]),
            expression=E.Lambda(this=pair, expressions=[entry]),
        )
        out = E.Anonymous(this="map_from_entries", expressions=[entries])
        return E.If(this=E.Is(this=me.copy(), expression=E.Null()), true=E.Null(), false=out), T("map", vt)

    def s_Filter(self, n: A.Filter) -> Typed:
        ae, at = self.sql(n.arr)
        listed = self._listed(ae, at)
        lam, _ = self.with_item(
            listed[1].item or Ty.ANY if listed else Ty.ANY, lambda: (self.cond(n.cond), Ty.BOOL)
        )
        if listed is None:  # a filter over a single value has nothing to keep: null
            return E.Null(), Ty.array_of(at)
        return E.ArrayFilter(this=listed[0], expression=lam), listed[1]

    def s_Let(self, n: A.Let) -> Typed:
        ve, vt = self.sql(n.value)
        return self._with_vars({n.name: (E.Paren(this=ve), vt)}, lambda: self.sql(n.body))

    def _decl_source(self, d: A.Decl) -> Typed:
        se, st = self.sql(d.source)
        listed = self._listed(se, st)
        if listed is None:
            raise self.err(d, f"{d.var} must range over a list, not {st.a}.")
        return listed

    def _exists(self, decls: tuple[A.Decl, ...], forall: bool = False) -> E.Expression:
        d, rest = decls[0], decls[1:]
        se, st = self._decl_source(d)

        def body() -> Typed:
            parts: list[E.Expression] = []
            if d.cond is not None:
                parts.append(self.cond(d.cond))
            if rest:
                parts.append(self._exists(rest, forall))
            if not parts:
                return E.Boolean(this=True), Ty.BOOL
            e = parts[0]
            for p in parts[1:]:
                e = E.And(this=_p(e), expression=_p(p))
            if forall:
                e = E.Not(this=_p(e))
            return e, Ty.BOOL

        lam, _ = self.with_var(d.var, st.item or Ty.ANY, body)
        size = E.Coalesce(
            this=E.ArraySize(this=E.ArrayFilter(this=se, expression=lam)), expressions=[_num(0)]
        )
        return (E.EQ if forall else E.GT)(this=size, expression=_num(0))

    def s_Quant(self, n: A.Quant) -> Typed:
        if n.kind in ("exists", "forall"):
            return self._exists(n.decls, forall=n.kind == "forall"), Ty.BOOL
        if len(n.decls) > 1:
            # A multi-variable select yields tuples; in SQL it is available where only its
            # non-emptiness matters, which is exactly what an exists computes.
            return self._exists(n.decls), Ty.BOOL
        d = n.decls[0]
        se, st = self._decl_source(d)
        if d.cond is None:
            return se, st
        cond = d.cond
        lam, _ = self.with_var(d.var, st.item or Ty.ANY, lambda: (self.cond(cond), Ty.BOOL))
        return E.ArrayFilter(this=se, expression=lam), st

    def _agg_values(self, decls: tuple[A.Decl, ...], expr: A.Node) -> Typed:
        """The list of ``expr`` over every combination of the declared variables that meets the
        where-conditions (a variable sees those declared to its left), in declaration order."""
        d, rest = decls[0], decls[1:]
        se, st = self._decl_source(d)
        item_t = st.item or Ty.ANY
        if d.cond is not None:
            cond = d.cond
            lam, _ = self.with_var(d.var, item_t, lambda: (self.cond(cond), Ty.BOOL))
            se = E.ArrayFilter(this=se, expression=lam)
        if rest:
            inner, inner_t = self.with_var(d.var, item_t, lambda: self._agg_values(rest, expr))
            return E.Flatten(this=E.Transform(this=se, expression=inner)), inner_t
        each, vt = self.with_var(d.var, item_t, lambda: self.sql(expr))
        return E.Transform(this=se, expression=each), Ty.array_of(vt)

    def s_Agg(self, n: A.Agg) -> Typed:
        fn = FUNCTIONS[n.fn]
        assert fn.sql is not None
        if len(n.decls) > 1:
            values, vt = self._agg_values(n.decls, n.expr)
            return fn.sql([values], [vt]), fn.ret([vt])
        d = n.decls[0]
        se, st = self._decl_source(d)
        arr = se
        if d.cond is not None:
            cond = d.cond
            lam, _ = self.with_var(d.var, st.item or Ty.ANY, lambda: (self.cond(cond), Ty.BOOL))
            arr = E.ArrayFilter(this=se, expression=lam)
        lam2, vt = self.with_var(d.var, st.item or Ty.ANY, lambda: self.sql(n.expr))
        return fn.sql([arr, lam2], [st, vt]), fn.ret([st, vt])

    # -- time ------------------------------------------------------------------------------------
    def const_value(self, n: A.Node) -> Any:
        """The value of an expression that reads no data, from the evaluator at ``now``."""
        from tessera.pql.to_python import EvalContext, compile_node

        return compile_node(n, boolean=False)({}, [], EvalContext(now=self.now))

    def const_span(self, n: A.Node) -> Span[datetime] | None:
        from tessera.pql.to_python import as_span

        return as_span(self.const_value(n))

    def time_expr(self, n: A.Node) -> E.Expression:
        e, t = self.sql(n)
        if t.kind not in _TIMEISH:
            raise self.err(n, f"Expected a date or timestamp here, not {t.a}.")
        return self._instant_of(e, t)

    @staticmethod
    def _instant_of(e: E.Expression, t: T) -> E.Expression:
        if t.kind == "time":
            return e
        return E.TryCast(this=e, to=E.DataType.build("TIMESTAMP"))

    def span_of(self, n: A.Node) -> Span[Any] | None:
        if _is_constant(n):
            span = self.const_span(n)
            if span is None:
                return None
            return Span(ts_literal(span.start), ts_literal(span.end), span.point)
        e = self.time_expr(n)
        return Span(e, e, True)

    def s_Occurs(self, n: A.Occurs) -> Typed:
        subj = self.time_expr(n.subject)
        tgt = self.span_of(n.target)
        tgt2 = self.span_of(n.target2) if n.target2 is not None else None
        if tgt is None or (n.target2 is not None and tgt2 is None):
            return E.Null(), Ty.BOOL
        amount: int | _Amount | None = None
        if n.amount is not None:
            if isinstance(n.amount, A.Lit) and isinstance(n.amount.value, int):
                amount = n.amount.value
            else:
                ae, at = self.sql(n.amount)
                if at.kind not in ("int", "null"):
                    raise self.err(
                        n.amount, f"occurs counts whole units: the amount must be an integer, not {at.a}."
                    )
                amount = _Amount(ae)
        # bounds fold into literals when neither the target nor the amount reads the data
        consts = _is_constant(n.target) and not isinstance(amount, _Amount)

        def shift(x: Any, k: int | _Amount, unit: str) -> Any:
            if consts:
                assert isinstance(k, int)
                return ts_literal(timeops.shift(self._unlit(x), k, unit))
            name, mult = _INTERVAL[unit]
            one = E.Interval(this=E.Literal.string(str(mult)), unit=E.Var(this=name))
            if isinstance(k, _Amount):
                return E.Add(this=_p(x), expression=E.Mul(this=one, expression=_p(k.sql())))
            return E.Add(
                this=_p(x), expression=E.Interval(this=E.Literal.string(str(k * mult)), unit=E.Var(this=name))
            )

        def trunc(x: Any, unit: str) -> Any:
            if consts:
                return ts_literal(timeops.trunc(self._unlit(x), unit))
            return _trunc(x, unit)

        try:
            bounds = timeops.occurs_bounds(
                # an _Amount stands in for the int: the bounds only negate it and pass it to shift
                n.kind,
                tgt,
                tgt2,
                n.cmp,
                cast(int | None, amount),
                n.unit,
                n.direction,
                shift,
                trunc,
            )
        except (OverflowError, ValueError):
            return E.Null(), Ty.BOOL
        cls = {"<": E.LT, "<=": E.LTE, ">": E.GT, ">=": E.GTE}
        parts: list[E.Expression] = [
            cast(E.Expression, cls[op](this=_p(subj), expression=_p(b))) for op, b in bounds
        ]
        e = parts[0]
        for p in parts[1:]:
            e = E.And(this=_p(e), expression=_p(p))
        return e, Ty.BOOL

    @staticmethod
    def _unlit(x: E.Expression) -> datetime:
        assert isinstance(x, E.Cast)
        return datetime.fromisoformat(x.this.this).replace(tzinfo=UTC)

    def s_Chain(self, n: A.Chain) -> Typed:
        se, st = self.sql(n.source)
        if st.kind != "array" or st.item is None:
            raise self.err(n, "chain() needs a list of events.")
        item_t = st.item
        prev: E.Expression | None = None
        for step in n.steps:

            def step_time(step: A.Step = step, after: E.Expression | None = None) -> Typed:
                """The time of the step's match: the first (or COUNT-th) matching event after
                ``after`` (a bound variable, or None for the first step)."""

                def body() -> Typed:
                    ts_e, _ = self.field(n, self.stack[-1], n.ts)
                    conds = [E.Not(this=E.Is(this=ts_e, expression=E.Null())), self.cond(step.what)]
                    if step.where is not None:
                        conds.append(self.cond(step.where))
                    if step.when is not None:
                        conds.append(self.cond(step.when))
                    if after is not None:
                        conds.append(E.GT(this=ts_e, expression=after))
                    e = conds[0]
                    for c in conds[1:]:
                        e = E.And(this=_p(e), expression=_p(c))
                    return e, Ty.BOOL

                lam, _ = self.with_item(item_t, body)
                matches = E.ArrayFilter(this=se.copy(), expression=lam)
                ts_lam, _ = self.with_item(item_t, lambda: self.field(n, self.stack[-1], n.ts))
                times = E.Transform(this=matches, expression=ts_lam)
                if (step.count or 1) == 1:
                    return E.ArrayMin(this=times), Ty.TIME
                return (
                    E.Bracket(
                        this=E.ArraySort(this=times), expressions=[_num(step.count or 1)], offset=1, safe=True
                    ),
                    Ty.TIME,
                )

            if prev is None:
                prev, _ = step_time()
            else:
                # The previous step's time is bound once per profile (a one-item list mapped by a
                # lambda): written inside the step's filter, it would be recomputed for every event
                # of the profile, each time over all its events.
                var = self.fresh()
                inner, _ = step_time(after=var)
                bind = E.Transform(
                    this=E.Array(expressions=[prev]), expression=E.Lambda(this=inner, expressions=[var])
                )
                prev = E.Bracket(this=bind, expressions=[_num(1)], offset=1, safe=True)
        assert prev is not None
        return E.Not(this=E.Is(this=_p(prev), expression=E.Null())), Ty.BOOL


class _Amount:
    """An ``occurs`` amount read from the data: ``occurs_bounds`` negates it for ``before``."""

    def __init__(self, e: E.Expression, negated: bool = False) -> None:
        self.e, self.negated = e, negated

    def __neg__(self) -> _Amount:
        return _Amount(self.e, not self.negated)

    def sql(self) -> E.Expression:
        return E.Neg(this=_p(self.e.copy())) if self.negated else self.e.copy()


_TRUNC_UNITS = {"millisecond", "second", "minute", "hour", "day", "week", "month", "year"}


def _trunc(x: E.Expression, unit: str) -> E.Expression:
    """Start of the calendar unit holding ``x`` (weeks start on Monday in DuckDB and Spark alike)."""
    if unit in _TRUNC_UNITS:
        return E.TimestampTrunc(this=x, unit=E.Var(this=unit.upper()))
    # decade, century, millennium: the year's start, back to the multiple of the span (as timeops)
    span = {"decade": 10, "century": 100, "millennium": 1000}[unit]
    year_start = E.TimestampTrunc(this=x, unit=E.Var(this="YEAR"))
    years_back = E.Mod(this=E.Year(this=x.copy()), expression=_num(span))
    one_year = E.Interval(this=E.Literal.string("1"), unit=E.Var(this="YEAR"))
    return E.Sub(this=year_start, expression=E.Mul(this=one_year, expression=_p(years_back)))


# Functions sqlglot has no node for; only the function table builds these, by fixed name.
ANONYMOUS_FUNCTIONS = frozenset({"map_values", "map_entries", "map_from_entries"})


def _check_whitelist(e: E.Expression) -> None:
    for node in e.walk():
        if type(node) not in WHITELIST or (
            isinstance(node, E.Anonymous) and node.name.lower() not in ANONYMOUS_FUNCTIONS
        ):
            raise TypeError(f"internal: the SQL compiler produced a {type(node).__name__} node")


def build_select(
    exprs: Mapping[str, tuple[A.Node, bool, str]],
    table: str,
    profile_schema: dict[str, Any],
    event_schema: dict[str, Any],
    now: datetime,
) -> E.Select:
    """``SELECT profile_id, <expr> AS "<name>", ... FROM table`` (boolean entries are coerced)."""
    cols: list[E.Expression] = [E.column("profile_id")]
    for name, (node, boolean, src) in exprs.items():
        c = SqlCompiler(profile_schema, event_schema, now, src)
        e, t = c.sql(node)
        if boolean:
            e = coerce(e, t)
        _check_whitelist(e)
        cols.append(E.Alias(this=e, alias=E.to_identifier(name, quoted=True)))
    return E.Select(expressions=cols).from_(E.Table(this=E.to_identifier(table, quoted=True)))


def for_dialect(select: E.Select, dialect: str) -> E.Select:
    """Rewrite the few nodes whose generic rendering a dialect rejects (after the whitelist check).

    Spark: sqlglot renders a list sum as ``aggregate(a, 0, ...)``, whose INT start Spark will not
    widen to a DOUBLE element type, list overlap as DuckDB's ``&&``, which Spark cannot parse, and
    ``flatten`` of lists holding null lists, which is null in Spark but skips them in DuckDB.
    """
    if dialect != "spark":
        return select

    def spark_flatten(node: E.Expression) -> E.Expression:
        if not isinstance(node, E.Flatten):
            return node
        not_null = E.Not(this=E.Is(this=E.column("_a"), expression=E.Null()))
        kept = E.ArrayFilter(
            this=node.this, expression=E.Lambda(this=not_null, expressions=[E.to_identifier("_a")])
        )
        return E.Flatten(this=kept)

    def spark(node: E.Expression) -> E.Expression:
        if isinstance(node, E.Lambda) and node.meta.get("position_base") == 1:
            # Spark's lambda position counts from 0, array_position from 1
            position = node.expressions[-1].name
            body = node.this.transform(
                lambda n: (
                    E.Paren(this=E.Add(this=n.copy(), expression=E.Literal.number(1)))
                    if isinstance(n, E.Identifier) and n.name == position
                    else n
                )
            )
            return E.Lambda(this=body, expressions=[e.copy() for e in node.expressions])
        if isinstance(node, E.ArraySum):
            add = E.Add(this=E.column("_acc"), expression=E.column("_x"))
            return E.Anonymous(
                this="aggregate",
                expressions=[
                    node.this,
                    E.Cast(this=E.Literal.number(0), to=E.DataType.build("DOUBLE")),
                    E.Lambda(this=add, expressions=[E.to_identifier("_acc"), E.to_identifier("_x")]),
                ],
            )
        if isinstance(node, E.ArrayOverlaps):
            return E.Anonymous(this="arrays_overlap", expressions=[node.this, node.expression])
        return node

    # two passes: transform() does not revisit the children of a node it has replaced
    rewritten = select.transform(spark_flatten).transform(spark)
    assert isinstance(rewritten, E.Select)  # only inner nodes are replaced
    return rewritten


_Desc = tuple[str, tuple[str, ...], bool]
"""A relation path an expression evaluates to: (column, steps, mapped). ``mapped``: a list whose
items are the values at the path (a transform or flatten of the list above it)."""


class _ReadsWalk:
    """Follows relation paths through the compiled tree: field access, list filters, transforms
    and flattens keep a path; sizes and null tests read only its presence; anything else reads the
    value whole (conservative: an unknown use keeps everything under it)."""

    def __init__(self) -> None:
        self.roots = {"profile": Reads(), "events": Reads()}

    def mark(self, d: _Desc, whole: bool) -> None:
        node = self.roots[d[0]]
        for step in d[1]:
            node = node.fields.setdefault(step, Reads())
        node.whole = node.whole or whole

    @staticmethod
    def item(d: _Desc) -> _Desc:
        return (d[0], d[1], False) if d[2] else (d[0], (*d[1], ITEM), False)

    def lambda_(self, lam: E.Expression, env: dict[str, _Desc | None], src: _Desc | None) -> _Desc | None:
        """The path of a lambda's body when its first parameter ranges over the items of ``src``."""
        if not isinstance(lam, E.Lambda):
            return self.visit(lam, env)
        inner = dict(env)
        for i, param in enumerate(lam.expressions):
            inner[param.name] = self.item(src) if i == 0 and src is not None else None
        return self.visit(lam.this, inner)

    def use(self, d: _Desc | None, whole: bool = True) -> None:
        if d is not None:
            self.mark(d, whole)

    def visit(self, e: E.Expression, env: dict[str, _Desc | None]) -> _Desc | None:
        if isinstance(e, (E.Column, E.Identifier)):
            name = e.name
            if name in env:
                return env[name]
            if isinstance(e, E.Column) and not e.table and name in self.roots:
                return (name, (), False)
            return None
        if isinstance(e, E.Paren):
            return self.visit(e.this, env)
        if isinstance(e, E.Dot):
            d = self.visit(e.this, env)
            if d is None or d[2]:
                self.use(d)
                return None
            return (d[0], (*d[1], e.expression.name), False)
        if isinstance(e, E.ArrayFilter):
            d = self.visit(e.this, env)
            self.use(self.lambda_(e.expression, env, d))
            return d  # the same items, fewer of them
        if isinstance(e, E.Transform):
            d = self.visit(e.this, env)
            self.use(d, whole=False)  # the result has the source's nullness and length
            body = self.lambda_(e.expression, env, d)
            if body is not None and not body[2]:
                return (body[0], body[1], True)
            self.use(body)
            return None
        if isinstance(e, E.Flatten):
            d = self.visit(e.this, env)
            if d is None:
                return None
            self.use(d, whole=False)
            return (d[0], (*d[1], ITEM) if d[2] else (*d[1], ITEM, ITEM), True)
        if isinstance(e, E.ArraySize) or (isinstance(e, E.Is) and isinstance(e.expression, E.Null)):
            self.use(self.visit(e.this, env), whole=False)
            return None
        if isinstance(e, E.Lambda):
            self.use(self.lambda_(e, env, None))
            return None
        for child in e.iter_expressions():
            self.use(self.visit(child, env))
        return None


def reads_of(select: E.Expression) -> tuple[Reads, Reads]:
    """What a compiled query reads of the ``profile`` and ``events`` columns (see :class:`Reads`)."""
    walk = _ReadsWalk()
    walk.use(walk.visit(select, {}))
    return walk.roots["profile"], walk.roots["events"]
