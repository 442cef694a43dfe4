"""pql/text → AST (tokens and precedence tables are data) and AST → pql/text.

Grammar (lowest to highest binding): ``or`` < ``and`` < prefix ``not``/``!`` < comparisons, ``in``,
``notIn``, ``like``, ``matches``, ``occurs`` < ``+ -`` < ``* / %`` < unary ``-`` < postfix
(``.field``, ``.method(...)``, ``[filter]``). Keywords and function names are case-insensitive;
field names are case-sensitive.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from tessera.errors import PqlError
from tessera.pql import ast as A
from tessera.pql.functions import canonical_name
from tessera.pql.limits import LIMITS

TOKEN_SPEC: tuple[tuple[str, str], ...] = (
    ("WS", r"\s+"),
    ("NUM", r"(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?"),
    ("STR", r'"(?:[^"\\]|\\.)*"'),
    ("PARAM", r"\$\d+"),
    ("IDENT", r"[A-Za-z_@][A-Za-z0-9_]*"),
    ("OP", r"=>|<=|>=|!=|==|[=<>!+\-*/%(),.\[\]:^{}]"),
)
_TOKEN_RE = re.compile("|".join(f"(?P<{n}>{p})" for n, p in TOKEN_SPEC))

BINARY_PRECEDENCE: dict[str, int] = {
    "or": 1,
    "and": 2,
    "=": 4,
    "!=": 4,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "in": 4,
    "notin": 4,
    "like": 4,
    "matches": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "%": 6,
}
"""Binding power of infix operators (``occurs`` sits at the comparison level, 4)."""
NOT_PRECEDENCE = 3
COMPARISON = 4
CANONICAL_OP = {"notin": "notIn", "==": "="}
KEYWORDS = frozenset(
    [
        "and",
        "or",
        "not",
        "in",
        "notin",
        "like",
        "matches",
        "occurs",
        "select",
        "exists",
        "forall",
        "from",
        "where",
        "over",
        "let",
        "true",
        "false",
        "null",
        "now",
        "today",
        "yesterday",
        "tomorrow",
        "this",
        "last",
        "next",
        "on",
        "before",
        "after",
        "between",
        "chain",
    ]
)
TIME_WORDS = ("now", "today", "yesterday", "tomorrow")
AGG_WORDS = ("sum", "average", "min", "max")


@dataclass(frozen=True, slots=True)
class Tok:
    kind: str
    text: str
    pos: int

    @property
    def low(self) -> str:
        return self.text.lower()


def snippet(src: str, pos: int) -> tuple[int, int, str]:
    """(line, column, two-line caret snippet) for a character offset."""
    pos = max(0, min(pos, len(src)))
    line = src.count("\n", 0, pos) + 1
    start = src.rfind("\n", 0, pos) + 1
    end = src.find("\n", pos)
    text = src[start : end if end >= 0 else len(src)]
    col = pos - start + 1
    return line, col, f"{text}\n{' ' * (col - 1)}^"


def error(src: str, pos: int, message: str) -> PqlError:
    """A PqlError located at ``pos`` of ``src``."""
    line, col, snip = snippet(src, pos)
    return PqlError(message, line=line, column=col, snippet=snip)


def tokenize(src: str) -> list[Tok]:
    """Split PQL text into tokens; raises PqlError on a character that starts no token."""
    toks: list[Tok] = []
    i = 0
    while i < len(src):
        m = _TOKEN_RE.match(src, i)
        if m is None:
            if src[i] == '"':
                raise error(src, i, "This text is missing its closing double quote.")
            raise error(src, i, f"Unexpected character {src[i]!r}.")
        kind = m.lastgroup or ""
        if kind != "WS":
            toks.append(Tok(kind, m.group(), i))
        i = m.end()
    toks.append(Tok("EOF", "", len(src)))
    return toks


def _unescape(src: str, tok: Tok) -> str:
    try:
        value = json.loads(tok.text)
    except ValueError:
        raise error(src, tok.pos, "This string has an invalid backslash escape.") from None
    assert isinstance(value, str)
    return value


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.toks = tokenize(src)
        self.i = 0
        self.depth = 0

    # -- token helpers -------------------------------------------------------------------------
    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> Tok:
        t = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return t

    def at(self, text: str) -> bool:
        t = self.tok
        if t.kind == "OP":
            return t.text == text
        return t.kind == "IDENT" and t.low == text

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.next()
            return True
        return False

    def expect(self, text: str, what: str | None = None) -> Tok:
        if not self.at(text):
            found = "the end of the expression" if self.tok.kind == "EOF" else f"{self.tok.text!r}"
            raise self.err(f"Expected {what or repr(text)} but found {found}.")
        return self.next()

    def err(self, message: str, pos: int | None = None) -> PqlError:
        return error(self.src, self.tok.pos if pos is None else pos, message)

    def ident(self, what: str = "a name") -> Tok:
        if self.tok.kind != "IDENT":
            raise self.err(f"Expected {what} here.")
        return self.next()

    # -- grammar -------------------------------------------------------------------------------
    def parse(self) -> A.Node:
        if self.tok.kind == "EOF":
            raise self.err("The expression is empty.")
        node = self.expr(0)
        if self.tok.kind != "EOF":
            raise self.err(f"Unexpected {self.tok.text!r}: is an operator or a comma missing before it?")
        return node

    def expr(self, min_prec: int) -> A.Node:
        self.depth += 1
        if self.depth > LIMITS.max_depth:
            raise self.err(f"The expression is nested more than {LIMITS.max_depth} levels deep.")
        try:
            return self._expr(min_prec)
        finally:
            self.depth -= 1

    def _expr(self, min_prec: int) -> A.Node:
        t = self.tok
        if (t.kind == "IDENT" and t.low == "not" and self.peek().text != ".") or (
            t.text == "!" and t.kind == "OP"
        ):
            if min_prec > NOT_PRECEDENCE:
                left: A.Node = self.unary()
            else:
                self.next()
                left = A.Unary("not", self.expr(NOT_PRECEDENCE), pos=t.pos)
        else:
            left = self.unary()
        while True:
            t = self.tok
            op = t.text if t.kind == "OP" else (t.low if t.kind == "IDENT" else "")
            if op == "occurs" and min_prec <= COMPARISON:
                self.next()
                left = self.occurs_tail(left, t.pos)
                continue
            prec = BINARY_PRECEDENCE.get(op)
            if prec is None or prec < min_prec or (t.kind == "OP" and op in ("and", "or")):
                return left
            self.next()
            right = self.expr(prec + 1)
            left = A.Binary(CANONICAL_OP.get(op, op), left, right, pos=t.pos)

    def unary(self) -> A.Node:
        t = self.tok
        if t.kind == "OP" and t.text == "-":
            self.next()
            arg = self.unary()
            if (
                isinstance(arg, A.Lit)
                and isinstance(arg.value, (int, float))
                and not isinstance(arg.value, bool)
            ):
                return A.Lit(-arg.value, pos=t.pos)
            return A.Unary("-", arg, pos=t.pos)
        return self.postfix(self.primary())

    def postfix(self, node: A.Node) -> A.Node:
        while True:
            t = self.tok
            if t.kind == "OP" and t.text == ".":
                self.next()
                name = self.ident("a field or function name after '.'")
                if self.at("("):
                    args = self.call_args()
                    node = self.make_call(name, (node, *args), method=True)
                else:
                    node = A.Field(node, name.text, pos=name.pos)
            elif t.kind == "OP" and t.text == "[":
                self.next()
                cond = self.expr(0)
                self.expect("]", "']' to close the filter")
                node = A.Filter(node, cond, pos=t.pos)
            else:
                return node

    def call_args(self) -> list[A.Node]:
        self.expect("(")
        args: list[A.Node] = []
        if not self.accept(")"):
            while True:
                args.append(self.expr(0))
                if self.accept(")"):
                    break
                self.expect(",", "',' or ')'")
        return args

    def make_call(self, name: Tok, args: tuple[A.Node, ...], method: bool) -> A.Node:
        canon = canonical_name(name.text)
        if canon is None:
            from tessera.pql.functions import suggest_function

            hint = suggest_function(name.text)
            raise self.err(
                f"Unknown function {name.text!r}." + (f" Did you mean {hint!r}?" if hint else ""), name.pos
            )
        return A.Call(canon, args, method=method, pos=name.pos)

    def primary(self) -> A.Node:
        t = self.tok
        if t.kind == "NUM":
            self.next()
            is_int = re.fullmatch(r"\d+", t.text) is not None
            return A.Lit(int(t.text) if is_int else float(t.text), pos=t.pos)
        if t.kind == "STR":
            self.next()
            return A.Lit(_unescape(self.src, t), pos=t.pos)
        if t.kind == "PARAM":
            self.next()
            return A.Param(int(t.text[1:]), pos=t.pos)
        if t.kind == "OP":
            if t.text == "(":
                lam = self.try_lambda()
                if lam is not None:
                    return lam
                self.next()
                inner = self.expr(0)
                self.expect(")", "')' to close the parenthesis")
                return inner
            if t.text == "[":
                self.next()
                items: list[A.Node] = []
                if not self.accept("]"):
                    while True:
                        items.append(self.expr(0))
                        if self.accept("]"):
                            break
                        self.expect(",", "',' or ']'")
                return A.ListLit(tuple(items), pos=t.pos)
            if t.text == "{":
                return self.object_literal()
            if t.text == "^":
                up = 0
                while self.accept("^"):
                    up += 1
                if not self.at("."):
                    raise self.err("'^' must be followed by '.field'.")
                return A.Ctx(up, pos=t.pos)
            raise self.err(f"Unexpected {t.text!r}." if t.kind != "EOF" else "The expression ends too early.")
        if t.kind == "EOF":
            raise self.err("The expression ends too early.")
        low = t.low
        nxt = self.peek()
        if low in ("true", "false"):
            self.next()
            return A.Lit(low == "true", pos=t.pos)
        if low == "null":
            self.next()
            return A.Lit(None, pos=t.pos)
        if low in TIME_WORDS:
            self.next()
            return A.TimeLit(low, pos=t.pos)
        if low in ("this", "last", "next") and nxt.kind == "IDENT" and nxt.low in A.TIME_UNITS:
            self.next()
            self.next()
            return A.Period(low, A.TIME_UNITS[nxt.low], pos=t.pos)
        if low in ("select", "exists", "forall"):
            self.next()
            return A.Quant(low, self.decls(allow_colon=low != "select"), pos=t.pos)
        if low in AGG_WORDS and not (nxt.kind == "OP" and nxt.text in ("(", ".")):
            return self.legacy_agg()
        if low == "let":
            self.next()
            name = self.ident("a variable name after 'let'")
            self.expect("=")
            value = self.postfix(self.primary())
            self.expect("in", "'in' after the let value")
            self.bind(name.text)
            body = self.expr(0)
            self.unbind(1)
            return A.Let(name.text, value, body, pos=t.pos)
        if low == "chain" and nxt.text == "(":
            return self.chain()
        if t.text == "xEvent":
            self.next()
            return A.XEvent(pos=t.pos)
        if nxt.kind == "OP" and nxt.text == "(":
            self.next()
            return self.make_call(t, tuple(self.call_args()), method=False)
        if low in KEYWORDS:
            raise self.err(f"{t.text!r} is a reserved word and cannot be used here.")
        self.next()
        if self.is_var(t.text):
            return A.Var(t.text, pos=t.pos)
        return A.Field(A.Ctx(0, pos=t.pos), t.text, pos=t.pos)

    bound: list[str]

    def is_var(self, name: str) -> bool:
        return name in getattr(self, "bound", [])

    def bind(self, *names: str) -> None:
        if not hasattr(self, "bound"):
            self.bound = []
        self.bound.extend(names)

    def unbind(self, n: int) -> None:
        del self.bound[len(self.bound) - n :]

    def try_lambda(self) -> A.Node | None:
        j = self.i + 1
        names: list[str] = []
        while self.toks[j].kind == "IDENT":
            names.append(self.toks[j].text)
            j += 1
            if self.toks[j].text == ",":
                j += 1
            else:
                break
        if not (names and self.toks[j].text == ")" and self.toks[j + 1].text == "=>"):
            return None
        pos = self.tok.pos
        self.i = j + 2
        self.bind(*names)
        body = self.expr(0)
        self.unbind(len(names))
        if len(names) == 1 and self.i == len(self.toks) - 1 and False:
            pass
        return A.Lambda(tuple(names), body, pos=pos)

    def object_literal(self) -> A.Node:
        start = self.expect("{")
        items: list[tuple[str, A.Node]] = []
        if not self.accept("}"):
            while True:
                key = self.tok
                if key.kind != "STR":
                    raise self.err("Object keys must be double-quoted strings.")
                self.next()
                self.expect(":")
                items.append((_unescape(self.src, key), self.expr(0)))
                if self.accept("}"):
                    break
                self.expect(",", "',' or '}'")
        return A.ObjLit(tuple(items), pos=start.pos)

    def decls(self, allow_colon: bool) -> tuple[A.Decl, ...]:
        out: list[A.Decl] = []
        bound = 0
        while True:
            var = self.ident("a variable name")
            self.expect("from", "'from'")
            source = self.postfix(self.primary())
            self.bind(var.text)
            bound += 1
            cond: A.Node | None = None
            if self.accept("where") or (allow_colon and self.accept(":")):
                cond = self.expr(0)
            out.append(A.Decl(var.text, source, cond, pos=var.pos))
            if self.at(",") and self.peek().kind == "IDENT" and self.peek(2).low == "from":
                self.next()
                continue
            break
        self.unbind(bound)
        return tuple(out)

    def legacy_agg(self) -> A.Node:
        t = self.next()
        if self.tok.kind == "IDENT" and self.peek().low == "from":
            decls = self.decls(allow_colon=False)
            return A.Agg(t.low, A.Var(decls[0].var), decls, pos=t.pos)
        # The aggregated expression refers to variables declared after it: bind them by lookahead.
        names = [
            tk.text
            for k, tk in enumerate(self.toks[self.i :])
            if tk.kind == "IDENT" and self.toks[self.i + k + 1].low == "from"
        ]
        self.bind(*names)
        expr = self.expr(5)
        self.unbind(len(names))
        self.expect("over", "'over' after the aggregated expression")
        return A.Agg(t.low, expr, self.decls(allow_colon=False), pos=t.pos)

    def occurs_tail(self, subject: A.Node, pos: int) -> A.Occurs:
        t = self.tok
        low = t.low if t.kind == "IDENT" else t.text
        if low == "on":
            self.next()
            return A.Occurs(subject, "on", self.time_operand(), pos=pos)
        if low in ("before", "after"):
            self.next()
            return A.Occurs(subject, low, self.time_operand(), pos=pos)
        if low == "between":
            self.next()
            a = self.time_operand()
            self.expect("and", "'and' in 'between … and …'")
            b = self.time_operand()
            return A.Occurs(subject, "between", a, b, pos=pos)
        if t.kind == "OP" and low in ("<", "<=", "=", ">", ">="):
            self.next()
            amount = self.postfix(self.primary())
            unit = self.ident("a time unit such as 'days'")
            if unit.low not in A.TIME_UNITS:
                raise self.err(
                    f"{unit.text!r} is not a time unit (use e.g. hours, days, weeks, months).", unit.pos
                )
            direction = self.ident("'before' or 'after'")
            if direction.low not in ("before", "after"):
                raise self.err("Expected 'before' or 'after' after the time amount.", direction.pos)
            return A.Occurs(
                subject,
                "offset",
                self.time_operand(),
                cmp=low,
                amount=amount,
                unit=A.TIME_UNITS[unit.low],
                direction=direction.low,
                pos=pos,
            )
        return A.Occurs(subject, "on", self.time_operand(), pos=pos)

    def time_operand(self) -> A.Node:
        return self.expr(5)

    def chain(self) -> A.Node:
        t = self.next()
        self.expect("(")
        source = self.expr(0)
        self.expect(",", "',' after the chain's event array")
        ts = self.ident("the timestamp field name")
        self.expect(",", "',' after the timestamp field")
        self.expect("[", "'[' to start the list of chain steps")
        steps: list[A.Step] = []
        while True:
            label = self.ident("a step label such as 'A:'")
            self.expect(":", "':' after the step label")
            parts: dict[str, A.Node | int] = {}
            while self.tok.kind == "IDENT" and self.tok.low in ("what", "where", "when", "count"):
                kw = self.next().low
                if kw in parts:
                    raise self.err(f"{kw.upper()} appears twice in step {label.text}.")
                self.expect("(")
                if kw == "when":
                    parts[kw] = self.occurs_tail(A.Field(A.Ctx(0), ts.text), self.tok.pos)
                elif kw == "count":
                    n = self.tok
                    if n.kind != "NUM" or not n.text.isdigit() or int(n.text) < 1:
                        raise self.err("COUNT takes a whole number of at least 1.")
                    self.next()
                    parts[kw] = int(n.text)
                else:
                    parts[kw] = self.expr(0)
                self.expect(")", f"')' to close {kw.upper()}")
            if "what" not in parts:
                raise self.err(f"Step {label.text} needs WHAT(<event condition>).", label.pos)
            what, where, when, count = (
                parts["what"],
                parts.get("where"),
                parts.get("when"),
                parts.get("count"),
            )
            assert not isinstance(what, int) and not isinstance(where, int)
            assert when is None or isinstance(when, A.Occurs)
            assert count is None or isinstance(count, int)
            steps.append(A.Step(label.text, what, where, when, count, pos=label.pos))
            if self.accept("]"):
                break
            self.expect(",", "',' or ']' after a chain step")
        self.expect(")", "')' to close chain(")
        if len(steps) > 6:
            raise self.err("A chain can have at most 6 steps.", t.pos)
        return A.Chain(source, ts.text, tuple(steps), pos=t.pos)


def parse(text: str) -> A.Node:
    """Parse ``pql/text`` into an AST.

    Raises:
        PqlError: with line, column and a caret snippet when the text is not valid PQL.

    >>> parse('homeAddress.countryISO = "CA"')  # doctest: +ELLIPSIS
    Binary(op='=', left=Field(obj=Field(obj=Ctx(up=0, ...), name='homeAddress', ...), ...)
    """
    if not isinstance(text, str):
        raise PqlError("A PQL expression must be text.")
    if len(text) > LIMITS.max_length:
        raise PqlError(f"The expression is longer than {LIMITS.max_length} characters.")
    try:
        node = _Parser(text).parse()
    except RecursionError:
        raise PqlError("The expression is nested too deeply.") from None
    # a long chain of one operator nests without parser recursion; later walks recurse on it
    if ast_depth(node) > LIMITS.max_depth:
        raise PqlError(
            f"The expression is nested more than {LIMITS.max_depth} levels deep "
            "(a long chain of 'or' is better written as 'in [...]')."
        )
    return node


def ast_depth(node: A.Node) -> int:
    """How deeply ``node`` nests (iteratively, so a pathological tree cannot overflow the stack)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in A.children(current))
    return deepest


