"""Static PQL types, derived from resolved JSON Schema dicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class T:
    """A PQL type. ``kind`` is one of any, null, bool, int, num, str, time, date, array, object, map.

    ``item`` is the element type of arrays and the value type of maps; ``schema`` is the JSON Schema
    of an object (used to resolve fields).
    """

    kind: str
    item: T | None = None
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def numeric(self) -> bool:
        return self.kind in ("int", "num")

    @property
    def a(self) -> str:
        """The type's name with its article, for messages: "an integer", "a string"."""
        name = str(self)
        return ("an " if name[0] in "aeiou" else "a ") + name

    def __str__(self) -> str:
        if self.kind == "array":
            return f"array of {self.item}"
        if self.kind == "map":
            return f"map of {self.item}"
        return {
            "num": "number",
            "int": "integer",
            "str": "string",
            "bool": "boolean",
            "time": "timestamp",
        }.get(self.kind, self.kind)


ANY = T("any")
NULL = T("null")
BOOL = T("bool")
INT = T("int")
NUM = T("num")
STR = T("str")
TIME = T("time")
DATE = T("date")


def array_of(t: T) -> T:
    return T("array", t)


def from_schema(s: dict[str, Any] | None) -> T:
    """The PQL type of a resolved JSON Schema node (unknown shapes are ``any``)."""
    if not s:
        return ANY
    typ = s.get("type")
    if isinstance(typ, list):
        non_null = [x for x in typ if x != "null"]
        typ = non_null[0] if len(non_null) == 1 else None
    if typ == "string":
        fmt = s.get("format")
        return TIME if fmt == "date-time" else DATE if fmt == "date" else STR
    if typ == "integer":
        return INT
    if typ == "number":
        return NUM
    if typ == "boolean":
        return BOOL
    if typ == "array":
        return array_of(from_schema(s.get("items")))
    if typ == "object" or "properties" in s:
        if "properties" not in s and isinstance(s.get("additionalProperties"), dict):
            return T("map", from_schema(s["additionalProperties"]))
        return T("object", schema=s)
    return ANY


def unify(a: T, b: T) -> T:
    """The common type of two branches (``if``) or list items."""
    if a == b:
        return a
    if a.kind == "null":
        return b
    if b.kind == "null":
        return a
    if a.numeric and b.numeric:
        return NUM
    return ANY


def to_schema(t: T) -> dict[str, Any]:
    """A JSON Schema node of type ``t`` (for values the language builds, such as object literals)."""
    if t.kind == "object":
        return t.schema or {"type": "object", "properties": {}}
    if t.kind == "array":
        return {"type": "array", "items": to_schema(t.item or ANY)}
    if t.kind == "map":
        return {"type": "object", "additionalProperties": to_schema(t.item or ANY)}
    simple = {
        "bool": {"type": "boolean"},
        "int": {"type": "integer"},
        "num": {"type": "number"},
        "str": {"type": "string"},
        "time": {"type": "string", "format": "date-time"},
        "date": {"type": "string", "format": "date"},
    }
    return dict(simple.get(t.kind, {}))
