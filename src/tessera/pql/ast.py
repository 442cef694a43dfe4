"""Immutable typed AST for PQL: one tree shared by the text/JSON front ends and both back ends.

Every node is a frozen dataclass; ``pos`` (character offset in the source, -1 when unknown) is
excluded from equality so trees parsed from text and from JSON compare equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Lit:
    """A string, number, boolean or null literal."""

    value: Scalar
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class ListLit:
    """``[a, b, c]``."""

    items: tuple[Node, ...]
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class ObjLit:
    """``{"k": expr, ...}`` (computed-attribute map values)."""

    items: tuple[tuple[str, Node], ...]
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class Ctx:
    """The implicit context: ``up=0`` is the current item (the profile at top level); ``^`` is 1."""

    up: int = 0
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class Param:
    """``$1`` (the profile); other positions are reserved."""

    position: int
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class XEvent:
    """``xEvent``: the profile's ExperienceEvents."""

    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class Var:
    """A variable bound by select/exists/forall, a lambda or ``let``."""

    name: str
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class Field:
    """``obj.name``; over an array it projects the field of every item (flattened, nulls dropped)."""

    obj: Node
    name: str
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class Unary:
    """``not``/``!`` (op ``"not"``) or numeric negation (op ``"-"``)."""

    op: str
    arg: Node
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class Binary:
    """Infix operators: and or = != < <= > >= + - * / % in notIn like matches."""

    op: str
    left: Node
    right: Node
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class Call:
    """A built-in function; ``method`` records the ``recv.f(...)`` spelling (``args[0]`` is recv)."""

    name: str
    args: tuple[Node, ...]
    method: bool = False
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class Filter:
    """``arr[cond]``: items of ``arr`` for which ``cond`` (evaluated on the item) holds."""

    arr: Node
    cond: Node
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class Lambda:
    """``(A, B) => body``."""

    params: tuple[str, ...]
    body: Node
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class Let:
    """``let name = value in body``."""

    name: str
    value: Node
    body: Node
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class Decl:
    """``V from source [where cond]`` inside select/exists/forall/aggregations."""

    var: str
    source: Node
    cond: Node | None
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class Quant:
    """``select``/``exists``/``forall`` over one or more declarations."""

    kind: str
    decls: tuple[Decl, ...]
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class Agg:
    """Legacy ``sum|average|min|max expr over V from ... where ...``."""

    fn: str
    expr: Node
    decls: tuple[Decl, ...]
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class TimeLit:
    """``now``, ``today``, ``yesterday``, ``tomorrow``."""

    kind: str
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class Period:
    """``this|last|next <unit>``: a whole calendar period."""

    rel: str
    unit: str
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class Occurs:
    """``subject occurs ...``.

    kind: ``on`` (target is a period/day/point), ``before``, ``after``, ``between`` (target..target2,
    inclusive), ``offset`` (``cmp amount unit direction target``, e.g. ``< 3 days before now``).
    """

    subject: Node
    kind: str
    target: Node
    target2: Node | None = None
    cmp: str | None = None
    amount: Node | None = None
    unit: str | None = None
    direction: str | None = None
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class Step:
    """One ``LABEL: WHAT(..) [WHERE(..)] [WHEN(..)] [COUNT(n)]`` step of a chain."""

    label: str
    what: Node
    where: Node | None
    when: Occurs | None
    count: int | None
    pos: int = field(default=-1, compare=False)


@dataclass(frozen=True, slots=True)
class Chain:
    """``chain(source, tsField, [steps])``: steps matched in strict timestamp order."""

    source: Node
    ts: str
    steps: tuple[Step, ...]
    pos: int = field(default=-1, compare=False)


Node = (
    Lit
    | ListLit
    | ObjLit
    | Ctx
    | Param
    | XEvent
    | Var
    | Field
    | Unary
    | Binary
    | Call
    | Filter
    | Lambda
    | Let
    | Quant
    | Agg
    | TimeLit
    | Period
    | Occurs
    | Chain
)

TIME_UNITS: dict[str, str] = {
    **{u: u for u in ("millisecond", "second", "minute", "hour", "day", "week", "month", "year", "decade")},
    **{
        u + "s": u
        for u in ("millisecond", "second", "minute", "hour", "day", "week", "month", "year", "decade")
    },
    "century": "century",
    "centuries": "century",
    "millennium": "millennium",
    "millennia": "millennium",
    "millenium": "millennium",
}
"""Accepted unit spellings (case-insensitive) → canonical singular."""


def children(node: Node) -> tuple[Node, ...]:
    """Direct child nodes, for generic walks (eligibility, checks)."""
    out: list[Node] = []
    if isinstance(node, ListLit):
        out.extend(node.items)
    elif isinstance(node, ObjLit):
        out.extend(v for _, v in node.items)
    elif isinstance(node, Field):
        out.append(node.obj)
    elif isinstance(node, Unary):
        out.append(node.arg)
    elif isinstance(node, Binary):
        out += [node.left, node.right]
    elif isinstance(node, Call):
        out.extend(node.args)
    elif isinstance(node, Filter):
        out += [node.arr, node.cond]
    elif isinstance(node, Lambda):
        out.append(node.body)
    elif isinstance(node, Let):
        out += [node.value, node.body]
    elif isinstance(node, (Quant, Agg)):
        if isinstance(node, Agg):
            out.append(node.expr)
        for d in node.decls:
            out.append(d.source)
            if d.cond is not None:
                out.append(d.cond)
    elif isinstance(node, Occurs):
        out += [node.subject, node.target]
        out += [n for n in (node.target2, node.amount) if n is not None]
    elif isinstance(node, Chain):
        out.append(node.source)
        for s in node.steps:
            out.append(s.what)
            out += [n for n in (s.where, s.when) if n is not None]
    return tuple(out)


def walk(node: Node) -> list[Node]:
    """All nodes of the tree, pre-order."""
    acc = [node]
    for c in children(node):
        acc.extend(walk(c))
    return acc
