"""Audiences (``spec/aep.md`` §b8): segment definitions and external audiences with a lifecycle.

A segment-definition audience is the definition itself (its ``lifecycleState`` lives on it); an
external audience is a list of identities uploaded once, resolved to profiles, and stored as
``realized`` memberships so that ``inSegment`` and exports see it like any other audience.
"""

from __future__ import annotations

import builtins
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tessera.errors import Conflict, InvalidInput, NotFound
from tessera.model import Identity, utcnow
from tessera.segments import memberships as ms
from tessera.store import WriteBatch, get_json, scan_json

if TYPE_CHECKING:
    from tessera.platform import Sandbox
    from tessera.segments.service import SegmentService

AUDIENCES = "audiences"
EXTERNAL_TTL_DAYS = 30
"""Memberships of an uploaded audience are valid this long after its last (re)publication."""
MOVES = {"draft": {"published"}, "published": {"inactive"}, "inactive": {"published"}}


class Audiences:
    """The ``/audiences`` resource over definitions and external audiences."""

    def __init__(self, sandbox: Sandbox, segments: SegmentService) -> None:
        self._sandbox = sandbox
        self._segments = segments

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A segment-definition audience (body with ``expression``; starts as draft) or an external one.

        External body: ``{"name", "originName": "CUSTOM_UPLOAD", "identities": [{"namespace", "id"}]}``.
        """
        if "expression" in body:
            return self._as_audience(self._segments.create({"lifecycleState": "draft", **dict(body)}))
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("An audience needs a name", path="name")
        identities = self._identities(body.get("identities"))
        now = int(time.time() * 1000)
        doc: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "name": name.strip(),
            "description": str(body.get("description", "")),
            "type": "ExternalSegment",
            "originName": str(body.get("originName", "CUSTOM_UPLOAD")),
            "namespace": "CustomerAudienceUpload",
            "lifecycleState": str(body.get("lifecycleState", "draft")),
            "identities": [i.to_json() for i in identities],
            "creationTime": now,
            "updateTime": now,
            "createEpoch": now // 1000,
            "updateEpoch": now // 1000,
            "labels": list(body.get("labels") or []),
            # the reference: externally generated audiences expire after 30 days unless refreshed
            "ttlInDays": EXTERNAL_TTL_DAYS,
        }
        if doc["lifecycleState"] not in MOVES:
            raise InvalidInput("lifecycleState must be draft, published or inactive", path="lifecycleState")
        self._sandbox.store.write(WriteBatch().put_json(AUDIENCES, doc["id"], doc))
        if doc["lifecycleState"] == "published":
            self._materialise(doc)
        return doc

    @staticmethod
    def _identities(raw: Any) -> builtins.list[Identity]:
        if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
            raise InvalidInput("identities must be a list of {namespace, id}", path="identities")
        out = []
        for i, item in enumerate(raw):
            if not isinstance(item, Mapping) or not item.get("namespace") or not item.get("id"):
                raise InvalidInput("each identity needs a namespace and an id", path=f"identities[{i}]")
            out.append(Identity(str(item["namespace"]), str(item["id"])))
        return out

    def _as_audience(self, definition: dict[str, Any]) -> dict[str, Any]:
        return {
            **definition,
            "audienceId": definition["id"],
            "type": "SegmentDefinition",
            "originName": "REAL_TIME_CUSTOMER_PROFILE",
            "namespace": "AEPSegments",
            "lifecycleState": definition.get("lifecycleState", "published"),
        }

    def get(self, audience_id: str) -> dict[str, Any]:
        doc = get_json(self._sandbox.store, AUDIENCES, audience_id)
        if doc is not None:
            result: dict[str, Any] = doc
            return result
        try:
            return self._as_audience(self._segments.definitions.get(audience_id))
        except NotFound:
            raise NotFound(f"Audience {audience_id} does not exist", path="id") from None

    def list(self) -> builtins.list[dict[str, Any]]:
        external = [doc for _, doc in scan_json(self._sandbox.store, AUDIENCES)]
        return [*(self._as_audience(d) for d in self._segments.definitions.all()), *external]

    def set_state(self, audience_id: str, state: str) -> dict[str, Any]:
        """Move an audience through draft → published ⇄ inactive."""
        doc = self.get(audience_id)
        current = doc.get("lifecycleState", "published")
        if state != current and state not in MOVES.get(current, set()):
            raise Conflict(f"A {current} audience cannot become {state}", path="lifecycleState")
        if doc["type"] == "SegmentDefinition":
            return self._as_audience(
                self._segments.definitions.update(audience_id, {"lifecycleState": state})
            )
        doc["lifecycleState"] = state
        doc["updateTime"] = int(time.time() * 1000)
        self._sandbox.store.write(WriteBatch().put_json(AUDIENCES, audience_id, doc))
        if state == "published":
            self._materialise(doc)
        elif state == "inactive":
            self._exit_all(audience_id)
        return doc

    def replace(self, audience_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT``: a definition audience takes the body's editable fields (re-validated); an
        external one its name, description, labels and identities (members follow the new list)."""
        doc = self.get(audience_id)
        if doc["type"] == "SegmentDefinition":
            from tessera.segments.definitions import _EDITABLE

            changes = {k: v for k, v in body.items() if k in _EDITABLE}
            return self._as_audience(self._segments.definitions.update(audience_id, changes))
        name = body.get("name", doc["name"])
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("An audience needs a name", path="name")
        identities = self._identities(body.get("identities", doc["identities"]))
        labels = body.get("labels", doc.get("labels", []))
        if not isinstance(labels, list):
            raise InvalidInput("labels must be an array", path="labels")
        now = int(time.time() * 1000)
        doc.update(
            name=name.strip(),
            description=str(body.get("description", doc.get("description", ""))),
            identities=[i.to_json() for i in identities],
            labels=labels,
            updateTime=now,
            updateEpoch=now // 1000,
        )
        self._sandbox.store.write(WriteBatch().put_json(AUDIENCES, audience_id, doc))
        if doc["lifecycleState"] == "published":
            self._exit_all(audience_id, keep=self._profile_ids(doc))
            self._materialise(doc)
        return doc

    def _profile_ids(self, doc: Mapping[str, Any]) -> set[str]:
        return {
            self._sandbox.identity.profile_id_of(Identity(i["namespace"], i["id"]), self._sandbox.store)
            for i in doc["identities"]
        }

    def _materialise(self, doc: dict[str, Any]) -> None:
        now = utcnow()
        pids = self._profile_ids(doc)
        with self._sandbox.write_lock:
            wb = WriteBatch()
            changes = []
            rounds = ms.rounds(self._sandbox.store)
            for pid in sorted(pids):
                ups = ms.read(self._sandbox.store, pid, rounds)
                old = ups.get(doc["id"])
                new = ms.transition(old, True, now, ttl_days=int(doc.get("ttlInDays") or EXTERNAL_TTL_DAYS))
                if new is not None:
                    change = ms.apply(ups, pid, doc["id"], old, new, now)
                    ms.write(wb, pid, ups, current=rounds)
                    if change.status != change.previous:
                        changes.append(change)
            self._segments._emit(self._sandbox.store, wb, changes)
            self._sandbox.store.write(wb)

    def _exit_all(self, audience_id: str, keep: set[str] | frozenset[str] = frozenset()) -> None:
        now = utcnow()
        with self._sandbox.write_lock:
            wb = WriteBatch()
            changes = []
            rounds = ms.rounds(self._sandbox.store)
            for pid, ups in list(ms.scan_profiles(self._sandbox.store)):
                rec = ups.get(audience_id)
                if rec is not None and pid not in keep and rec.get("status") in ms.IN:
                    new = ms.transition(rec, False, now)
                    assert new is not None
                    changes.append(ms.apply(ups, pid, audience_id, rec, new, now))
                    ms.write(wb, pid, ups, current=rounds)
            self._segments._emit(self._sandbox.store, wb, changes)
            self._sandbox.store.write(wb)

    def delete(self, audience_id: str) -> None:
        doc = self.get(audience_id)
        if doc["type"] == "SegmentDefinition":
            self._segments.delete(audience_id)
            return
        self._exit_all(audience_id)
        self._sandbox.store.write(WriteBatch().delete(AUDIENCES, audience_id))


__all__ = ["AUDIENCES", "Audiences"]
