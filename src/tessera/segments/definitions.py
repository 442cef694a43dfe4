"""Segment definitions: the documented object (``spec/aep.md`` §b3), versioned, validated on save.

``mergePolicyId`` (optional, must name an existing merge policy): every evaluation of the
definition — streaming, batch jobs, edge, preview/estimate and explain — reads profiles merged
under that policy. The class default over the private graph reads the materialised profiles;
any other policy merges on read (slower: one merge per profile evaluated).

``ttlInDays`` (default 30): the reference documents the field but no behaviour for it (only that
externally generated audiences expire after 30 days unless refreshed). Tessera's meaning: a
membership is valid for ``ttlInDays`` after the last evaluation that confirmed it. Realized and
existing memberships carry ``validUntil``; an evaluation that finds the profile still qualifying
moves it forward (rewriting it once half the ttl has passed, not at every evaluation). A
membership past ``validUntil`` is exited by the expiry sweep (every batch job, and hourly by the
scheduler), which first re-evaluates profiles of continuous segments so that one still
qualifying is confirmed instead; reads with an explicit time show it exited already.
"""

from __future__ import annotations

import builtins
import copy
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from tessera.errors import Conflict, InvalidInput, NotFound
from tessera.segments.engine import Compiled, Engine, require_eligible
from tessera.store import PointStore, WriteBatch, get_json, key, scan_json

DEFINITIONS = "segment_definitions"
VERSIONS = "segment_definition_versions"
LIFECYCLE = ("draft", "published", "inactive")
_EDITABLE = {
    "name",
    "description",
    "expression",
    "evaluationInfo",
    "ttlInDays",
    "mergePolicyId",
    "schema",
    "dataGovernancePolicy",
    "lifecycleState",
    "labels",
}


def _ms() -> int:
    return int(time.time() * 1000)


def normalise_evaluation_info(info: Mapping[str, Any] | None) -> dict[str, Any]:
    """Fill in the three modes; a definition without any enabled mode runs in batch.

    >>> normalise_evaluation_info({"continuous": {"enabled": True}})["batch"]
    {'enabled': False}
    >>> normalise_evaluation_info(None)["batch"]
    {'enabled': True}
    """
    info = dict(info or {})
    out = {
        m: {"enabled": bool((info.get(m) or {}).get("enabled", False))}
        for m in ("batch", "continuous", "synchronous")
    }
    if not any(v["enabled"] for v in out.values()):
        out["batch"]["enabled"] = True
    return out


