"""Computed attributes (``spec/aep.md`` §a5, §b10): PQL aggregations over a lookback of events.

Values are kept current in streaming (recomputed with the profile's segments, and when an event
leaves the lookback, through the same due queue), stored per profile, visible to segments as
``computedAttributes.<name>`` and readable through :meth:`ComputedAttributes.values_of`.
"""

from __future__ import annotations

import builtins
import re
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from tessera.errors import Conflict, InvalidInput, NotFound
from tessera.model import format_time, parse_time
from tessera.segments.engine import Compiled, Engine
from tessera.store import PointStore, WriteBatch, get_json, key, scan_json
from tessera.store.base import KEY_SEP, may_have_rows

ATTRIBUTES = "computed_attributes"
VALUES = "computed_values"
FIELD = "computedAttributes"
_LIMITS = {
    "HOURS": (24, timedelta(hours=1)),
    "DAYS": (7, timedelta(days=1)),
    "WEEKS": (4, timedelta(weeks=1)),
    "MONTHS": (6, timedelta(days=31)),
}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
STATES = ("DRAFT", "PUBLISHED", "INACTIVE")


def lookback(duration: Mapping[str, Any]) -> timedelta:
    """The lookback of a ``duration`` object (months count as 31 days).

    >>> lookback({"count": 7, "unit": "DAYS"})
    datetime.timedelta(days=7)
    """
    unit = str(duration.get("unit", "")).upper()
    count = duration.get("count")
    if unit not in _LIMITS:
        raise InvalidInput("duration.unit must be HOURS, DAYS, WEEKS or MONTHS", path="duration.unit")
    top, step = _LIMITS[unit]
    if not isinstance(count, int) or not 1 <= count <= top:
        raise InvalidInput(f"duration.count for {unit} must be between 1 and {top}", path="duration.count")
    return count * step


def event_time(event: Mapping[str, Any]) -> datetime | None:
    raw = event.get("timestamp")
    if raw is None:
        return None
    try:
        return parse_time(raw)
    except (TypeError, ValueError):
        return None


