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
