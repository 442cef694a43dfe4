"""Field paths and the two spellings of XDM keys.

Adobe's XDM repository writes JSON-LD style keys (``xdm:person``, ``@id``, ``repo:createDate``,
``https://ns.adobe.com/experience/mcid``); AEP and Tessera use the plain ("XED") spelling
(``person``, ``_id``, ``_repo.createDate``, ``_experience.mcid``). See
``spec/external-data.md`` §1.1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_CURIE = re.compile(r"^([A-Za-z][A-Za-z0-9]*):([A-Za-z_][A-Za-z0-9_]*)$")
_NS_URI = "https://ns.adobe.com/"
_NOT_PREFIXES = frozenset({"http", "https", "urn", "mailto"})


def plain_key(key: str) -> tuple[str, ...]:
    """The plain spelling of one key, as a path of one or more parts.

    >>> plain_key("xdm:person"), plain_key("@id"), plain_key("repo:createDate")
    (('person',), ('_id',), ('_repo', 'createDate'))
    >>> plain_key("https://ns.adobe.com/experience/mcid")
    ('_experience', 'mcid')
    >>> plain_key("ECID")
    ('ECID',)
    """
    if key.startswith("@") and len(key) > 1:
        return ("_" + key[1:],)
    if key.startswith(_NS_URI):
        parts = [p for p in key[len(_NS_URI) :].split("/") if p]
        if parts:
            return ("_" + parts[0], *parts[1:])
        return (key,)
    m = _CURIE.match(key)
    if m and m.group(1) not in _NOT_PREFIXES:
        prefix, local = m.groups()
        return (local,) if prefix == "xdm" else ("_" + prefix, local)
    return (key,)


def is_namespaced(record: dict[str, Any]) -> bool:
    """Whether any top-level key of ``record`` uses the JSON-LD spelling."""
    # Cheap test (it runs once per validated record): every JSON-LD key has ':' or a leading '@'.
    return any(type(k) is str and (":" in k or k[:1] == "@") for k in record)


def _merge_into(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            target[part] = nxt
        target = nxt
    last = path[-1]
    if isinstance(value, dict) and isinstance(target.get(last), dict):
        for k, v in value.items():
            _merge_into(target[last], (k,), v)
    else:
        target[last] = value


def normalize_keys(doc: Any) -> Any:
    """Convert a document from the JSON-LD key spelling to the plain one (recursively).

    Keys already in the plain spelling are kept, so mixed documents work and the function is
    idempotent. Keys that are not field names (namespace codes in ``identityMap``, segment ids)
    pass through unchanged unless they look like a prefixed name.

    >>> normalize_keys({"xdm:person": {"xdm:name": {"xdm:firstName": "Ann"}}, "@id": "1"})
    {'person': {'name': {'firstName': 'Ann'}}, '_id': '1'}
    >>> normalize_keys({"repo:createDate": "2024-01-01T00:00:00Z", "schema:latitude": 1.5})
    {'_repo': {'createDate': '2024-01-01T00:00:00Z'}, '_schema': {'latitude': 1.5}}
    """
    if isinstance(doc, dict):
        out: dict[str, Any] = {}
        for key, value in doc.items():
            path = plain_key(key) if isinstance(key, str) else (key,)
            _merge_into(out, path, normalize_keys(value))
        return out
    if isinstance(doc, list):
        return [normalize_keys(v) for v in doc]
    return doc


def split_path(path: str) -> list[str]:
    """Split a dotted field path (``/a/b`` JSON-pointer style is accepted too).

    >>> split_path("person.name.firstName"), split_path("/personalEmail/address")
    (['person', 'name', 'firstName'], ['personalEmail', 'address'])
    """
    if path.startswith("/"):
        return [p for p in path.split("/") if p]
    return [p for p in path.split(".") if p]


def values_at(record: Any, path: str | list[str]) -> Iterator[Any]:
    """Every value found at a field path; arrays on the way are stepped through.

    >>> list(values_at({"a": [{"b": 1}, {"b": 2}, {}]}, "a.b"))
    [1, 2]
    """
    parts = split_path(path) if isinstance(path, str) else path
    stack: list[tuple[Any, int]] = [(record, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, list):
            stack.extend((item, depth) for item in reversed(node))
            continue
        if depth == len(parts):
            if node is not None:
                yield node
            continue
        if isinstance(node, dict) and parts[depth] in node:
            stack.append((node[parts[depth]], depth + 1))


__all__ = ["is_namespaced", "normalize_keys", "plain_key", "split_path", "values_at"]
