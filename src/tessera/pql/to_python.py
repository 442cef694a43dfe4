"""AST → Python closures, compiled once and evaluated as ``fn(profile, events, ctx)``.

Every node becomes a closure ``Scope -> value`` built at compile time; evaluation only calls
closures (no parsing, no tree walking). Null is ``None`` and propagates; it becomes false at boolean
positions (``and``/``or``/``not`` operands, filter and where conditions, ``if`` tests, the top level).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from tessera.errors import PqlError
from tessera.pql import ast as A
from tessera.pql import timeops
from tessera.pql.functions import FUNCTIONS, as_time, like_regex, regex, truthy
from tessera.pql.timeops import Span


@dataclass
class EvalContext:
    """Evaluation parameters: ``now`` (aware UTC) and resource limits."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    max_regex_input: int = 10_000
    """Strings longer than this are not regex-matched (the match yields null)."""

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            self.now = self.now.replace(tzinfo=UTC)
        self.now = self.now.astimezone(UTC)


class Scope:
    """Run-time state of one evaluation: profile, events, context stack and variables."""

    __slots__ = ("ctx", "cur", "events", "profile", "stack", "vars")

    def __init__(
        self,
        profile: Any,
        events: Any,
        ctx: EvalContext,
        stack: tuple[Any, ...],
        cur: Any,
        vars: dict[str, Any],
    ) -> None:
        self.profile = profile
        self.events = events
        self.ctx = ctx
        self.stack = stack  # enclosing contexts, outermost first (for ^, ^^)
        self.cur = cur  # the implicit context: the profile, or the current item inside a filter
        self.vars = vars

    def push(self, item: Any) -> Scope:
        # Loops reuse one child and reassign ``cur`` per item (evaluation is synchronous).
        return Scope(self.profile, self.events, self.ctx, self.stack + (self.cur,), item, self.vars)

    def bind(self, **names: Any) -> Scope:
        return Scope(self.profile, self.events, self.ctx, self.stack, self.cur, {**self.vars, **names})


Fn = Callable[[Scope], Any]
Predicate = Callable[[dict[str, Any], list[dict[str, Any]], EvalContext], Any]


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _timeish(v: Any) -> bool:
    return isinstance(v, (datetime, date, Span))


def _point(v: Any) -> datetime | None:
    if isinstance(v, Span):
        return v.start if isinstance(v.start, datetime) else None
    return as_time(v)


def eq(a: Any, b: Any) -> bool | None:
    """PQL ``=``: null if either side is null; numbers compare by value; other types must match."""
    if a is None or b is None:
        return None
    if _num(a) and _num(b):
        return bool(a == b)
    if _timeish(a) or _timeish(b):
        ta, tb = _point(a), _point(b)
        return None if ta is None or tb is None else ta == tb
    if type(a) is not type(b):
        return False
    return bool(a == b)


def order(op: str, a: Any, b: Any) -> bool | None:
    """PQL ``< <= > >=``: null unless both sides are numbers, strings or times."""
    if a is None or b is None:
        return None
    if _timeish(a) or _timeish(b):
        a, b = _point(a), _point(b)
        if a is None or b is None:
            return None
    elif not ((_num(a) and _num(b)) or (isinstance(a, str) and isinstance(b, str))):
        return None
    return timeops.check(op, a, b)


def arith(op: str, a: Any, b: Any) -> Any:
    """``+ - * / %`` on numbers; null on null, non-numbers or division by zero."""
    if not (_num(a) and _num(b)):
        return None
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        return None
    if op == "/":
        return a / b
    if isinstance(a, int) and isinstance(b, int):  # SQL semantics: sign follows the dividend
        r = abs(a) % abs(b)
        return -r if a < 0 else r
    import math

    return math.fmod(a, b)


def field_of(obj: Any, name: str) -> Any:
    """``obj.name``; over arrays, the flattened non-null field values of the items."""
    if isinstance(obj, dict):
        return obj.get(name)
    if isinstance(obj, list):
        out: list[Any] = []
        for item in obj:
            v = item.get(name) if isinstance(item, dict) else None
            if isinstance(v, list):
                out.extend(x for x in v if x is not None)
            elif v is not None:
                out.append(v)
        return out
    return None