# ---------------------------------------------------------------------------------------------
# AST → text
PLURAL = {"century": "centuries", "millennium": "millennia"}
_PREC_OF_OP = {CANONICAL_OP.get(k, k): v for k, v in BINARY_PRECEDENCE.items()}


def _prec(node: A.Node) -> int:
    if isinstance(node, A.Binary):
        return _PREC_OF_OP[node.op]
    if isinstance(node, A.Occurs):
        return COMPARISON
    if isinstance(node, A.Unary):
        return NOT_PRECEDENCE if node.op == "not" else 7
    if isinstance(node, (A.Quant, A.Agg, A.Let, A.Lambda)):
        return 0
    if isinstance(node, A.Lit) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return 7 if node.value < 0 or str(node.value).startswith("-") else 9
    return 9


def _wrap(node: A.Node, min_prec: int) -> str:
    s = to_text(node)
    return f"({s})" if _prec(node) < min_prec else s


def _occurs_tail(o: A.Occurs) -> str:
    if o.kind == "on":
        return _wrap(o.target, 5)
    if o.kind in ("before", "after"):
        return f"{o.kind} {_wrap(o.target, 5)}"
    if o.kind == "between":
        assert o.target2 is not None
        return f"between {_wrap(o.target, 5)} and {_wrap(o.target2, 5)}"
    assert o.amount is not None
    return f"{o.cmp} {_wrap(o.amount, 9)} {PLURAL.get(o.unit or '', (o.unit or '') + 's')} {o.direction} {_wrap(o.target, 5)}"


