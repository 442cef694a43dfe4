"""Record validation against a resolved (composed) XDM schema.

A schema is compiled once into a tree of small closures, one per field, each knowing its own
field path; validating a record then costs one call per *present* field. Nothing here raises on
bad data: :meth:`RecordValidator.validate` returns a list of :class:`ValidationIssue` and the
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


Check = Callable[[Any, list[ValidationIssue]], None]
# Placeholder for the array index / map key in a compiled path; the innermost container on the
# error path fills in the right-most placeholder (errors are rare, so this costs nothing on valid data).
_HOLE = "\x00"

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


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


def _is_date(value: Any) -> bool:
    if isinstance(value, date) and not isinstance(value, datetime):
        return True
    if not isinstance(value, str) or not _DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_date_time(value: Any) -> bool:
    if isinstance(value, datetime):
        return True
    if not isinstance(value, str) or not _DATE_TIME.match(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_email(value: Any) -> bool:
    return isinstance(value, str) and _EMAIL.match(value) is not None


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
    "ipv4": _is_ip(ipaddress.IPv4Address),
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


class _Never:
    """A type no value has: fields of this fast type always go through their full check."""


def _fast_type(node: Node) -> type:
    type_ = node.get("type")
    if any(k in node for k in ("format", "enum", "pattern", "minLength", "maxLength", "minimum", "maximum")):
        return _Never
    return {"string": str, "boolean": bool, "integer": int, "number": float}.get(str(type_), _Never)


class _Compiler:
    def __init__(self, *, allow_unknown: bool, allow_null: bool) -> None:
        self.allow_unknown = allow_unknown
        self.allow_null = allow_null

    def compile(self, node: Node, path: str) -> Check:
        type_ = node.get("type")
        if type_ == "object":
            if is_map(node):
                return self._map(node, path)
            return self._object(node, path)
        if type_ == "array":
            return self._array(node, path)
        if type_ in ("string", "integer", "number", "boolean"):
            return self._scalar(node, path, str(type_))
        return self._any(path)

    def _nullable(self, path: str, expected: str) -> Callable[[list[ValidationIssue]], None]:
        allow = self.allow_null

        def on_null(issues: list[ValidationIssue]) -> None:
            if not allow:
                issues.append(ValidationIssue(path, f"{expected} (omit the field instead of null)", "null"))

        return on_null

    def _any(self, path: str) -> Check:
        def check(value: Any, issues: list[ValidationIssue]) -> None:
            return None

        return check

    def _object(self, node: Node, path: str) -> Check:
        # Per field: (a type that is valid without further checks, the full check). Plain strings,
        # booleans, integers and numbers are accepted inline, so a typical record costs one call
        # per object and per constrained field only.
        props: dict[str, tuple[type, Check]] = {
            name: (_fast_type(sub), self.compile(sub, _join(path, name)))
            for name, sub in node.get("properties", {}).items()
        }
        required = tuple(node.get("required", ()))
        allow_unknown = self.allow_unknown
        top = not path
        on_null = self._nullable(path, "object")
        get = props.get

        def check(value: Any, issues: list[ValidationIssue]) -> None:
            if type(value) is not dict:
                if value is None:
                    on_null(issues)
                else:
                    issues.append(ValidationIssue(path, "object", _got(value)))
                return
            for key, item in value.items():
                entry = get(key)
                if entry is None:
                    if top and type(key) is str and (":" in key or key[:1] == "@"):
                        raise _Namespaced
                    if not allow_unknown:
                        issues.append(ValidationIssue(_join(path, str(key)), "no such field in the schema", _got(item)))
                    continue
                if type(item) is not entry[0]:
                    entry[1](item, issues)
            for key in required:
                if key not in value:
                    issues.append(ValidationIssue(_join(path, key), "a value (required field)", "missing"))

        return check

    def _map(self, node: Node, path: str) -> Check:
        values = self.compile(node["additionalProperties"], _join(path, _HOLE))
        on_null = self._nullable(path, "map")

        def check(value: Any, issues: list[ValidationIssue]) -> None:
            if type(value) is not dict:
                if value is None:
                    on_null(issues)
                else:
                    issues.append(ValidationIssue(path, "map (object)", _got(value)))
                return
            for key, item in value.items():
                start = len(issues)
                values(item, issues)
                if len(issues) > start:
                    _fill(issues, start, str(key))

        return check

    def _array(self, node: Node, path: str) -> Check:
        items = self.compile(node.get("items", {}), path + _HOLE)
        min_items = node.get("minItems")
        max_items = node.get("maxItems")
        on_null = self._nullable(path, "array")

        def check(value: Any, issues: list[ValidationIssue]) -> None:
            if type(value) is not list:
                if value is None:
                    on_null(issues)
                else:
                    issues.append(ValidationIssue(path, "array", _got(value)))
                return
            if min_items is not None and len(value) < min_items:
                issues.append(ValidationIssue(path, f"at least {min_items} items", f"{len(value)} items"))
            if max_items is not None and len(value) > max_items:
                issues.append(ValidationIssue(path, f"at most {max_items} items", f"{len(value)} items"))
            for i, item in enumerate(value):
                start = len(issues)
                items(item, issues)
                if len(issues) > start:
                    _fill(issues, start, f"[{i}]")

        return check

    def _scalar(self, node: Node, path: str, type_: str) -> Check:
        fmt = node.get("format")
        fmt_check = _FORMATS.get(fmt) if isinstance(fmt, str) else None
        objects = _OBJECT_FORMATS.get(fmt, ()) if isinstance(fmt, str) else ()
        expected = f"{type_} ({fmt})" if fmt_check else type_
        enum = node.get("enum")
        enum_set = frozenset(enum) if enum else None
        pattern = re.compile(node["pattern"]) if "pattern" in node else None
        min_len, max_len = node.get("minLength"), node.get("maxLength")
        minimum, maximum = node.get("minimum"), node.get("maximum")
        extra = bool(enum_set or pattern or min_len is not None or max_len is not None)
        extra = extra or minimum is not None or maximum is not None
        on_null = self._nullable(path, expected)

        if type_ == "string":

            def type_ok(v: Any) -> bool:
                return type(v) is str or (bool(objects) and isinstance(v, objects))

        elif type_ == "integer":

            def type_ok(v: Any) -> bool:
                return (type(v) is int) or (type(v) is float and v.is_integer())

        elif type_ == "number":

            def type_ok(v: Any) -> bool:
                return type(v) is int or type(v) is float

        else:

            def type_ok(v: Any) -> bool:
                return type(v) is bool

        def check(value: Any, issues: list[ValidationIssue]) -> None:
            if not type_ok(value):
                if value is None:
                    on_null(issues)
                else:
                    issues.append(ValidationIssue(path, expected, _got(value)))
                return
            if fmt_check is not None and not fmt_check(value):
                issues.append(ValidationIssue(path, expected, _got(value)))
                return
            if extra:
                _constraints(value, issues)

        def _constraints(value: Any, issues: list[ValidationIssue]) -> None:
            if enum_set is not None and value not in enum_set:
                issues.append(ValidationIssue(path, f"one of {sorted(enum_set, key=str)}", _got(value)))
            if isinstance(value, str):
                if pattern is not None and not pattern.search(value):
                    issues.append(ValidationIssue(path, f"text matching /{pattern.pattern}/", _got(value)))
                if min_len is not None and len(value) < min_len:
                    issues.append(ValidationIssue(path, f"at least {min_len} characters", _got(value)))
                if max_len is not None and len(value) > max_len:
                    issues.append(ValidationIssue(path, f"at most {max_len} characters", _got(value)))
            elif isinstance(value, int | float):
                if minimum is not None and value < minimum:
                    issues.append(ValidationIssue(path, f"a number >= {minimum}", _got(value)))
                if maximum is not None and value > maximum:
                    issues.append(ValidationIssue(path, f"a number <= {maximum}", _got(value)))

        return check


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
        self._check = _Compiler(allow_unknown=allow_unknown, allow_null=allow_null).compile(schema, "")

    def validate(self, record: Any) -> list[ValidationIssue]:
        """All issues of ``record`` (empty when valid). Never raises on bad data.

        Records in the JSON-LD spelling (``xdm:person``, ``@id``) are converted first.
        """
        issues: list[ValidationIssue] = []
        try:
            self._check(record, issues)
        except _Namespaced:
            issues = []
            self._check(normalize_keys(record), issues)
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
