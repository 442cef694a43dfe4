"""Record validation against a resolved (composed) XDM schema.

A schema is compiled once into generated Python source (one function per object, scalar checks
inline, every field path a constant), so validating a record costs roughly one call per object
present in it (the approach of fastjsonschema, written for XDM's resolved shape). Nothing here
raises on bad data: :meth:`RecordValidator.validate` returns a list of :class:`ValidationIssue` and the
caller decides (ingestion rejects the record, the API returns 400, ...).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tessera.errors import SchemaValidationError
from tessera.xdm.fields import Node, is_map
from tessera.xdm.paths import normalize_keys


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One way a record fails its schema.

    Attributes:
        path: field path, e.g. ``person.birthDate`` or ``productListItems[2].quantity``.
        expected: what the schema wants (``string (date)``, ``one of [...]``, ``required field``).
        got: what the record has (a type name and a short rendering of the value, or ``missing``).
    """

    path: str
    expected: str
    got: str

    @property
    def message(self) -> str:
        return f"{self.path or '(record)'}: expected {self.expected}, got {self.got}"

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "expected": self.expected, "got": self.got, "message": self.message}

    def to_error(self, record: str | int | None = None) -> SchemaValidationError:
        """This issue as an error (for callers that do want to raise), naming the record."""
        where = f"record {record}: " if record is not None else ""
        return SchemaValidationError(
            where + self.message, path=self.path or "(record)", expected=self.expected, got=self.got
        )


Check = Callable[..., None]
# Placeholder for the array index / map key in a compiled path; the innermost container on the
# error path fills in the right-most placeholder (errors are rare, so this costs nothing on valid data).
_HOLE = "\x00"

# Field ranges are in the patterns; only days 29-31 need a calendar check (fromisoformat).
_DATE = re.compile(r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])", re.ASCII)
_DATE_TIME = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])[Tt ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d+)?)?"
    r"(?:[Zz]|[+-](?:[01]\d|2[0-3]):?[0-5]\d)",
    re.ASCII,
)
_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)", re.ASCII
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _got(value: Any) -> str:
    if isinstance(value, dict | list):
        return _type_name(value)
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{_type_name(value)} {text}"


def _calendar_ok(text: str) -> bool:
    if text[8:10] <= "28":
        return True
    try:
        date.fromisoformat(text[:10])
    except ValueError:
        return False
    return True


def _is_date(value: Any) -> bool:
    if type(value) is str:
        return _DATE.fullmatch(value) is not None and _calendar_ok(value)
    return isinstance(value, date) and not isinstance(value, datetime)


def _is_date_time(value: Any) -> bool:
    if type(value) is str:
        return _DATE_TIME.fullmatch(value) is not None and _calendar_ok(value)
    return isinstance(value, datetime)


def _is_email(value: Any) -> bool:
    return isinstance(value, str) and _EMAIL.fullmatch(value) is not None


def _is_ip(kind: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        try:
            kind(value)
        except ValueError:
            return False
        return True

    return check


_FORMATS: dict[str, Callable[[Any], bool]] = {
    "date": _is_date,
    "date-time": _is_date_time,
    "email": _is_email,
    "ipv4": lambda v: type(v) is str and _IPV4.fullmatch(v) is not None,
    "ipv6": _is_ip(ipaddress.IPv6Address),
}
# Formats whose values may arrive as Python objects (Parquet columns, pre-parsed JSON).
_OBJECT_FORMATS = {"date": (date,), "date-time": (datetime,)}


def _fill(issues: list[ValidationIssue], start: int, text: str) -> None:
    """Fill the right-most placeholder of every issue added since ``start``."""
    for i in range(start, len(issues)):
        issue = issues[i]
        head, _, tail = issue.path.rpartition(_HOLE)
        issues[i] = ValidationIssue(head + text + tail, issue.expected, issue.got)


def _join(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


class _Namespaced(Exception):
    """Raised (and caught) when a record turns out to use the JSON-LD key spelling."""


_SCALAR_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,)}
_CONSTRAINTS = ("format", "enum", "pattern", "minLength", "maxLength", "minimum", "maximum")


