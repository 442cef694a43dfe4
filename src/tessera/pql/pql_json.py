"""``pql/json`` (spec §7) ⇄ AST.

Output uses the node types seen in Adobe's conversion samples: ``fnApply`` (operators and functions,
with ``fnName`` and ``params``), ``fieldLookup`` (``fieldName``, ``object``), ``literal``
(``literalType``, ``value``), ``parameterReference`` (``position``), ``varRef`` (``varName``) and
``fnCreate`` (lambdas). Constructs Adobe never showed in JSON (select/exists/forall, occurs, chain,
let, filters, relative times, ``^``) are encoded as ``fnApply`` of reserved names (``"select"``,
``"occurs"``, ``"chain"``, ...) whose parameters are nodes or ``literal``s, so every AST round-trips.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tessera.errors import PqlError
from tessera.pql import ast as A
from tessera.pql.functions import canonical_name


def _lit(v: Any) -> dict[str, Any]:
    kind = (
        "null"
        if v is None
        else "boolean"
        if isinstance(v, bool)
        else "integer"
        if isinstance(v, int)
        else "double"
        if isinstance(v, float)
        else "String"
    )
    return {"nodeType": "literal", "literalType": kind, "value": v}


def _app(name: str, *params: Any) -> dict[str, Any]:
    return {"nodeType": "fnApply", "fnName": name, "params": list(params)}


def _decls(decls: tuple[A.Decl, ...]) -> list[dict[str, Any]]:
    return [
        {
            "nodeType": "varDecl",
            "varName": d.var,
            "range": to_json(d.source),
            **({"where": to_json(d.cond)} if d.cond is not None else {}),
        }
        for d in decls
    ]


def to_json(node: A.Node) -> dict[str, Any]:
    """AST → pql/json document (a dict).

    >>> to_json(A.Binary("=", A.Field(A.Ctx(), "a"), A.Lit("US")))["fnName"]
    '='
    """
    if isinstance(node, A.Lit):
        return _lit(node.value)
    if isinstance(node, A.ListLit):
        return _app("[]", *[to_json(i) for i in node.items])
    if isinstance(node, A.ObjLit):
        return _app("{}", *[x for k, v in node.items for x in (_lit(k), to_json(v))])
    if isinstance(node, A.Ctx):
        if node.up == 0:
            return {"nodeType": "parameterReference", "position": 1}
        return _app("^", _lit(node.up))
    if isinstance(node, A.Param):
        return {"nodeType": "parameterReference", "position": node.position, "explicit": True}
    if isinstance(node, A.XEvent):
        return {"nodeType": "varRef", "varName": "xEvent"}
    if isinstance(node, A.Var):
        return {"nodeType": "varRef", "varName": node.name}
    if isinstance(node, A.Field):
        return {"nodeType": "fieldLookup", "fieldName": node.name, "object": to_json(node.obj)}
    if isinstance(node, A.Unary):
        return _app("not" if node.op == "not" else "neg", to_json(node.arg))
    if isinstance(node, A.Binary):
        return _app(node.op, to_json(node.left), to_json(node.right))
    if isinstance(node, A.Call):
        out = _app(node.name, *[to_json(a) for a in node.args])
        out["method"] = node.method  # also tells a matches() call from the infix operator
        return out
    if isinstance(node, A.Filter):
        return _app("[filter]", to_json(node.arr), to_json(node.cond))
    if isinstance(node, A.Lambda):
        return {
            "nodeType": "fnCreate",
            "params": [{"varName": p} for p in node.params],
            "body": to_json(node.body),
        }
    if isinstance(node, A.Let):
        return _app("let", _lit(node.name), to_json(node.value), to_json(node.body))
    if isinstance(node, A.Quant):
        return _app(node.kind, *_decls(node.decls))
    if isinstance(node, A.Agg):
        return _app("over", _lit(node.fn), to_json(node.expr), *_decls(node.decls))
    if isinstance(node, A.TimeLit):
        return _app("time", _lit(node.kind))
    if isinstance(node, A.Period):
        return _app("period", _lit(node.rel), _lit(node.unit))
    if isinstance(node, A.Occurs):

        def opt(x: A.Node | None) -> dict[str, Any]:
            return to_json(x) if x is not None else _lit(None)

        return _app(
            "occurs",
            to_json(node.subject),
            _lit(node.kind),
            to_json(node.target),
            opt(node.target2),
            _lit(node.cmp),
            opt(node.amount),
            _lit(node.unit),
            _lit(node.direction),
        )
    if isinstance(node, A.Chain):
        steps = [
            {
                "nodeType": "chainStep",
                "label": s.label,
                "what": to_json(s.what),
                "where": to_json(s.where) if s.where is not None else None,
                "when": to_json(s.when) if s.when is not None else None,
                "count": s.count,
            }
            for s in node.steps
        ]
        return _app("chain", to_json(node.source), _lit(node.ts), *steps)
    raise TypeError(node)


def _bad(doc: Any, why: str) -> PqlError:
    text = repr(doc)
    return PqlError(f"Invalid pql/json: {why} (in {text[:80]}{'…' if len(text) > 80 else ''}).")


def _lit_value(d: Any) -> Any:
    if not isinstance(d, dict) or d.get("nodeType") != "literal":
        raise _bad(d, "expected a literal")
    return d.get("value")


def _str(d: Any) -> str:
    v = _lit_value(d)
    if not isinstance(v, str):
        raise _bad(d, "expected a string literal")
    return v


def from_json(doc: Any, _depth: int = 0) -> A.Node:
    """pql/json (dict) → AST. Raises PqlError on anything malformed."""
    if _depth > 200:
        raise PqlError("Invalid pql/json: nested too deeply.")

    def rec(d: Any) -> A.Node:
        return from_json(d, _depth + 1)

    if not isinstance(doc, dict):
        raise _bad(doc, "expected an object with a nodeType")
    nt = doc.get("nodeType")
    if nt == "literal":
        v = doc.get("value")
        lt = str(doc.get("literalType", "")).lower()
        if lt == "xdmobject":
            return A.Ctx(0)
        if lt == "integer" and isinstance(v, str):
            try:
                return A.Lit(int(v))
            except ValueError:
                raise _bad(doc, "integer literal is not a number") from None
        if lt in ("double", "number") and isinstance(v, str):
            try:
                return A.Lit(float(v))
            except ValueError:
                raise _bad(doc, "number literal is not a number") from None
        if v is not None and not isinstance(v, (str, int, float, bool)):
            raise _bad(doc, "literal values must be scalars")
        if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
            raise _bad(doc, "literal number is not finite")
        return A.Lit(v)
    if nt == "parameterReference":
        pos = doc.get("position", 1)
        if not isinstance(pos, int) or isinstance(pos, bool):
            raise _bad(doc, "position must be an integer")
        return A.Param(pos) if doc.get("explicit") else A.Ctx(0) if pos == 1 else A.Param(pos)
    if nt == "varRef":
        name = doc.get("varName")
        if not isinstance(name, str) or not name:
            raise _bad(doc, "varRef needs a varName")
        return A.XEvent() if name == "xEvent" else A.Var(name)
    if nt == "fieldLookup":
        name = doc.get("fieldName")
        if not isinstance(name, str) or not name:
            raise _bad(doc, "fieldLookup needs a fieldName")
        return A.Field(rec(doc.get("object")), name)
    if nt == "fnCreate":
        params = doc.get("params")
        if not isinstance(params, list) or not all(
            isinstance(p, dict) and isinstance(p.get("varName"), str) for p in params
        ):
            raise _bad(doc, "fnCreate needs params with varName")
        return A.Lambda(tuple(p["varName"] for p in params), rec(doc.get("body")))
    if nt != "fnApply":
        raise _bad(doc, f"unknown nodeType {nt!r}")
    name = doc.get("fnName")
    params = doc.get("params", [])
    if not isinstance(name, str) or not isinstance(params, list):
        raise _bad(doc, "fnApply needs fnName and params")
    try:
        return _apply(name, params, doc, rec)
    except (IndexError, TypeError, AssertionError):
        raise _bad(doc, f"wrong parameters for {name!r}") from None


def _decls_in(ps: list[Any], rec: Callable[[Any], A.Node]) -> tuple[A.Decl, ...]:
    out = []
    for d in ps:
        if not isinstance(d, dict) or d.get("nodeType") != "varDecl" or not isinstance(d.get("varName"), str):
            raise _bad(d, "expected a varDecl")
        cond = rec(d["where"]) if d.get("where") is not None else None
        out.append(A.Decl(d["varName"], rec(d.get("range")), cond))
    if not out:
        raise _bad(ps, "at least one variable is needed")
    return tuple(out)


def _apply(name: str, ps: list[Any], doc: Any, rec: Callable[[Any], A.Node]) -> A.Node:
    from tessera.pql.parser import BINARY_PRECEDENCE, CANONICAL_OP

    ops = {CANONICAL_OP.get(k, k) for k in BINARY_PRECEDENCE}
    if name in ops and "method" not in doc:
        if len(ps) != 2:
            raise _bad(doc, f"{name!r} takes two params")
        return A.Binary(name, rec(ps[0]), rec(ps[1]))
    if name in ("not", "neg"):
        return A.Unary("not" if name == "not" else "-", rec(ps[0]))
    if name == "[]":
        return A.ListLit(tuple(rec(p) for p in ps))
    if name == "{}":
        return A.ObjLit(tuple((_str(ps[i]), rec(ps[i + 1])) for i in range(0, len(ps), 2)))
    if name == "^":
        up = _lit_value(ps[0])
        assert isinstance(up, int) and up > 0
        return A.Ctx(up)
    if name == "[filter]":
        return A.Filter(rec(ps[0]), rec(ps[1]))
    if name == "let":
        return A.Let(_str(ps[0]), rec(ps[1]), rec(ps[2]))
    if name in ("select", "exists", "forall") and "method" not in doc:
        return A.Quant(name, _decls_in(ps, rec))
    if name == "over":
        fn = _str(ps[0])
        assert fn in ("sum", "average", "min", "max")
        return A.Agg(fn, rec(ps[1]), _decls_in(ps[2:], rec))
    if name == "time":
        kind = _str(ps[0])
        assert kind in ("now", "today", "yesterday", "tomorrow")
        return A.TimeLit(kind)
    if name == "period":
        rel, unit = _str(ps[0]), _str(ps[1])
        assert rel in ("this", "last", "next") and unit in A.TIME_UNITS.values()
        return A.Period(rel, unit)
    if name == "occurs":

        def opt(d: Any) -> A.Node | None:
            return None if _is_null(d) else rec(d)

        kind = _str(ps[1])
        assert kind in ("on", "before", "after", "between", "offset")
        assert _lit_value(ps[4]) in (None, "<", "<=", "=", ">", ">=")
        assert _lit_value(ps[6]) in (None, *A.TIME_UNITS.values())
        assert _lit_value(ps[7]) in (None, "before", "after")
        assert (kind == "offset") == (
            _lit_value(ps[4]) is not None and not _is_null(ps[5]) and _lit_value(ps[6]) is not None
        )
        assert (kind == "between") == (not _is_null(ps[3]))
        return A.Occurs(
            rec(ps[0]),
            kind,
            rec(ps[2]),
            opt(ps[3]),
            _lit_value(ps[4]),
            opt(ps[5]),
            _lit_value(ps[6]),
            _lit_value(ps[7]),
        )
    if name == "chain":
        steps = []
        for s in ps[2:]:
            assert isinstance(s, dict) and s.get("nodeType") == "chainStep"
            when = rec(s["when"]) if s.get("when") is not None else None
            assert when is None or isinstance(when, A.Occurs)
            count = s.get("count")
            assert count is None or (isinstance(count, int) and count >= 1)
            steps.append(
                A.Step(
                    str(s["label"]),
                    rec(s["what"]),
                    rec(s["where"]) if s.get("where") is not None else None,
                    when,
                    count,
                )
            )
        assert 1 <= len(steps) <= 6
        return A.Chain(rec(ps[0]), _str(ps[1]), tuple(steps))
    canon = canonical_name(name)
    if canon is None:
        raise PqlError(f"Invalid pql/json: unknown function {name!r}.")
    return A.Call(canon, tuple(rec(p) for p in ps), method=bool(doc.get("method")))


def _is_null(d: Any) -> bool:
    return isinstance(d, dict) and d.get("nodeType") == "literal" and d.get("value") is None
