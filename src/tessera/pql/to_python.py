"""AST → Python closures, compiled once and evaluated as ``fn(profile, events, ctx)``.

Every node becomes a closure ``Scope -> value`` built at compile time; evaluation only calls
closures (no parsing, no tree walking). Null is ``None`` and propagates; it becomes false at boolean
positions (``and``/``or``/``not`` operands, filter and where conditions, ``if`` tests, the top level).
"""

from __future__ import annotations

import itertools
import operator
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from tessera.errors import PqlError
from tessera.pql import ast as A
from tessera.pql import timeops
from tessera.pql.functions import FUNCTIONS, _parse_iso, as_time, like_regex, regex, truthy
from tessera.pql.timeops import Span


@dataclass
class EvalContext:
    """Evaluation parameters: ``now`` (aware UTC) and resource limits."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    max_regex_input: int = 10_000
    """Strings longer than this are not regex-matched (the match yields null)."""
    index: EventIndex | None = field(default=None, init=False, repr=False, compare=False)
    """The event index of the last events list evaluated with this context; every segment evaluated
    on the same profile (same list object) shares it."""

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


class EventIndex:
    """Work on one profile's events shared by every expression evaluated on them: events grouped by
    the string value of a field (``eventType = "x"`` reads one group instead of scanning all events),
    and events with a valid timestamp sorted by it (chains). Built lazily, once per events list."""

    __slots__ = ("_groups", "_timed", "events", "n", "steps")

    def __init__(self, events: list[Any]) -> None:
        self.events = events
        self.n = len(events)
        self._groups: dict[str, dict[str, list[Any]]] = {}
        self._timed: dict[tuple[str, str | None, str | None], tuple[list[datetime], list[Any]]] = {}
        self.steps: dict[tuple[int, datetime | None, datetime], datetime | None] = {}
        """Chain steps already matched on these events: (step, after, now) → match time."""

    def group(self, name: str, value: str) -> list[Any]:
        """Events (in list order) whose field ``name`` is the string ``value``; do not mutate."""
        groups = self._groups.get(name)
        if groups is None:
            groups = {}
            for e in self.events:
                if isinstance(e, dict):
                    v = e.get(name)
                    if type(v) is str:
                        bucket = groups.get(v)
                        if bucket is None:
                            groups[v] = [e]
                        else:
                            bucket.append(e)
            self._groups[name] = groups
        return groups.get(value, _EMPTY)

    def timed(
        self, ts: str, name: str | None = None, value: str | None = None
    ) -> tuple[list[datetime], list[Any]]:
        """(times, events) of the events (of one group, if given) with a valid ``ts``, in time order
        (stable: equal times keep list order)."""
        k = (ts, name, value)
        got = self._timed.get(k)
        if got is None:
            source = self.events if name is None or value is None else self.group(name, value)
            pairs = []
            for e in source:
                if isinstance(e, dict):
                    v = e.get(ts)
                    t = _parse_iso(v) if type(v) is str else as_time(v)
                    if t is not None:
                        pairs.append((t, e))
            pairs.sort(key=_first)
            got = self._timed[k] = ([p[0] for p in pairs], [p[1] for p in pairs])
        return got


_EMPTY: list[Any] = []


def _first(p: tuple[datetime, Any]) -> datetime:
    return p[0]


def index_of(s: Scope) -> EventIndex | None:
    """The shared index of the scope's events (``None`` when they are not a list)."""
    ev = s.events
    if type(ev) is not list:
        return None
    ctx = s.ctx
    ix = ctx.index
    if ix is None or ix.events is not ev or ix.n != len(ev):
        ix = ctx.index = EventIndex(ev)
    return ix


Fn = Callable[[Scope], Any]