class ComputedAttributes:
    """CRUD of computed-attribute definitions and evaluation of their values."""

    def __init__(self, store: PointStore, engine: Engine) -> None:
        self._store = store
        self._engine = engine
        self._cache: dict[tuple[str, int], Compiled] = {}
        self._active: builtins.list[tuple[dict[str, Any], Compiled, timedelta]] | None = None
        """Active attributes as last read; every write through this object drops it."""

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidInput("name must start with a letter and use letters, digits and _", path="name")
        if any(d["name"] == name for d in self.list()):
            raise Conflict(f"A computed attribute named {name!r} already exists", path="name")
        expr = body.get("expression") or {}
        if not isinstance(expr.get("value"), str):
            raise InvalidInput("expression.value must be a PQL string", path="expression")
        fmt = expr.get("format", "pql/text")
        self._engine.compile(fmt, expr["value"], boolean=False)
        lookback(body.get("duration") or {})
        status = str(body.get("status", "DRAFT")).upper()
        if status not in STATES[:2]:
            raise InvalidInput("status must be DRAFT or PUBLISHED", path="status")
        now = int(time.time() * 1000)
        doc: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "name": name,
            "displayName": str(body.get("displayName", name)),
            "description": str(body.get("description", "")),
            "expression": {"type": "PQL", "format": fmt, "value": expr["value"]},
            "duration": dict(body["duration"]),
            "path": f"{FIELD}.{name}",
            "keepCurrent": True,
            "status": status,
            "version": 1,
            "createEpoch": now // 1000,
            "updateEpoch": now // 1000,
        }
        self._active = None
        self._store.write(WriteBatch().put_json(ATTRIBUTES, doc["id"], doc))
        return doc

    def get(self, ca_id: str) -> dict[str, Any]:
        doc = get_json(self._store, ATTRIBUTES, ca_id)
        if doc is None:
            raise NotFound(f"Computed attribute {ca_id} does not exist", path="id")
        result: dict[str, Any] = doc
        return result

    def list(self) -> builtins.list[dict[str, Any]]:
        return [doc for _, doc in scan_json(self._store, ATTRIBUTES)]

    def set_status(self, ca_id: str, status: str) -> dict[str, Any]:
        """Lifecycle DRAFT → PUBLISHED → INACTIVE (a published attribute's expression is frozen)."""
        doc = self.get(ca_id)
        status = status.upper()
        allowed = {
            "DRAFT": {"PUBLISHED", "DRAFT"},
            "PUBLISHED": {"INACTIVE", "PUBLISHED"},
            "INACTIVE": {"INACTIVE"},
        }
        if status not in allowed[doc["status"]]:
            raise Conflict(f"A {doc['status']} computed attribute cannot become {status}", path="status")
        doc["status"] = status
        doc["updateEpoch"] = int(time.time())
        self._active = None
        self._store.write(WriteBatch().put_json(ATTRIBUTES, ca_id, doc))
        return doc

    def delete(self, ca_id: str) -> None:
        self.get(ca_id)
        self._active = None
        wb = WriteBatch().delete(ATTRIBUTES, ca_id)
        for k, _ in self._store.scan(VALUES):
            if k.endswith(KEY_SEP + ca_id):
                wb.delete(VALUES, k)
        self._store.write(wb)

    def active(self) -> builtins.list[tuple[dict[str, Any], Compiled, timedelta]]:
        """Non-inactive attributes with their compiled expression and lookback (cached in process)."""
        if self._active is not None:
            return self._active
        out = []
        for doc in self.list():
            if doc["status"] == "INACTIVE":
                continue
            cache_key = (doc["id"], doc["version"])
            compiled = self._cache.get(cache_key)
            if compiled is None:
                compiled = self._cache[cache_key] = self._engine.compile(
                    doc["expression"]["format"], doc["expression"]["value"], boolean=False
                )
            out.append((doc, compiled, lookback(doc["duration"])))
        self._active = out
        return out

    @staticmethod
    def compute(
        active: builtins.list[tuple[dict[str, Any], Compiled, timedelta]],
        attributes: dict[str, Any],
        events: builtins.list[dict[str, Any]],
        now: datetime,
    ) -> dict[str, Any]:
        """``{name: value}`` of every active attribute for one profile at ``now``."""
        out: dict[str, Any] = {}
        for doc, compiled, window in active:
            start = now - window
            recent = [e for e in events if (t := event_time(e)) is not None and start <= t <= now]
            out[doc["name"]] = (compiled.value or compiled.predicate)(attributes, recent, now, {})
        return out

    def store_values(
        self,
        store: PointStore,
        wb: WriteBatch,
        profile_id: str,
        values: Mapping[str, Any],
        now: datetime,
        active: builtins.list[tuple[dict[str, Any], Compiled, timedelta]],
    ) -> None:
        for doc, _, _ in active:
            value = values.get(doc["name"])
            k = key(profile_id, doc["id"])
            old = get_json(store, VALUES, k)
            if old is None or old.get("value") != value:
                wb.put_json(VALUES, k, {"value": value, "time": format_time(now), "name": doc["name"]})

    def any_values(self, store: PointStore | None = None) -> bool:
        """Whether any profile has a stored computed value."""
        return may_have_rows(store or self._store, VALUES)

    def values_of(self, profile_id: str, store: PointStore | None = None) -> dict[str, Any]:
        """``{name: value}`` stored for a profile (lookups show it under ``computedAttributes``)."""
        return {
            doc["name"]: doc["value"]
            for _, doc in scan_json(store or self._store, VALUES, key(profile_id, ""))
        }


__all__ = ["ATTRIBUTES", "FIELD", "VALUES", "ComputedAttributes", "event_time", "lookback"]