def _decls(decls: tuple[A.Decl, ...]) -> str:
    parts = []
    for d in decls:
        s = f"{d.var} from {_wrap(d.source, 9)}"
        if d.cond is not None:
            s += f" where {_wrap(d.cond, 1) if len(decls) == 1 else '(' + to_text(d.cond) + ')'}"
        parts.append(s)
    return ", ".join(parts)


def to_text(node: A.Node) -> str:
    """Render an AST as canonical ``pql/text`` (parses back to an equal AST).

    >>> to_text(parse('a.b=1 AND not(c)'))
    'a.b = 1 and not c'
    """
    if isinstance(node, A.Lit):
        v = node.value
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, float):
            r = repr(v)
            if r in ("inf", "-inf", "nan"):
                raise PqlError("This number cannot be written in PQL.")
            return r
        return str(v)
    if isinstance(node, A.ListLit):
        return "[" + ", ".join(to_text(i) for i in node.items) + "]"
    if isinstance(node, A.ObjLit):
        return "{" + ", ".join(f"{json.dumps(k)}: {to_text(v)}" for k, v in node.items) + "}"
    if isinstance(node, A.Ctx):
        return "^" * node.up
    if isinstance(node, A.Param):
        return f"${node.position}"
    if isinstance(node, A.XEvent):
        return "xEvent"
    if isinstance(node, A.Var):
        return node.name
    if isinstance(node, A.Field):
        if isinstance(node.obj, A.Ctx) and node.obj.up == 0:
            return node.name
        return f"{_wrap(node.obj, 9)}.{node.name}"
    if isinstance(node, A.Unary):
        if node.op == "not":
            return f"not {_wrap(node.arg, NOT_PRECEDENCE + 1)}"
        return f"-{_wrap(node.arg, 9)}"
    if isinstance(node, A.Binary):
        p = _PREC_OF_OP[node.op]
        return f"{_wrap(node.left, p)} {node.op} {_wrap(node.right, p + 1)}"
    if isinstance(node, A.Call):
        if node.method and node.args:
            recv = node.args[0]
            return f"{_wrap(recv, 9)}.{node.name}(" + ", ".join(to_text(a) for a in node.args[1:]) + ")"
        return f"{node.name}(" + ", ".join(to_text(a) for a in node.args) + ")"
    if isinstance(node, A.Filter):
        return f"{_wrap(node.arr, 9)}[{to_text(node.cond)}]"
    if isinstance(node, A.Lambda):
        return f"({', '.join(node.params)}) => {to_text(node.body)}"
    if isinstance(node, A.Let):
        return f"let {node.name} = {_wrap(node.value, 9)} in {to_text(node.body)}"
    if isinstance(node, A.Quant):
        return f"{node.kind} {_decls(node.decls)}"
    if isinstance(node, A.Agg):
        if isinstance(node.expr, A.Var) and node.expr.name == node.decls[0].var:
            return f"{node.fn} {_decls(node.decls)}"
        return f"{node.fn} {_wrap(node.expr, 5)} over {_decls(node.decls)}"
    if isinstance(node, A.TimeLit):
        return node.kind
    if isinstance(node, A.Period):
        return f"{node.rel} {node.unit}"
    if isinstance(node, A.Occurs):
        return f"{_wrap(node.subject, 5)} occurs {_occurs_tail(node)}"
    if isinstance(node, A.Chain):
        steps = []
        for s in node.steps:
            st = f"{s.label}: WHAT({to_text(s.what)})"
            if s.where is not None:
                st += f" WHERE({to_text(s.where)})"
            if s.when is not None:
                st += f" WHEN({_occurs_tail(s.when)})"
            if s.count is not None:
                st += f" COUNT({s.count})"
            steps.append(st)
        return f"chain({to_text(node.source)}, {node.ts}, [{', '.join(steps)}])"
    raise TypeError(f"not a PQL node: {node!r}")