class _ItemFn:
    """A function of one item, bound to the scope of an evaluation once per loop: ``static`` when
    it does not depend on the scope (then ``bind`` returns it), else ``bind(scope)`` builds it."""

    __slots__ = ("bind", "static")

    def __init__(
        self,
        static: Callable[[Any], Any] | None,
        bind: Callable[[Scope], Callable[[Any], Any]] | None = None,
    ) -> None:
        self.static = static
        self.bind: Callable[[Scope], Callable[[Any], Any]]
        if bind is None:
            assert static is not None
            fixed: Callable[[Any], Any] = static
            self.bind = lambda s: fixed
        else:
            self.bind = bind

    def map(self, wrap: Callable[[Callable[[Any], Any]], Callable[[Any], Any]]) -> _ItemFn:
        if self.static is not None:
            return _ItemFn(wrap(self.static))
        inner = self.bind
        return _ItemFn(None, lambda s: wrap(inner(s)))

    def map2(
        self,
        other: _ItemFn,
        wrap: Callable[[Callable[[Any], Any], Callable[[Any], Any]], Callable[[Any], Any]],
    ) -> _ItemFn:
        if self.static is not None and other.static is not None:
            return _ItemFn(wrap(self.static, other.static))
        b1, b2 = self.bind, other.bind
        return _ItemFn(None, lambda s: wrap(b1(s), b2(s)))


def _none(x: Any) -> None:
    return None


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


def _walk_from(o: Any, path: tuple[str, ...], i: int) -> Any:
    for name in path[i:]:
        if type(o) is dict:
            o = o.get(name)
        elif o is None:
            return None
        else:
            o = field_of(o, name)
    return o


def _path_fn(path: tuple[str, ...]) -> Callable[[Any], Any]:
    """``obj.a.b.c`` as one function of ``obj``: nested dict lookups, unrolled for the short paths
    that make up most expressions; arrays and other values take the general walk."""
    if len(path) == 2:
        a, b = path

        def get2(o: Any) -> Any:
            if type(o) is dict:
                o = o.get(a)
                if type(o) is dict:
                    return o.get(b)
                return _walk_from(o, path, 1)
            return _walk_from(o, path, 0)

        return get2
    if len(path) == 3:
        a, b, c = path

        def get3(o: Any) -> Any:
            if type(o) is dict:
                o = o.get(a)
                if type(o) is dict:
                    o = o.get(b)
                    if type(o) is dict:
                        return o.get(c)
                    return _walk_from(o, path, 2)
                return _walk_from(o, path, 1)
            return _walk_from(o, path, 0)

        return get3
    return lambda o: _walk_from(o, path, 0)


def _conjuncts(n: A.Node) -> list[A.Node]:
    if isinstance(n, A.Binary) and n.op == "and":
        return _conjuncts(n.left) + _conjuncts(n.right)
    return [n]


def _group_key(n: A.Node, var: str | None) -> tuple[str, str] | None:
    """``(field, value)`` when ``n`` is ``<item>.field = "value"`` on the current item (``var`` None)
    or on variable ``var``, with a value that cannot be read as a time (so equality is exactly
    "the field is that string", see :func:`eq`)."""
    if not (isinstance(n, A.Binary) and n.op == "="):
        return None
    for f, lit in ((n.left, n.right), (n.right, n.left)):
        if isinstance(f, A.Field) and isinstance(lit, A.Lit) and type(lit.value) is str:
            obj = f.obj
            on_item = (
                isinstance(obj, A.Ctx) and obj.up == 0
                if var is None
                else isinstance(obj, A.Var) and obj.name == var
            )
            if on_item and as_time(lit.value) is None:
                return f.name, lit.value
    return None


def _split_group(cond: A.Node | None, var: str | None) -> tuple[tuple[str, str] | None, list[A.Node]]:
    """A group-key conjunct of ``cond`` and the other conjuncts (conjunction order is irrelevant:
    evaluation has no side effects)."""
    if cond is None:
        return None, []
    parts = _conjuncts(cond)
    for i, c in enumerate(parts):
        k = _group_key(c, var)
        if k is not None:
            return k, parts[:i] + parts[i + 1 :]
    return None, parts


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class _Window:
    """The bounds of one constant ``occurs`` at one evaluation time: ``check(t)`` applies them all;
    over sorted times, :meth:`first` skips what the lower bounds exclude and :meth:`beyond` tells
    when the upper bounds exclude everything from ``t`` on."""

    __slots__ = ("check", "highs", "lows")

    def __init__(self, bounds: list[tuple[str, datetime]]) -> None:
        fs = [(_CMP[op], b) for op, b in bounds]
        if len(fs) == 1:
            (f1, b1) = fs[0]
            self.check: Callable[[datetime], bool] = lambda t: f1(t, b1)
        elif len(fs) == 2:
            (f1, b1), (f2, b2) = fs
            self.check = lambda t: f1(t, b1) and f2(t, b2)
        else:
            self.check = lambda t: all(f(t, b) for f, b in fs)
        self.lows = [(op, b) for op, b in bounds if op in (">", ">=")]
        self.highs = [(_CMP[op], b) for op, b in bounds if op in ("<", "<=")]

    def first(self, times: list[datetime], i: int) -> int:
        for op, b in self.lows:
            i = max(i, bisect_right(times, b) if op == ">" else bisect_left(times, b))
        return i

    def beyond(self, t: datetime) -> bool:
        return any(not f(t, b) for f, b in self.highs)