class Definitions:
    """CRUD of segment definitions in the sandbox point store, with compiled forms cached by version."""

    def __init__(self, store: PointStore, engine: Engine, sandbox_name: str = "prod") -> None:
        self._store = store
        self._engine = engine
        self._sandbox_name = sandbox_name
        self._cache: dict[tuple[str, int], Compiled] = {}
        self._all: builtins.list[dict[str, Any]] | None = None
        """Definitions as last read; every write through this object drops it."""

    def compile(self, doc: Mapping[str, Any]) -> Compiled:
        """The compiled expression of a stored definition (cached per id and version)."""
        cache_key = (str(doc["id"]), int(doc.get("version", 1)))
        compiled = self._cache.get(cache_key)
        if compiled is None:
            expr = doc["expression"]
            compiled = self._cache[cache_key] = self._engine.compile(
                expr.get("format", "pql/text"), expr["value"]
            )
        return compiled

    def _validate(self, body: Mapping[str, Any]) -> tuple[dict[str, Any], Compiled]:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("A segment definition needs a non-empty name", path="name")
        expr = body.get("expression")
        if not isinstance(expr, Mapping) or not isinstance(expr.get("value"), str):
            raise InvalidInput(
                "expression must be {type: PQL, format: pql/text|pql/json, value: string}", path="expression"
            )
        fmt = expr.get("format", "pql/text")
        if fmt not in {"pql/text", "pql/json"}:
            raise InvalidInput(
                f"Unknown expression format {fmt!r}; use pql/text or pql/json", path="expression.format"
            )
        compiled = self._engine.compile(fmt, expr["value"])
        info = normalise_evaluation_info(body.get("evaluationInfo"))
        require_eligible(compiled, info)
        lifecycle = body.get("lifecycleState", "published")
        if lifecycle not in LIFECYCLE:
            raise InvalidInput(f"lifecycleState must be one of {', '.join(LIFECYCLE)}", path="lifecycleState")
        ttl = body.get("ttlInDays", 30)
        if not isinstance(ttl, int) or ttl < 1:
            raise InvalidInput("ttlInDays must be a positive integer", path="ttlInDays")
        doc: dict[str, Any] = {
            "name": name.strip(),
            "description": str(body.get("description", "")),
            "schema": dict(body.get("schema") or {"name": "_xdm.context.profile"}),
            "ttlInDays": ttl,
            "profileInstanceId": "ups",
            "expression": {"type": "PQL", "format": fmt, "value": expr["value"]},
            "mergePolicyId": body.get("mergePolicyId"),
            "evaluationInfo": info,
            "dataGovernancePolicy": dict(body.get("dataGovernancePolicy") or {"excludeOptOut": True}),
            "lifecycleState": lifecycle,
            "labels": list(body.get("labels") or []),
            "dependencies": sorted(compiled.dependencies),
        }
        return doc, compiled

    def _check_dependencies(self, seg_id: str, deps: frozenset[str]) -> None:
        for dep in deps:
            if dep == seg_id:
                raise InvalidInput("A segment cannot reference itself with inSegment", path="expression")
            if self._store.get(DEFINITIONS, dep) is None and self._store.get("audiences", dep) is None:
                raise InvalidInput(f"inSegment refers to an unknown segment {dep!r}", path="expression")
        # refuse cycles: walk what the dependencies depend on
        seen: set[str] = set()
        stack = list(deps)
        while stack:
            cur = stack.pop()
            if cur == seg_id:
                raise InvalidInput(
                    f"inSegment dependencies form a cycle through {seg_id!r}", path="expression"
                )
            if cur in seen:
                continue
            seen.add(cur)
            other = get_json(self._store, DEFINITIONS, cur)
            if other:
                stack.extend(other.get("dependencies", []))

    def create(self, body: Mapping[str, Any], *, seg_id: str | None = None) -> dict[str, Any]:
        """Validate and store a new definition (version 1).

        Raises:
            InvalidInput / PqlError: malformed body or expression (with its position).
            SemanticError: streaming or edge evaluation asked for an ineligible expression.
        """
        doc, compiled = self._validate(body)
        seg_id = seg_id or str(uuid.uuid4())
        if self._store.get(DEFINITIONS, seg_id) is not None:
            raise Conflict(f"Segment definition {seg_id} already exists", path="id")
        self._check_dependencies(seg_id, compiled.dependencies)
        now = _ms()
        doc.update(
            {
                "id": seg_id,
                "sandbox": {"sandboxName": self._sandbox_name},
                "version": 1,
                "creationTime": now,
                "baselineTime": now,
                "updateTime": now,
                "updateEpoch": now // 1000,
            }
        )
        self._put(doc)
        self._cache[(seg_id, 1)] = compiled  # the first evaluation does not check it again
        return doc

    def _put(self, doc: dict[str, Any]) -> None:
        self._all = None
        self._store.write(
            WriteBatch()
            .put_json(DEFINITIONS, doc["id"], doc)
            .put_json(VERSIONS, key(doc["id"], f"{doc['version']:06d}"), doc)
        )

    def get(self, seg_id: str) -> dict[str, Any]:
        doc = get_json(self._store, DEFINITIONS, seg_id)
        if doc is None:
            raise NotFound(f"Segment definition {seg_id} does not exist", path="id")
        result: dict[str, Any] = doc
        return result

    def bulk_get(self, ids: Sequence[str]) -> dict[str, Any]:
        """``POST /segment/definitions/bulk-get``: ``{"results": {id: definition}}`` of those that exist."""
        found = {i: get_json(self._store, DEFINITIONS, i) for i in ids}
        return {"results": {i: doc for i, doc in found.items() if doc is not None}}

    def versions(self, seg_id: str) -> builtins.list[dict[str, Any]]:
        """Every stored version of a definition, oldest first."""
        self.get(seg_id)
        return [doc for _, doc in scan_json(self._store, VERSIONS, key(seg_id, ""))]

    def list(
        self,
        *,
        continuous: bool | None = None,
        synchronous: bool | None = None,
        sort: str = "creationTime:asc",
        start: int = 0,
        limit: int = 100,
    ) -> dict[str, Any]:
        """The reference list response ``{segments, page}``."""
        docs = [doc for _, doc in scan_json(self._store, DEFINITIONS)]
        if continuous is not None:
            docs = [d for d in docs if d["evaluationInfo"]["continuous"]["enabled"] == continuous]
        if synchronous is not None:
            docs = [d for d in docs if d["evaluationInfo"]["synchronous"]["enabled"] == synchronous]
        field, _, order = sort.partition(":")
        docs.sort(
            key=lambda d: str(d.get(field, "")) if field == "name" else d.get(field, 0),
            reverse=order == "desc",
        )
        page = docs[start : start + limit]
        return {
            "segments": page,
            "page": {
                "totalCount": len(docs),
                "totalPages": max(1, -(-len(docs) // max(limit, 1))),
                "sortField": field,
                "sort": order or "asc",
                "pageSize": len(page),
                "limit": limit,
            },
            "link": {},
        }

    def all(self) -> builtins.list[dict[str, Any]]:
        """Every definition (cached in process; writes go through this object and drop the cache)."""
        if self._all is None:
            self._all = [doc for _, doc in scan_json(self._store, DEFINITIONS)]
        return self._all

    def update(self, seg_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Apply changed fields (a merge of top-level keys), re-validate, and store a new version."""
        old = self.get(seg_id)
        unknown = set(changes) - _EDITABLE
        if unknown:
            raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))}", path=sorted(unknown)[0])
        merged = copy.deepcopy(old)
        merged.update(copy.deepcopy(dict(changes)))
        doc, compiled = self._validate(merged)
        self._check_dependencies(seg_id, compiled.dependencies)
        now = _ms()
        for kept in ("id", "sandbox", "creationTime", "baselineTime"):
            doc[kept] = old[kept]
        doc.update({"version": old["version"] + 1, "updateTime": now, "updateEpoch": now // 1000})
        self._put(doc)
        self._cache[(str(doc["id"]), int(doc["version"]))] = compiled  # checked once, not again
        return doc

    def patch(self, seg_id: str, ops: builtins.list[Mapping[str, Any]]) -> dict[str, Any]:
        """JSON Patch (``add``/``replace``/``remove``) on top-level and nested paths."""
        doc = copy.deepcopy(self.get(seg_id))
        for i, op in enumerate(ops):
            path = [p.replace("~1", "/").replace("~0", "~") for p in str(op.get("path", "")).split("/")[1:]]
            if not path or op.get("op") not in {"add", "replace", "remove"}:
                raise InvalidInput("Each patch op needs op add|replace|remove and a path", path=f"[{i}]")
            target: Any = doc
            for part in path[:-1]:
                target = target.setdefault(part, {})
            if op["op"] == "remove":
                target.pop(path[-1], None)
            else:
                target[path[-1]] = op.get("value")
        return self.update(seg_id, {k: doc[k] for k in _EDITABLE if k in doc})

    def delete(self, seg_id: str, *, in_use: bool = False) -> None:
        self.get(seg_id)
        if in_use:
            raise Conflict(
                f"Segment definition {seg_id} is activated to a destination; remove it there first"
            )
        for other in self.all():
            if seg_id in other.get("dependencies", []):
                raise Conflict(f"Segment definition {seg_id} is used by {other['id']} through inSegment")
        self._all = None
        self._store.write(WriteBatch().delete(DEFINITIONS, seg_id))


def dependency_order(docs: builtins.list[dict[str, Any]]) -> builtins.list[builtins.list[dict[str, Any]]]:
    """Group definitions in levels so that each only depends on earlier levels (or outside ones).

    >>> a = {"id": "a", "dependencies": []}; b = {"id": "b", "dependencies": ["a"]}
    >>> [[d["id"] for d in level] for level in dependency_order([b, a])]
    [['a'], ['b']]
    """
    ids = {d["id"] for d in docs}
    remaining = {d["id"]: d for d in docs}
    done: set[str] = set()
    levels: builtins.list[builtins.list[dict[str, Any]]] = []
    while remaining:
        level = [
            d
            for d in remaining.values()
            if all(dep in done or dep not in ids for dep in d.get("dependencies", []))
        ]
        if not level:  # a cycle slipped in: evaluate the rest together rather than loop
            level = list(remaining.values())
        level.sort(key=lambda d: d["id"])
        for d in level:
            remaining.pop(d["id"])
            done.add(d["id"])
        levels.append(level)
    return levels


__all__ = ["DEFINITIONS", "Definitions", "dependency_order", "normalise_evaluation_info"]