def _plain(value: Any, type_: str, path: str, issues: list[ValidationIssue], allow_null: bool) -> None:
    """Slow path of an unconstrained scalar whose Python type was not the expected one."""
    if type_ == "integer" and type(value) is float and value.is_integer():
        return
    if value is None:
        if not allow_null:
            issues.append(ValidationIssue(path, f"{type_} (omit the field instead of null)", "null"))
        return
    issues.append(ValidationIssue(path, type_, _got(value)))


class _CodeGen:
    """Turns a resolved schema into Python source: one function per object, scalars inline.

    Each generated function knows the static field path of everything it checks; array indexes
    and map keys are written into the path (``_fill``) only when an issue was found below them.
    """

    def __init__(self, *, allow_unknown: bool, allow_null: bool) -> None:
        self.allow_unknown = allow_unknown
        self.allow_null = allow_null
        self.ns: dict[str, Any] = {
            "_I": ValidationIssue,
            "_got": _got,
            "_fill": _fill,
            "_plain": _plain,
            "_Namespaced": _Namespaced,
            "_join": _join,
            "_HOLE": _HOLE,
        }
        self.functions: list[str] = []
        self.names = 0
        # Dispatch tables (field name -> generated function name), filled in after ``exec``.
        self.tables: list[dict[str, Any]] = []

    def build(self, node: Node) -> Check:
        entry = self.function(node, "", top=True)
        source = "\n\n".join(self.functions)
        exec(compile(source, "<xdm-validator>", "exec"), self.ns)
        for table in self.tables:
            for key, function_name in table.items():
                table[key] = self.ns[function_name]
        check: Check = self.ns[entry]
        return check

    def const(self, value: Any) -> str:
        self.names += 1
        name = f"_c{self.names}"
        self.ns[name] = value
        return name

    def var(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names}"

    def function(self, node: Node, path: str, *, top: bool = False) -> str:
        name = self.var("_f")
        lines = [f"def {name}(v, issues, detect=True):" if top else f"def {name}(v, issues):"]
        if node.get("type") == "object" and not is_map(node):
            self.object_body(node, path, lines, top)
        else:
            self.emit(node, "v", path, 1, lines)
        lines.append("    return None")
        self.functions.append("\n".join(lines))
        return name

    def null_or_wrong(self, var: str, path: str, expected: str, ind: int, lines: list[str]) -> None:
        pad = "    " * ind
        lines.append(f"{pad}elif {var} is None:")
        if self.allow_null:
            lines.append(f"{pad}    pass")
        else:
            null = f"{expected} (omit the field instead of null)"
            lines.append(f"{pad}    issues.append(_I({path!r}, {null!r}, 'null'))")
        lines.append(f"{pad}else:")
        lines.append(f"{pad}    issues.append(_I({path!r}, {expected!r}, _got({var})))")

    def object_body(self, node: Node, path: str, lines: list[str], top: bool) -> None:
        props: dict[str, Node] = node.get("properties", {})
        fast = {n: _SCALAR_TYPES[str(sub.get("type"))] for n, sub in props.items() if _is_plain(sub)}
        fast_types = self.const({n: frozenset(t) for n, t in fast.items()})
        fast_names = self.const({n: str(props[n]["type"]) for n in fast})
        fast_paths = self.const({n: _join(path, n) for n in fast})
        objects = {
            n: sub
            for n, sub in props.items()
            if n not in fast and sub.get("type") == "object" and not is_map(sub)
        }
        table = {n: self.function(sub, _join(path, n)) for n, sub in objects.items()}
        self.tables.append(table)
        object_funcs = self.const(table)
        complex_props = {n: sub for n, sub in props.items() if n not in fast and n not in objects}
        lines.append("    if type(v) is not dict:")
        lines.append("        if v is None:")
        if self.allow_null:
            lines.append("            return None")
        else:
            lines.append(
                f"            issues.append(_I({path!r}, 'object (omit the field instead of null)', 'null'))"
            )
            lines.append("            return None")
        lines.append(f"        issues.append(_I({path!r}, 'object', _got(v)))")
        lines.append("        return None")
        lines.append("    for k, x in v.items():")
        if fast:
            lines.append(f"        t = {fast_types}.get(k)")
            lines.append("        if t is not None:")
            lines.append("            if type(x) not in t:")
            lines.append(
                f"                _plain(x, {fast_names}[k], {fast_paths}[k], issues, {self.allow_null!r})"
            )
            lines.append("            continue")
        if objects:
            # Sub-objects dispatch through a dict: one look-up however many fields the object has.
            lines.append(f"        f = {object_funcs}.get(k)")
            lines.append("        if f is not None:")
            lines.append("            f(x, issues)")
            lines.append("            continue")
        keyword = "if"
        for name, sub in complex_props.items():
            lines.append(f"        {keyword} k == {name!r}:")
            before = len(lines)
            self.emit(sub, "x", _join(path, name), 3, lines)
            if len(lines) == before:
                lines.append("            pass")
            keyword = "elif"
        unknown: list[str] = []
        if top:
            unknown.append("if detect and type(k) is str and (':' in k or k[:1] == '@'):")
            unknown.append("    raise _Namespaced")
        if not self.allow_unknown:
            unknown.append(
                f"issues.append(_I(_join({path!r}, str(k).replace(_HOLE, '\\\\x00')), "
                "'no such field in the schema', _got(x)))"
            )
        if unknown:
            if keyword == "elif":
                lines.append("        else:")
                lines.extend("            " + u for u in unknown)
            else:
                lines.extend("        " + u for u in unknown)
        for req in map(str, node.get("required", ())):
            lines.append(f"    if {req!r} not in v:")
            lines.append(
                f"        issues.append(_I({_join(path, req)!r}, 'a value (required field)', 'missing'))"
            )

    def emit(self, node: Node, var: str, path: str, ind: int, lines: list[str]) -> None:
        pad = "    " * ind
        type_ = node.get("type")
        if type_ == "object" and not is_map(node):
            lines.append(f"{pad}{self.function(node, path)}({var}, issues)")
        elif ind > 9 and type_ in ("object", "array"):
            # Python limits statically nested blocks; deep containers get their own function.
            lines.append(f"{pad}{self.function(node, path)}({var}, issues)")
        elif type_ == "object":
            key, item, start = self.var("k"), self.var("x"), self.var("s")
            lines.append(f"{pad}if type({var}) is dict:")
            lines.append(f"{pad}    for {key}, {item} in {var}.items():")
            lines.append(f"{pad}        {start} = len(issues)")
            self.emit(node["additionalProperties"], item, _join(path, _HOLE), ind + 2, lines)
            lines.append(f"{pad}        if len(issues) > {start}:")
            lines.append(f"{pad}            _fill(issues, {start}, str({key}).replace(_HOLE, '\\\\x00'))")
            self.null_or_wrong(var, path, "map (object)", ind, lines)
        elif type_ == "array":
            index, item, start = self.var("i"), self.var("x"), self.var("s")
            lines.append(f"{pad}if type({var}) is list:")
            for keyword, op, text in (("minItems", "<", "at least"), ("maxItems", ">", "at most")):
                if keyword in node:
                    n = int(node[keyword])
                    lines.append(f"{pad}    if len({var}) {op} {n}:")
                    lines.append(
                        f"{pad}        issues.append(_I({path!r}, {f'{text} {n} items'!r}, f'{{len({var})}} items'))"
                    )
            lines.append(f"{pad}    for {index}, {item} in enumerate({var}):")
            lines.append(f"{pad}        {start} = len(issues)")
            self.emit(node.get("items", {}), item, path + _HOLE, ind + 2, lines)
            lines.append(f"{pad}        if len(issues) > {start}:")
            lines.append(f"{pad}            _fill(issues, {start}, f'[{{{index}}}]')")
            self.null_or_wrong(var, path, "array", ind, lines)
        elif type_ in _SCALAR_TYPES:
            self.scalar(node, str(type_), var, path, ind, lines)

    def scalar(self, node: Node, type_: str, var: str, path: str, ind: int, lines: list[str]) -> None:
        pad = "    " * ind
        fmt = node.get("format")
        fmt_check = _FORMATS.get(fmt) if isinstance(fmt, str) else None
        expected = f"{type_} ({fmt})" if fmt_check else type_
        if type_ == "string":
            test = f"type({var}) is str"
            objects = _OBJECT_FORMATS.get(str(fmt))
            if objects:
                test = f"({test} or isinstance({var}, {self.const(objects)}))"
        elif type_ == "integer":
            test = f"(type({var}) is int or (type({var}) is float and {var}.is_integer()))"
        elif type_ == "number":
            test = f"(type({var}) is int or type({var}) is float)"
        else:
            test = f"type({var}) is bool"
        body: list[str] = []
        if fmt_check is not None:
            body.append(f"if not {self.const(fmt_check)}({var}):")
            body.append(f"    issues.append(_I({path!r}, {expected!r}, _got({var})))")
        checks: list[tuple[str, str]] = []
        if node.get("enum"):
            values = frozenset(node["enum"])
            checks.append((f"{var} not in {self.const(values)}", f"one of {sorted(values, key=str)}"))
        if "pattern" in node:
            regex = re.compile(node["pattern"])
            checks.append((f"not {self.const(regex)}.search({var})", f"text matching /{regex.pattern}/"))
        for keyword, op, text in (
            ("minLength", "<", "at least {} characters"),
            ("maxLength", ">", "at most {} characters"),
        ):
            if keyword in node and type_ == "string":
                checks.append((f"len({var}) {op} {int(node[keyword])}", text.format(node[keyword])))
        for keyword, op, text in (("minimum", "<", "a number >= {}"), ("maximum", ">", "a number <= {}")):
            if keyword in node and type_ in ("integer", "number"):
                checks.append((f"{var} {op} {float(node[keyword])!r}", text.format(node[keyword])))
        if checks:
            inner = "    " if body else ""
            if body:
                body.append("else:")
            for cond, want in checks:
                body.append(f"{inner}if {cond}:")
                body.append(f"{inner}    issues.append(_I({path!r}, {want!r}, _got({var})))")
        lines.append(f"{pad}if {test}:")
        lines.extend(f"{pad}    {b}" for b in body or ["pass"])
        self.null_or_wrong(var, path, expected, ind, lines)