_UNSET: Any = object()


class _SharedWindow:
    """The window of one constant ``occurs`` target at the last evaluation time (one slot: an
    evaluation asks many times for the same ``now``)."""

    __slots__ = ("bounds", "last")

    def __init__(self, bounds: Callable[[Scope], list[tuple[str, datetime]] | None]) -> None:
        self.bounds = bounds
        self.last: tuple[datetime, _Window | None] | None = None

    def get(self, s: Scope) -> _Window | None:
        now = s.ctx.now
        last = self.last
        if last is not None and last[0] == now:
            return last[1]
        b = self.bounds(s)
        w = None if b is None else _Window(b)
        self.last = (now, w)
        return w


_WINDOWS: dict[tuple[Any, ...], _SharedWindow] = {}
_STEP_IDS: dict[tuple[Any, ...], int] = {}
_STEP_COUNTER = itertools.count()
"""Chain steps by what they match (equal steps of different chains share an id)."""


class _Compiler:
    def compile(self, n: A.Node) -> Fn:
        meth = getattr(self, "c_" + type(n).__name__)
        fn: Fn = meth(n)
        return fn

    def cond(self, n: A.Node) -> Callable[[Scope], bool]:
        if isinstance(n, A.Quant) and n.kind == "select":
            # In boolean position a selection only has to be non-empty: stop at the first match.
            n = A.Quant("exists", n.decls, n.pos)
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
        # A path a.b.c is one loop over its names (dict lookups) rather than a closure per name.
        names: list[str] = []
        root: A.Node = n
        while isinstance(root, A.Field):
            names.append(root.name)
            root = root.obj
        names.reverse()
        if isinstance(root, A.Ctx) and root.up == 0:
            base: Fn = lambda s: s.cur  # noqa: E731
        elif isinstance(root, A.Var):
            var = root.name
            base = lambda s: s.vars.get(var)  # noqa: E731
        else:
            base = self.compile(root)
        if len(names) == 1:
            name = names[0]

            def one(s: Scope) -> Any:
                o = base(s)
                return o.get(name) if type(o) is dict else field_of(o, name)

            return one
        get = _path_fn(tuple(names))
        if isinstance(root, A.Ctx) and root.up == 0:
            return lambda s: get(s.cur)
        return lambda s: get(base(s))

    def c_Unary(self, n: A.Unary) -> Fn:
        if n.op == "not":
            c = self.cond(n.arg)
            return lambda s: not c(s)
        arg = self.compile(n.arg)

        def neg(s: Scope) -> Any:
            v = arg(s)
            return -v if _num(v) else None

        return neg

    def c_Binary(self, n: A.Binary) -> Fn:
        op = n.op
        if op in ("and", "or"):
            lc, rc = self.cond(n.left), self.cond(n.right)
            if op == "and":
                return lambda s: lc(s) and rc(s)
            return lambda s: lc(s) or rc(s)
        lf, rf = self.compile(n.left), self.compile(n.right)
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
            if isinstance(n.right, A.Lit) and type(n.right.value) in (int, float):
                num_lit, fop = n.right.value, _CMP[op]

                def cmp_lit(s: Scope) -> bool | None:
                    v = lf(s)
                    if type(v) is int or type(v) is float:
                        return fop(v, num_lit)
                    return order(op, v, num_lit)

                return cmp_lit
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

    def ifn(self, n: A.Node, var: str | None) -> _ItemFn | None:
        """``n`` as a function of one item when it reads only the item (the implicit context when
        ``var`` is None, else variable ``var``) through paths compared with literals, ``and``/``or``/
        ``not`` and constant-window ``occurs`` — the common shape of event conditions. Loops bind it
        once per evaluation and then call one plain function per item, instead of a closure per node
        over a scope. ``None`` when ``n`` has another shape (the scope closures are used)."""
        if isinstance(n, A.Field):
            names: list[str] = []
            root: A.Node = n
            while isinstance(root, A.Field):
                names.append(root.name)
                root = root.obj
            if not (
                (var is None and isinstance(root, A.Ctx) and root.up == 0)
                or (var is not None and isinstance(root, A.Var) and root.name == var)
            ):
                return None
            names.reverse()
            if len(names) == 1:
                name = names[0]
                return _ItemFn(lambda x: x.get(name) if type(x) is dict else field_of(x, name))
            return _ItemFn(_path_fn(tuple(names)))
        if isinstance(n, A.Lit):
            v = n.value
            return _ItemFn(lambda x: v)
        if isinstance(n, A.Unary) and n.op == "not":
            a = self.ifn(n.arg, var)
            return None if a is None else a.map(lambda f: lambda x: not truthy(f(x)))
        if isinstance(n, A.Binary):
            op = n.op
            if op in ("and", "or"):
                lf, rf = self.ifn(n.left, var), self.ifn(n.right, var)
                if lf is None or rf is None:
                    return None
                if op == "and":
                    return lf.map2(rf, lambda f, g: lambda x: truthy(f(x)) and truthy(g(x)))
                return lf.map2(rf, lambda f, g: lambda x: truthy(f(x)) or truthy(g(x)))
            if not isinstance(n.right, A.Lit):
                return None
            lit = n.right.value
            get = self.ifn(n.left, var)
            if get is None:
                return None
            if op in ("=", "!=") and type(lit) in (str, int):
                lit_type = type(lit)
                neg = op == "!="

                def eq_item(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
                    def test(x: Any) -> bool | None:
                        v = f(x)
                        r = bool(v == lit) if type(v) is lit_type else eq(v, lit)
                        return r if r is None or not neg else not r

                    return test

                return get.map(eq_item)
            if op in _CMP and type(lit) in (int, float):
                fop = _CMP[op]

                def cmp_item(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
                    def test(x: Any) -> bool | None:
                        v = f(x)
                        if type(v) is int or type(v) is float:
                            return fop(v, lit)
                        return order(op, v, lit)

                    return test

                return get.map(cmp_item)
            return None
        if isinstance(n, A.Occurs):
            subj = self.ifn(n.subject, var)
            checker = self.time_check(n)
            if subj is None or checker is None:
                return None

            def bind(s: Scope) -> Callable[[Any], Any]:
                get = subj.bind(s)
                c = checker(s)
                if c is None:
                    return _none
                check = c.check

                def occurs_item(x: Any) -> bool | None:
                    t = as_time(get(x))
                    return None if t is None else check(t)

                return occurs_item

            return _ItemFn(None, bind)
        return None

    def item_cond(self, nodes: list[A.Node], var: str | None) -> _ItemFn | None:
        """The conjunction of ``nodes`` in boolean position as an item function, or ``None`` when
        one of them is not an item function."""
        fs = [self.ifn(c, var) for c in nodes]
        if not fs or any(f is None for f in fs):
            return None
        conds = [f for f in fs if f is not None]
        acc = conds[0].map(lambda f: lambda x: truthy(f(x)))
        for c in conds[1:]:
            acc = acc.map2(c, lambda f, g: lambda x: f(x) and truthy(g(x)))
        return acc

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
        direct = self.ifn(n, None)
        if direct is not None:
            return direct.bind
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

    def _all(self, nodes: list[A.Node]) -> Callable[[Scope], bool] | None:
        """The conjunction of ``nodes`` in boolean position (``None`` when there are none)."""
        conds = [self.cond(c) for c in nodes]
        if not conds:
            return None
        if len(conds) == 1:
            return conds[0]
        if len(conds) == 2:
            c1, c2 = conds
            return lambda s: c1(s) and c2(s)
        return lambda s: all(c(s) for c in conds)

    def c_Filter(self, n: A.Filter) -> Fn:
        arr = self.compile(n.arr)
        cond = self.cond(n.cond)
        icond = self.item_cond([n.cond], None)

        def filt(s: Scope) -> Any:
            a = arr(s)
            if isinstance(a, dict):
                a = [a]
            if not isinstance(a, list):
                return None
            if icond is not None:
                f = icond.bind(s)
                return [x for x in a if f(x)]
            child = s.push(None)
            out = []
            for x in a:
                child.cur = x
                if cond(child):
                    out.append(x)
            return out

        gkey, rest_nodes = _split_group(n.cond, None) if isinstance(n.arr, A.XEvent) else (None, [])
        if gkey is None:
            return filt
        # xEvent[eventType = "x" and ...]: read the shared group instead of scanning every event.
        gname, gvalue = gkey
        rest = self._all(rest_nodes)
        irest = self.item_cond(rest_nodes, None) if rest_nodes else None

        def filt_group(s: Scope) -> Any:
            ix = index_of(s)
            if ix is None:
                return filt(s)
            g = ix.group(gname, gvalue)
            if rest is None:
                return list(g)
            if irest is not None:
                f = irest.bind(s)
                return [x for x in g if f(x)]
            child = s.push(None)
            out = []
            for x in g:
                child.cur = x
                if rest(child):
                    out.append(x)
            return out

        return filt_group

    def c_Lambda(self, n: A.Lambda) -> Fn:
        # A lambda in value position is applied to the profile: `(Profile) => Profile.x = 1` (the
        # later parameters have nothing to bind). Item arguments take lambdas through item_fn.
        body, first, rest = self.compile(n.body), n.params[0], n.params[1:]
        return lambda s: body(s.bind(**{first: s.profile}, **dict.fromkeys(rest)))

    def c_Let(self, n: A.Let) -> Fn:
        val, body, name = self.compile(n.value), self.compile(n.body), n.name
        return lambda s: body(s.bind(**{name: val(s)}))

    def _decls(
        self, decls: tuple[A.Decl, ...]
    ) -> list[tuple[str, Fn, Callable[[Scope], bool] | None, _ItemFn | None]]:
        """Each declaration as (variable, source, where-condition on the scope, the same condition
        as an item function when it reads only the variable)."""
        compiled = []
        for d in decls:
            src = self.compile(d.source)
            gkey, rest = _split_group(d.cond, d.var) if isinstance(d.source, A.XEvent) else (None, [])
            if gkey is not None:
                # X from xEvent where X.eventType = "x" and ...: iterate the shared group only.
                src = self._group_source(src, gkey)
            elif d.cond is not None:
                rest = [d.cond]
            cond = self._all(rest)
            icond = self.item_cond(rest, d.var) if rest else None
            compiled.append((d.var, src, cond, icond))
        return compiled

    def _bindings(self, decls: tuple[A.Decl, ...]) -> Callable[[Scope], Any]:
        """A generator of scopes binding every combination of declared variables that meets its
        where-condition (variables see those declared to their left)."""
        compiled = self._decls(decls)

        def gen(s: Scope, k: int = 0) -> Any:
            if k == len(compiled):
                yield s
                return
            var, src, cond, icond = compiled[k]
            items = src(s)
            if isinstance(items, dict):
                items = [items]
            if not isinstance(items, list):
                return
            s2 = s.bind(**{var: None})
            env = s2.vars
            test = icond.bind(s) if icond is not None else None
            for item in items:
                if test is not None:
                    if not test(item):
                        continue
                    env[var] = item
                else:
                    env[var] = item  # consumers use each yielded scope before the next item
                    if cond is not None and not cond(s2):
                        continue
                yield from gen(s2, k + 1)

        return gen

    @staticmethod
    def _group_source(src: Fn, gkey: tuple[str, str]) -> Fn:
        gname, gvalue = gkey

        def group(s: Scope) -> Any:
            ix = index_of(s)
            if ix is not None:
                return ix.group(gname, gvalue)
            items = src(s)  # events that are not a list: filter them the slow way
            if isinstance(items, dict):
                items = [items]
            if not isinstance(items, list):
                return None
            return [
                e for e in items if isinstance(e, dict) and type(e.get(gname)) is str and e[gname] == gvalue
            ]

        return group

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
        if len(n.decls) == 1 and n.kind in ("exists", "select"):
            ((_, src, _, icond),) = self._decls(n.decls)
            if icond is not None:
                # One variable with an item condition: a comprehension over the source.
                exists = n.kind == "exists"

                def one_var(s: Scope) -> Any:
                    items = src(s)
                    if isinstance(items, dict):
                        items = [items]
                    if not isinstance(items, list):
                        return False if exists else []
                    f = icond.bind(s)
                    if exists:
                        return any(f(x) for x in items)
                    return [x for x in items if f(x)]

                return one_var
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

    def _occurs_bounds(self, n: A.Occurs) -> Callable[[Scope], list[tuple[str, datetime]] | None]:
        tgt = self.compile(n.target)
        tgt2 = self.compile(n.target2) if n.target2 is not None else None
        amount = self.compile(n.amount) if n.amount is not None else None
        kind, cmp, unit, direction = n.kind, n.cmp, n.unit, n.direction

        def bounds(s: Scope) -> list[tuple[str, datetime]] | None:
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

        return bounds

    def time_check(self, n: A.Occurs) -> Callable[[Scope], _Window | None] | None:
        """For an ``occurs`` whose target does not depend on the data (now, today, last month,
        date(...)): ``fn(scope) -> window``, the bounds computed once per evaluation time and shared
        by every expression with the same target (50 segments with ``< 24 hours before now`` build
        one window per evaluation). ``None`` when the target depends on the data."""
        if not all(_is_constant(x) for x in (n.target, n.target2, n.amount) if x is not None):
            return None
        spec = (n.kind, n.target, n.target2, n.cmp, n.amount, n.unit, n.direction)
        shared = _WINDOWS.get(spec)
        if shared is None:
            if len(_WINDOWS) > 4096:
                _WINDOWS.clear()
            shared = _WINDOWS[spec] = _SharedWindow(self._occurs_bounds(n))
        return shared.get

    def c_Occurs(self, n: A.Occurs) -> Fn:
        subj = self.compile(n.subject)
        checker = self.time_check(n)
        if checker is not None:

            def occurs_const(s: Scope) -> bool | None:
                t = as_time(subj(s))
                if t is None:
                    return None
                c = checker(s)
                return None if c is None else c.check(t)

            return occurs_const
        bounds = self._occurs_bounds(n)

        def occurs(s: Scope) -> bool | None:
            t = as_time(subj(s))
            if t is None:
                return None
            b = bounds(s)
            if b is None:
                return None
            return all(timeops.check(op, t, x) for op, x in b)

        return occurs

    def _step(self, st: A.Step, ts: str) -> tuple[tuple[str, str] | None, list[A.Node], Any]:
        """A chain step as (group key of its WHAT, the other conditions on the event, a check of the
        event's time when WHEN is a constant window on the chain's own timestamp)."""
        gkey, rest = _split_group(st.what, None)
        if gkey is None:
            rest = [st.what]
        if st.where is not None:
            rest.append(st.where)
        tcheck = None
        when = st.when
        if when is not None:
            subj = when.subject
            if (
                isinstance(subj, A.Field)
                and isinstance(subj.obj, A.Ctx)
                and subj.obj.up == 0
                and subj.name == ts
            ):
                tcheck = self.time_check(when)
            if tcheck is None:
                rest.append(when)
        return gkey, rest, tcheck

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

        generic = chain1 if len(steps) == 1 else chain
        if not isinstance(n.source, A.XEvent):
            return generic
        # Over xEvent: each step scans only the time-sorted events of its WHAT group, starting after
        # the previous step's match (bisect), with a constant WHEN applied to the parsed time.
        fast = []
        for st in n.steps:
            gkey, rest, tcheck = self._step(st, ts)
            irest = self.item_cond(rest, None)
            # A step reading only the event (and now) matches the same event in every chain that
            # has it: its result is memoised on the shared index (50 chains starting with the same
            # step A match A once per evaluation).
            step_id = None
            if not rest or irest is not None:
                spec = (ts, gkey, tuple(rest), st.when if tcheck is not None else None, st.count or 1)
                step_id = _STEP_IDS.setdefault(spec, next(_STEP_COUNTER))
            fast.append((step_id, gkey, self._all(rest), irest, tcheck, st.count or 1))

        def chain_indexed(s: Scope) -> bool:
            ix = index_of(s)
            if ix is None:
                return generic(s)
            prev: datetime | None = None
            se: Scope | None = None
            now = s.ctx.now
            memo = ix.steps
            for step_id, gkey, rest, irest, tcheck, count in fast:
                if step_id is not None:
                    mk = (step_id, prev, now)
                    hit = memo.get(mk, _UNSET)
                    if hit is not _UNSET:
                        if hit is None:
                            return False
                        prev = hit
                        continue
                times, evs = ix.timed(ts) if gkey is None else ix.timed(ts, *gkey)
                test = irest.bind(s) if irest is not None else None
                window = None
                i = 0 if prev is None else bisect_right(times, prev)
                if tcheck is not None:
                    window = tcheck(s)
                    if window is None:  # the window has no bounds: no event is in it
                        return False
                    i = window.first(times, i)
                hits = 0
                found = None
                for j in range(i, len(times)):
                    t = times[j]
                    if window is not None and not window.check(t):
                        if window.beyond(t):
                            break
                        continue
                    if test is not None:
                        if not test(evs[j]):
                            continue
                    elif rest is not None:
                        if se is None:
                            se = s.push(None)
                        se.cur = evs[j]
                        if not rest(se):
                            continue
                    hits += 1
                    if hits == count:
                        found = t
                        break
                if step_id is not None:
                    memo[(step_id, prev, now)] = found
                if found is None:
                    return False
                prev = found
            return True

        return chain_indexed


def event_types(node: A.Node) -> frozenset[str] | None:
    """The event types an expression reads: the empty set when it reads no events, ``None`` when
    it may read any event. An event whose ``eventType`` is not in the set cannot change the result
    (every ``xEvent`` is filtered by ``eventType = "..."`` before anything else reads it)."""
    found: set[str] = set()

    def key(k: tuple[str, str] | None) -> bool:
        if k is None or k[0] != "eventType":
            return False
        found.add(k[1])
        return True

    def visit(n: A.Node) -> bool:
        """False when ``n`` reads events other than through an eventType group."""
        if isinstance(n, A.XEvent):
            return False
        if isinstance(n, A.Filter) and isinstance(n.arr, A.XEvent):
            if not key(_split_group(n.cond, None)[0]):
                return False
            return visit(n.cond)
        if isinstance(n, (A.Quant, A.Agg)):
            for d in n.decls:
                if isinstance(d.source, A.XEvent):
                    if (isinstance(n, A.Quant) and n.kind == "forall") or not key(
                        _split_group(d.cond, d.var)[0]
                    ):
                        return False
                elif not visit(d.source):
                    return False
                if d.cond is not None and not visit(d.cond):
                    return False
            return not isinstance(n, A.Agg) or visit(n.expr)
        if isinstance(n, A.Chain) and isinstance(n.source, A.XEvent):
            for st in n.steps:
                if not key(_split_group(st.what, None)[0]):
                    return False
                if not all(visit(x) for x in (st.what, st.where, st.when) if x is not None):
                    return False
            return True
        return all(visit(c) for c in A.children(n))

    return frozenset(found) if visit(node) else None


def _is_constant(n: A.Node) -> bool:
    return not any(isinstance(x, (A.Field, A.Var, A.XEvent, A.Ctx, A.Param)) for x in A.walk(n))


def compile_node(node: A.Node, boolean: bool) -> Predicate:
    """Compile an AST to ``fn(profile, events, ctx)``; ``boolean`` coerces the result (segments)."""
    comp = _Compiler()
    body = comp.compile(node)
    test = comp.cond(node) if boolean else body

    def run(profile: dict[str, Any], events: list[dict[str, Any]], ctx: EvalContext) -> Any:
        return body(Scope(profile, events, ctx, (), profile, {}))

    def run_bool(profile: dict[str, Any], events: list[dict[str, Any]], ctx: EvalContext) -> bool:
        return bool(test(Scope(profile, events, ctx, (), profile, {})))

    return run_bool if boolean else run
