"""Field definitions: a tiny builder for resolved XDM JSON Schema nodes, plus checks on them.

Every schema Tessera produces is *resolved*: no ``$ref``; objects carry ``properties``, arrays
``items``, maps are ``type: object`` with ``meta:xdmType: map`` and ``additionalProperties``, and
dates are ``type: string`` with ``format: date`` or ``date-time``. Consumers (the validator, the
PQL checker, the API) read exactly this shape.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from tessera.errors import Conflict, InvalidInput

Node = dict[str, Any]
"""One resolved JSON Schema node (a plain dict)."""

SCALAR_TYPES = frozenset({"string", "integer", "number", "boolean"})
FORMATS = frozenset({"date", "date-time", "email", "uri", "uri-reference", "ipv4", "ipv6"})
_ANNOTATIONS = frozenset({"title", "description", "meta:xdmType", "default", "examples", "meta:enum"})
_ALLOWED = {
    "string": frozenset({"type", "format", "enum", "pattern", "minLength", "maxLength"}),
    "integer": frozenset({"type", "enum", "minimum", "maximum"}),
    "number": frozenset({"type", "enum", "minimum", "maximum"}),
    "boolean": frozenset({"type"}),
    "object": frozenset({"type", "properties", "additionalProperties", "required"}),
    "array": frozenset({"type", "items", "minItems", "maxItems"}),
}


def _leaf(type_: str, title: str | None, description: str | None, **extra: Any) -> Node:
    node: Node = {"type": type_}
    if title:
        node["title"] = title
    if description:
        node["description"] = description
    node.update({k: v for k, v in extra.items() if v is not None})
    return node


def string(
    title: str | None = None,
    *,
    format: str | None = None,
    enum: list[str] | None = None,
    description: str | None = None,
) -> Node:
    """A string field, optionally with a ``format`` or an ``enum``.

    >>> string("City")
    {'type': 'string', 'title': 'City'}
    """
    return _leaf("string", title, description, format=format, enum=enum)


def date(title: str | None = None, *, description: str | None = None) -> Node:
    """A calendar date (``YYYY-MM-DD``)."""
    return _leaf("string", title, description, format="date")


def date_time(title: str | None = None, *, description: str | None = None) -> Node:
    """An RFC 3339 timestamp with offset (``2024-01-02T03:04:05Z``)."""
    return _leaf("string", title, description, format="date-time")


def email(title: str | None = None, *, description: str | None = None) -> Node:
    """An e-mail address."""
    return _leaf("string", title, description, format="email")


def integer(title: str | None = None, *, description: str | None = None) -> Node:
    """A whole number."""
    return _leaf("integer", title, description)


def number(title: str | None = None, *, description: str | None = None) -> Node:
    """Any number."""
    return _leaf("number", title, description)


def boolean(title: str | None = None, *, description: str | None = None) -> Node:
    """True or false."""
    return _leaf("boolean", title, description)


def obj(properties: dict[str, Node], title: str | None = None, *, description: str | None = None) -> Node:
    """An object with named sub-fields.

    >>> obj({"city": string()})
    {'type': 'object', 'properties': {'city': {'type': 'string'}}}
    """
    return _leaf("object", title, description, properties=properties)


def array(items: Node, title: str | None = None, *, description: str | None = None) -> Node:
    """An array whose elements all match ``items``."""
    return _leaf("array", title, description, items=items)


def map_of(values: Node, title: str | None = None, *, description: str | None = None) -> Node:
    """A map from free string keys to ``values`` (XDM ``meta:xdmType: map``).

    >>> map_of(string())["meta:xdmType"]
    'map'
    """
    node = _leaf("object", title, description, additionalProperties=values)
    node["meta:xdmType"] = "map"
    return node


def is_map(node: Node) -> bool:
    """Whether ``node`` is an XDM map (object keyed by free strings)."""
    return node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict)


def describe(node: Node) -> str:
    """Short human name of a node's type, e.g. ``string (date-time)`` or ``map``.

    >>> describe(date())
    'string (date)'
    """
    type_ = str(node.get("type", "any"))
    if is_map(node):
        return "map"
    if "format" in node:
        return f"{type_} ({node['format']})"
    return type_


def check_field_schema(node: Any, path: str = "") -> None:
    """Check that a field definition uses only the resolved shapes Tessera understands.

    Args:
        node: a JSON Schema node as written by a user (for a tenant field group).
        path: field path of ``node``, used in error messages.

    Raises:
        InvalidInput: with ``path`` set to the offending field.

    >>> check_field_schema(obj({"tier": string()}))
    >>> check_field_schema({"type": "strin"}, "tier")
    Traceback (most recent call last):
    ...
    tessera.errors.InvalidInput: field type must be one of array, boolean, integer, number, object, string; got 'strin' (at tier)
    """
    where = path or "(root)"
    if not isinstance(node, dict):
        raise InvalidInput(f"a field definition must be an object, got {type(node).__name__}", path=where)
    if "$ref" in node:
        raise InvalidInput("$ref is not allowed in tenant fields; write the fields out", path=where)
    type_ = node.get("type")
    if type_ not in _ALLOWED:
        raise InvalidInput(
            f"field type must be one of {', '.join(sorted(_ALLOWED))}; got {type_!r}", path=where
        )
    unknown = set(node) - _ALLOWED[type_] - _ANNOTATIONS
    if unknown:
        raise InvalidInput(
            f"unsupported keyword(s) for a {type_} field: {', '.join(sorted(unknown))}", path=where
        )
    if type_ == "string" and "format" in node and node["format"] not in FORMATS:
        raise InvalidInput(
            f"format must be one of {', '.join(sorted(FORMATS))}; got {node['format']!r}", path=where
        )
    if "pattern" in node:
        try:
            re.compile(node["pattern"])
        except (re.error, TypeError) as exc:
            raise InvalidInput(f"pattern is not a valid regular expression: {exc}", path=where) from exc
    if "enum" in node and (not isinstance(node["enum"], list) or not node["enum"]):
        raise InvalidInput("enum must be a non-empty list", path=where)
    if type_ == "array":
        if "items" not in node:
            raise InvalidInput("an array field needs 'items'", path=where)
        check_field_schema(node["items"], f"{path}[]")
    elif type_ == "object":
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        if not isinstance(props, dict):
            raise InvalidInput("'properties' must be an object", path=where)
        if not props and not isinstance(extra, dict):
            raise InvalidInput(
                "an object field needs 'properties' (or 'additionalProperties' for a map)", path=where
            )
        for name, sub in props.items():
            check_field_name(name, path)
            check_field_schema(sub, f"{path}.{name}" if path else name)
        if isinstance(extra, dict):
            check_field_schema(extra, f"{path}.*" if path else "*")


def check_field_name(name: Any, parent: str = "") -> None:
    """A field name is a non-empty string without dots or spaces."""
    if not isinstance(name, str) or not name or "." in name or " " in name or ":" in name:
        raise InvalidInput(
            f"invalid field name {name!r}: use letters, digits and '_' only", path=parent or "(root)"
        )


def _same_shape(a: Node, b: Node) -> bool:
    return a.get("type") == b.get("type") and a.get("format") == b.get("format") and is_map(a) == is_map(b)


def merge_properties(a: dict[str, Node], b: dict[str, Node], path: str = "") -> dict[str, Node]:
    """Deep-merge two ``properties`` maps (composition of field groups, union schemas).

    Objects merge field by field; a field defined twice must have the same type and format.
    Enumerations are united. Inputs are not modified.

    Raises:
        Conflict: when the same field path has two different types.

    >>> sorted(merge_properties({"a": obj({"x": string()})}, {"a": obj({"y": integer()})})["a"]["properties"])
    ['x', 'y']
    """
    out = {k: copy.deepcopy(v) for k, v in a.items()}
    for name, node in b.items():
        where = f"{path}.{name}" if path else name
        if name not in out:
            out[name] = copy.deepcopy(node)
            continue
        mine = out[name]
        if not _same_shape(mine, node):
            raise Conflict(
                f"field {where} is defined as {describe(mine)} in one place and {describe(node)} in another",
                path=where,
            )
        if mine.get("type") == "object" and not is_map(mine):
            mine["properties"] = merge_properties(
                mine.get("properties", {}), node.get("properties", {}), where
            )
            req = list(dict.fromkeys([*mine.get("required", []), *node.get("required", [])]))
            if req:
                mine["required"] = req
        elif mine.get("type") == "array":
            merged = merge_properties({"[]": mine["items"]}, {"[]": node["items"]}, where)
            mine["items"] = merged["[]"]
        elif is_map(mine):
            merged = merge_properties(
                {"*": mine["additionalProperties"]}, {"*": node["additionalProperties"]}, where
            )
            mine["additionalProperties"] = merged["*"]
        elif "enum" in mine or "enum" in node:
            if "enum" in mine and "enum" in node:
                mine["enum"] = list(dict.fromkeys([*mine["enum"], *node["enum"]]))
            else:
                mine.pop("enum", None)
    return out


def breaking_changes(old: dict[str, Node], new: dict[str, Node], path: str = "") -> list[tuple[str, str]]:
    """Every non-additive difference from ``old`` to ``new`` properties, as ``(path, reason)``.

    Additive means: every old field still exists with the same type and format, enumerations
    only grow, no new required fields.

    >>> breaking_changes({"a": string()}, {"a": string(), "b": integer()})
    []
    >>> breaking_changes({"a": string()}, {"a": integer()})
    [('a', 'type changed from string to integer')]
    """
    found: list[tuple[str, str]] = []
    for name, was in old.items():
        where = f"{path}.{name}" if path else name
        now = new.get(name)
        if now is None:
            found.append((where, "field removed"))
            continue
        if not _same_shape(was, now):
            found.append((where, f"type changed from {describe(was)} to {describe(now)}"))
            continue
        if (
            "enum" in now
            and set(was.get("enum", ())) - set(now["enum"])
            or ("enum" in now and "enum" not in was)
        ):
            found.append((where, "allowed values narrowed"))
        added_required = set(now.get("required", ())) - set(was.get("required", ()))
        if added_required:
            found.append((where, f"new required field(s): {', '.join(sorted(added_required))}"))
        if is_map(was):
            found += breaking_changes(
                {"*": was["additionalProperties"]}, {"*": now["additionalProperties"]}, where
            )
        elif was.get("type") == "object":
            found += breaking_changes(was.get("properties", {}), now.get("properties", {}), where)
        elif was.get("type") == "array":
            found += breaking_changes({"[]": was["items"]}, {"[]": now["items"]}, where)
    return found


def find_field(properties: dict[str, Node], path: str) -> Node | None:
    """The node at a dotted field path (arrays are stepped through), or ``None``.

    >>> find_field({"a": obj({"b": date()})}, "a.b")["format"]
    'date'
    """
    node: Node | None = {"type": "object", "properties": properties}
    for part in path.split("."):
        while node is not None and node.get("type") == "array":
            node = node.get("items")
        if node is None or node.get("type") != "object":
            return None
        node = node.get("properties", {}).get(part)
    return node


__all__ = [
    "Node",
    "array",
    "boolean",
    "breaking_changes",
    "check_field_name",
    "check_field_schema",
    "date",
    "date_time",
    "describe",
    "email",
    "find_field",
    "integer",
    "is_map",
    "map_of",
    "merge_properties",
    "number",
    "obj",
    "string",
]