def _is_plain(node: Node) -> bool:
    # Formats Tessera does not check (uri, uri-reference, ...) leave a field plain.
    checked = [k for k in _CONSTRAINTS if k in node and (k != "format" or node[k] in _FORMATS)]
    return node.get("type") in _SCALAR_TYPES and not checked


class RecordValidator:
    """A compiled validator for one resolved schema. Build it once, call it per record.

    Args:
        schema: a resolved JSON Schema dict (``SchemaRegistry.resolve`` or ``union_schema``).
        allow_unknown: accept fields the schema does not define (XDM's own default); ``False``
            reports each as an issue.
        allow_null: accept ``null`` for typed fields (the reference platform rejects them:
            omit the key instead).

    >>> from tessera.xdm.fields import obj, date
    >>> v = RecordValidator(obj({"person": obj({"birthDate": date()})}))
    >>> [i.message for i in v.validate({"person": {"birthDate": "1990-13-01"}})]
    ["person.birthDate: expected string (date), got string '1990-13-01'"]
    """

    def __init__(self, schema: Node, *, allow_unknown: bool = True, allow_null: bool = False) -> None:
        self.schema = schema
        self._check = _CodeGen(allow_unknown=allow_unknown, allow_null=allow_null).build(schema)

    def validate(self, record: Any) -> list[ValidationIssue]:
        """All issues of ``record`` (empty when valid). Never raises on bad data.

        Records in the JSON-LD spelling (``xdm:person``, ``@id``) are converted first.
        """
        issues: list[ValidationIssue] = []
        try:
            self._check(record, issues)
        except _Namespaced:
            issues = []
            try:
                converted = normalize_keys(record)
            except RecursionError:
                return [ValidationIssue("", "a record nested less deeply", "too many nested levels")]
            # Keys still namespaced after conversion are just unknown fields.
            self._check(converted, issues, False)
        return issues

    def is_valid(self, record: Any) -> bool:
        """Whether ``record`` has no issues."""
        return not self.validate(record)


def validate(record: Any, schema: Node) -> list[ValidationIssue]:
    """One-off validation (compiles ``schema`` every call; use :class:`RecordValidator` in loops).

    >>> from tessera.xdm.fields import obj, email
    >>> validate({"workEmail": {"address": "nope"}}, obj({"workEmail": obj({"address": email()})}))[0].path
    'workEmail.address'
    """
    return RecordValidator(schema).validate(record)


__all__ = ["RecordValidator", "ValidationIssue", "validate"]