def in_segment(profile: Any, seg_id: Any) -> bool | None:
    """True iff ``profile.segmentMembership.ups[seg_id].status`` is realized or existing."""
    if not isinstance(seg_id, str):
        return None
    m = field_of(field_of(field_of(profile, "segmentMembership"), "ups"), seg_id)
    return field_of(m, "status") in ("realized", "existing")


def as_span(v: Any) -> Span[datetime] | None:
    if isinstance(v, Span):
        return v
    if isinstance(v, date) and not isinstance(v, datetime):
        return timeops.day_span(v)
    t = as_time(v)
    return None if t is None else Span(t, t, True)


class _Compiler:
    def compile(self, n: A.Node) -> Fn:
        meth = getattr(self, "c_" + type(n).__name__)
        fn: Fn = meth(n)
        return fn

    def cond(self, n: A.Node) -> Callable[[Scope], bool]:
        f = self.compile(n)
        return lambda s: truthy(f(s))

    def c_Lit(self, n: A.Lit) -> Fn:
        v = n.value
        return lambda s: v

    def c_ListLit(self, n: A.ListLit) -> Fn:
        fs = [self.compile(i) for i in n.items]
        return lambda s: [f(s) for f in fs]

    def c_ObjLit(self, n: A.ObjLit) -> Fn:
        fs = [(k, self.compile(v)) for k, v in n.items]
        return lambda s: {k: f(s) for k, f in fs}

    def c_Ctx(self, n: A.Ctx) -> Fn:
        up = n.up

        if up == 0:
            return lambda s: s.cur

        def ctx(s: Scope) -> Any:
            return s.stack[-up] if len(s.stack) >= up else None

        return ctx

    def c_Param(self, n: A.Param) -> Fn:
        if n.position != 1:
            raise PqlError(f"Only $1 (the profile) is available, not ${n.position}.")
        return lambda s: s.profile

    def c_XEvent(self, n: A.XEvent) -> Fn:
        return lambda s: s.events

    def c_Var(self, n: A.Var) -> Fn:
        name = n.name
        return lambda s: s.vars.get(name)

    def c_Field(self, n: A.Field) -> Fn:
        name = n.name
        if isinstance(n.obj, A.Ctx) and n.obj.up == 0:

            def top(s: Scope) -> Any:
                o = s.cur
                return o.get(name) if isinstance(o, dict) else field_of(o, name)

            return top
        obj = self.compile(n.obj)
        return lambda s: field_of(obj(s), name)

    def c_Unary(self, n: A.Unary) -> Fn:
        arg = self.compile(n.arg)
        if n.op == "not":
            return lambda s: not truthy(arg(s))

        def neg(s: Scope) -> Any:
            v = arg(s)
            return -v if _num(v) else None

        return neg

    def c_Binary(self, n: A.Binary) -> Fn:
        op = n.op
        lf, rf = self.compile(n.left), self.compile(n.right)
        if op == "and":
            return lambda s: truthy(lf(s)) and truthy(rf(s))
        if op == "or":
            return lambda s: truthy(lf(s)) or truthy(rf(s))
        if op == "=" and isinstance(n.right, A.Lit) and type(n.right.value) in (str, int):
            # Fast path for the most common form, field = literal (same result as eq()).
            lit = n.right.value
            lit_type = type(lit)

            def eq_lit(s: Scope) -> bool | None:
                v = lf(s)
                if type(v) is lit_type:
                    return bool(v == lit)
                return eq(v, lit)

            return eq_lit
        if op == "=":
            return lambda s: eq(lf(s), rf(s))
        if op == "!=":

            def ne(s: Scope) -> bool | None:
                r = eq(lf(s), rf(s))
                return None if r is None else not r

            return ne
        if op in ("<", "<=", ">", ">="):
            return lambda s: order(op, lf(s), rf(s))
        if op in ("+", "-", "*", "/", "%"):
            return lambda s: arith(op, lf(s), rf(s))
        if op in ("in", "notIn"):
            negate = op == "notIn"

            def member(s: Scope) -> bool | None:
                v, coll = lf(s), rf(s)
                if v is None or not isinstance(coll, list):
                    return None
                r = any(eq(v, x) for x in coll)
                return (not r) if negate else r

            return member
        if op == "like":
            if isinstance(n.right, A.Lit) and isinstance(n.right.value, str):
                pat = like_regex(n.right.value)
                return lambda s: (lambda v: pat.match(v) is not None if isinstance(v, str) else None)(lf(s))
            from tessera.pql.functions import like

            return lambda s: like(lf(s), rf(s))
        if op == "matches":
            return self._call("matches", [lf, rf])
        raise PqlError(f"Unknown operator {op!r}.")

    def _call(self, name: str, args: list[Fn]) -> Fn:
        rule = FUNCTIONS[name].py
        if name == "matches":

            def m(s: Scope) -> Any:
                v = args[0](s)
                if isinstance(v, str) and len(v) > s.ctx.max_regex_input:
                    return None
                return rule(v, args[1](s))

            return m
        if len(args) == 1:
            a0 = args[0]
            return lambda s: rule(a0(s))
        if len(args) == 2:
            a0, a1 = args
            return lambda s: rule(a0(s), a1(s))
        return lambda s: rule(*[a(s) for a in args])

    def item_fn(self, n: A.Node) -> Callable[[Scope], Callable[[Any], Any]]:
        """An argument evaluated per item: a lambda binds its parameters, anything else sees the item
        as the implicit context."""
        if isinstance(n, A.Lambda):
            body = self.compile(n.body)
            params = n.params

            def lam(s: Scope) -> Callable[[Any], Any]:
                def per(item: Any) -> Any:
                    if len(params) == 1:
                        return body(s.bind(**{params[0]: item}))
                    vals = item if isinstance(item, tuple) else (item,)
                    return body(s.bind(**dict(zip(params, vals, strict=False))))

                return per

            return lam
        f = self.compile(n)

        def make(s: Scope) -> Callable[[Any], Any]:
            child = s.push(None)

            def per(item: Any) -> Any:
                child.cur = item
                return f(child)

            return per

        return make

    def c_Call(self, n: A.Call) -> Fn:
        fn = FUNCTIONS[n.name]
        nargs = len(n.args)
        if nargs < fn.min_args or (fn.max_args is not None and nargs > fn.max_args):
            raise PqlError(f"{n.name}() does not take {nargs} argument(s).")
        if n.name == "inSegment":
            seg_fn = self.compile(n.args[0])
            return lambda s: in_segment(s.profile, seg_fn(s))
        if n.name in ("currentMonth", "currentYear", "currentDayOfMonth"):
            attr = {"currentMonth": "month", "currentYear": "year", "currentDayOfMonth": "day"}[n.name]
            return lambda s: getattr(s.ctx.now, attr)
        if n.name == "date":
            dparts = [self.compile(a) for a in n.args]
            return lambda s: fn.py(*[p(s) for p in dparts])
        if fn.lazy:
            thunks = [self.compile(a) for a in n.args]
            test = thunks[0]
            return lambda s: fn.py(lambda: test(s), lambda: thunks[1](s), lambda: thunks[2](s))
        if (
            n.name == "matches"
            and isinstance(n.args[1], A.Lit)
            and isinstance(n.args[1].value, str)
            and regex(n.args[1].value) is None
        ):
            raise PqlError(f"{n.args[1].value!r} is not a valid regular expression.")
        if fn.item_args:
            parts: list[Fn] = []
            for i, a in enumerate(n.args):
                if i in fn.item_args:
                    parts.append(self.item_fn(a))
                else:
                    parts.append(self.compile(a))
            return lambda s: fn.py(*[p(s) for p in parts])
        return self._call(n.name, [self.compile(a) for a in n.args])

    def c_Filter(self, n: A.Filter) -> Fn:
        arr = self.compile(n.arr)
        cond = self.cond(n.cond)

        def filt(s: Scope) -> Any:
            a = arr(s)
            if isinstance(a, dict):
                a = [a]
            if not isinstance(a, list):
                return None
            child = s.push(None)
            out = []
            for x in a:
                child.cur = x
                if cond(child):
                    out.append(x)
            return out

        return filt

    def c_Lambda(self, n: A.Lambda) -> Fn:
        per = self.item_fn(n)
        return per

    def c_Let(self, n: A.Let) -> Fn:
        val, body, name = self.compile(n.value), self.compile(n.body), n.name
        return lambda s: body(s.bind(**{name: val(s)}))

    def _bindings(self, decls: tuple[A.Decl, ...]) -> Callable[[Scope], Any]:
        """A generator of scopes binding every combination of declared variables that meets its
        where-condition (variables see those declared to their left)."""
        compiled = [(d.var, self.compile(d.source), self.cond(d.cond) if d.cond else None) for d in decls]

        def gen(s: Scope, k: int = 0) -> Any:
            if k == len(compiled):
                yield s
                return
            var, src, cond = compiled[k]
            items = src(s)
            if isinstance(items, dict):
                items = [items]
            if not isinstance(items, list):
                return
            s2 = s.bind(**{var: None})
            env = s2.vars
            for item in items:
                env[var] = item  # consumers use each yielded scope before the next item
                if cond is None or cond(s2):
                    yield from gen(s2, k + 1)

        return gen

    def c_Quant(self, n: A.Quant) -> Fn:
        names = [d.var for d in n.decls]
        if n.kind == "forall":
            compiled = [
                (d.var, self.compile(d.source), self.cond(d.cond) if d.cond else None) for d in n.decls
            ]

            def forall(s: Scope, k: int = 0) -> bool:
                if k == len(compiled):
                    return True
                var, src, cond = compiled[k]
                items = src(s)
                if isinstance(items, dict):
                    items = [items]
                s2 = s.bind(**{var: None})
                for item in items if isinstance(items, list) else []:
                    s2.vars[var] = item
                    if not ((cond is None or cond(s2)) and forall(s2, k + 1)):
                        return False
                return True

            return forall
        gen = self._bindings(n.decls)
        if n.kind == "exists":
            return lambda s: any(True for _ in gen(s))
        if len(names) == 1:
            v = names[0]
            return lambda s: [b.vars[v] for b in gen(s)]
        return lambda s: [[b.vars[v] for v in names] for b in gen(s)]

    def c_Agg(self, n: A.Agg) -> Fn:
        gen = self._bindings(n.decls)
        expr = self.compile(n.expr)
        rule = FUNCTIONS[n.fn].py
        return lambda s: rule([expr(b) for b in gen(s)])

    def c_TimeLit(self, n: A.TimeLit) -> Fn:
        kind = n.kind
        return lambda s: timeops.time_word(kind, s.ctx.now)

    def c_Period(self, n: A.Period) -> Fn:
        rel, unit = n.rel, n.unit
        return lambda s: timeops.period(rel, unit, s.ctx.now)

    def c_Occurs(self, n: A.Occurs) -> Fn:
        subj = self.compile(n.subject)
        tgt = self.compile(n.target)
        tgt2 = self.compile(n.target2) if n.target2 is not None else None
        amount = self.compile(n.amount) if n.amount is not None else None
        kind, cmp, unit, direction = n.kind, n.cmp, n.unit, n.direction
        if all(_is_constant(x) for x in (n.target, n.target2, n.amount) if x is not None):
            # Constant target (now, today, last month, date(...)): bounds depend only on ctx.now, so
            # they are computed once per evaluation time, not once per event.
            cache: dict[datetime, list[tuple[str, datetime]] | None] = {}

            def const_bounds(s: Scope) -> list[tuple[str, datetime]] | None:
                now = s.ctx.now
                if now not in cache:
                    if len(cache) > 64:
                        cache.clear()
                    cache[now] = _bounds(s)
                return cache[now]

            def occurs_const(s: Scope) -> bool | None:
                t = as_time(subj(s))
                bounds = const_bounds(s)
                if t is None or bounds is None:
                    return None
                return all(timeops.check(op, t, b) for op, b in bounds)

        def _bounds(s: Scope) -> list[tuple[str, datetime]] | None:
            span = as_span(tgt(s))
            if span is None:
                return None
            span2 = as_span(tgt2(s)) if tgt2 else None
            if tgt2 is not None and span2 is None:
                return None
            num: int | None = None
            if amount is not None:
                a = amount(s)
                if not isinstance(a, int) or isinstance(a, bool):
                    return None
                num = a
            try:
                return timeops.occurs_bounds(
                    kind, span, span2, cmp, num, unit, direction, timeops.shift, timeops.trunc
                )
            except (OverflowError, ValueError):
                return None

        if all(_is_constant(x) for x in (n.target, n.target2, n.amount) if x is not None):
            return occurs_const

        def occurs(s: Scope) -> bool | None:
            t = as_time(subj(s))
            span = as_span(tgt(s))
            if t is None or span is None:
                return None
            span2 = as_span(tgt2(s)) if tgt2 else None
            if tgt2 is not None and span2 is None:
                return None
            num: int | None = None
            if amount is not None:
                a = amount(s)
                if not isinstance(a, int) or isinstance(a, bool):
                    return None
                num = a
            try:
                bounds = timeops.occurs_bounds(
                    kind, span, span2, cmp, num, unit, direction, timeops.shift, timeops.trunc
                )
            except (OverflowError, ValueError):
                return None
            return all(timeops.check(op, t, b) for op, b in bounds)

        return occurs

    def c_Chain(self, n: A.Chain) -> Fn:
        src = self.compile(n.source)
        ts = n.ts
        steps = []
        for st in n.steps:
            conds = [self.cond(st.what)]
            if st.where is not None:
                conds.append(self.cond(st.where))
            if st.when is not None:
                conds.append(self.cond(st.when))
            steps.append((conds, st.count or 1))

        if len(steps) == 1:
            # One step: order is irrelevant, so count matches without sorting.
            (conds1, need) = steps[0]

            def chain1(s: Scope) -> bool:
                events = src(s)
                if not isinstance(events, list):
                    return False
                se = s.push(None)
                hits = 0
                for e in events:
                    if not isinstance(e, dict) or as_time(e.get(ts)) is None:
                        continue
                    se.cur = e
                    if all(c(se) for c in conds1):
                        hits += 1
                        if hits >= need:
                            return True
                return False

            return chain1

        def chain(s: Scope) -> bool:
            events = src(s)
            if not isinstance(events, list):
                return False
            timed = []
            for e in events:
                t = as_time(e.get(ts)) if isinstance(e, dict) else None
                if t is not None:
                    timed.append((t, e))
            timed.sort(key=lambda p: p[0])
            prev: datetime | None = None
            se = s.push(None)
            for conds, count in steps:
                hits = 0
                found = None
                for t, e in timed:
                    if prev is not None and t <= prev:
                        continue
                    se.cur = e
                    if all(c(se) for c in conds):
                        hits += 1
                        if hits == count:
                            found = t
                            break
                if found is None:
                    return False
                prev = found
            return True

        return chain


def _is_constant(n: A.Node) -> bool:
    return not any(isinstance(x, (A.Field, A.Var, A.XEvent, A.Ctx, A.Param)) for x in A.walk(n))


def compile_node(node: A.Node, boolean: bool) -> Predicate:
    """Compile an AST to ``fn(profile, events, ctx)``; ``boolean`` coerces the result (segments)."""
    body = _Compiler().compile(node)

    def run(profile: dict[str, Any], events: list[dict[str, Any]], ctx: EvalContext) -> Any:
        return body(Scope(profile, events, ctx, (), profile, {}))

    def run_bool(profile: dict[str, Any], events: list[dict[str, Any]], ctx: EvalContext) -> bool:
        return truthy(body(Scope(profile, events, ctx, (), profile, {})))

    return run_bool if boolean else run
