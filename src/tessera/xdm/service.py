"""The schema registry of one sandbox, persisted in its point store, and ingest plans.

An :class:`IngestPlan` is everything the flow needs to take one record of a schema: key
normalisation, the compiled validator, how to find identities, and whether it is an event.
Plans are compiled once per schema version and cached.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from tessera.errors import NotFound
from tessera.model import Identity
from tessera.store import WriteBatch
from tessera.xdm.identities import record_identities
from tessera.xdm.paths import is_namespaced, normalize_keys
from tessera.xdm.schemas import IdentityDescriptor, SchemaRegistry, is_event_schema
from tessera.xdm.standard import EXPERIENCE_EVENT, PROFILE
from tessera.xdm.validate import ValidationIssue

if TYPE_CHECKING:
    from tessera.platform import Sandbox

REGISTRY = "schema_registry"

STANDARD_PROFILE_SCHEMA = "Tessera Profile"
STANDARD_EVENT_SCHEMA = "Tessera ExperienceEvent"
TENANT_PROFILE_GROUP = "Tessera Loyalty and Preferences"
TENANT_EVENT_GROUP = "Tessera Channel Details"


@dataclass(frozen=True)
class Problem:
    """A validation problem as the flow reports it."""

    message: str
    path: str


@dataclass
class IngestPlan:
    """How to take one record of a schema."""

    schema_id: str
    is_event: bool
    descriptors: tuple[IdentityDescriptor, ...]
    _validate: Callable[[dict[str, Any]], list[ValidationIssue]]

    def normalize(self, record: dict[str, Any]) -> dict[str, Any]:
        """Accept both key spellings (``xdm:person`` / ``person``, ``@id`` / ``_id``)."""
        if is_namespaced(record):
            normalized: dict[str, Any] = normalize_keys(record)
            return normalized
        return record

    def validate(self, record: dict[str, Any]) -> list[Problem]:
        return [Problem(issue.message, issue.path) for issue in self._validate(record)]

    def identities(
        self, record: dict[str, Any], identity_source: Any = None
    ) -> tuple[list[Identity], Identity | None]:
        """The record's identities (descriptor fields, then ``identityMap``) and its declared primary."""
        found = record_identities(record, self.descriptors)
        identities = [f.identity for f in found]
        primary = next((f.identity for f in found if f.primary), None)
        return identities, primary


class SchemaService:
    """Classes, field groups, schemas and union schemas of one sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self._lock = threading.RLock()
        self._plans: dict[tuple[str, str], IngestPlan] = {}
        raw = sandbox.store.get(REGISTRY, "registry")
        self.registry = (
            SchemaRegistry.from_json(orjson.loads(raw)) if raw else SchemaRegistry(sandbox.settings.tenant)
        )

    def _save(self) -> None:
        self._sandbox.store.write(WriteBatch().put_json(REGISTRY, "registry", self.registry.to_json()))
        self._plans.clear()

    def change(self, action: Callable[[SchemaRegistry], Any]) -> Any:
        """Apply a registry change and persist it (roll back the in-memory copy on failure)."""
        with self._lock:
            snapshot = self.registry.to_json()
            try:
                result = action(self.registry)
                self._save()
            except BaseException:
                self.registry = SchemaRegistry.from_json(snapshot)
                raise
            return result

    def get(self, ref: str) -> dict[str, Any]:
        """A schema as the Schema Registry API shows it."""
        schema_json: dict[str, Any] = self.registry.get_schema(ref).to_json()
        return schema_json

    def exists(self, ref: str) -> bool:
        """Whether a schema with this ``$id``, ``meta:altId`` or title exists."""
        try:
            self.registry.get_schema(ref)
        except NotFound:
            return False
        return True

    def find(self, ref: str) -> dict[str, Any]:
        return self.get(ref)

    def resolved(self, ref: str) -> dict[str, Any]:
        resolved: dict[str, Any] = self.registry.resolve(ref)
        return resolved

    def union(self, class_ref: str = PROFILE) -> dict[str, Any]:
        union: dict[str, Any] = self.registry.union_schema(class_ref)
        return union

    def ingest_plan(self, schema_id: str) -> IngestPlan:
        schema = self.registry.get_schema(schema_id)
        cache_key = (schema.id, str(schema.version))
        plan = self._plans.get(cache_key)
        if plan is None:
            validator = self.registry.validator(schema.id)
            plan = IngestPlan(
                schema.id,
                is_event_schema(schema),
                self.registry.identity_descriptors(schema.id),
                validator.validate,
            )
            self._plans[cache_key] = plan
        return plan

    def ensure_standard_schemas(self) -> dict[str, str]:
        """Create (once) Tessera's standard Profile and ExperienceEvent schemas, Profile-enabled.

        They compose every standard field group a CDP needs plus the tenant groups the demo data
        uses (``_<tenant>.loyalty``, ``_<tenant>.channel``). Returns ``{"profile": id, "event": id}``.
        """

        def build(reg: SchemaRegistry) -> dict[str, str]:
            ids: dict[str, str] = {}
            for title, cls, groups, key in (
                (STANDARD_PROFILE_SCHEMA, PROFILE, self._profile_groups(reg), "profile"),
                (STANDARD_EVENT_SCHEMA, EXPERIENCE_EVENT, self._event_groups(reg), "event"),
            ):
                try:
                    ids[key] = reg.get_schema(title).id
                except NotFound:
                    ids[key] = reg.create_schema(title, cls, groups, profile_enabled=True).id
            return ids

        with self._lock:
            try:
                return {
                    "profile": self.registry.get_schema(STANDARD_PROFILE_SCHEMA).id,
                    "event": self.registry.get_schema(STANDARD_EVENT_SCHEMA).id,
                }
            except NotFound:
                result: dict[str, str] = self.change(build)
                return result

    def _profile_groups(self, reg: SchemaRegistry) -> list[str]:
        tenant = reg.tenant
        try:
            reg.get_field_group(TENANT_PROFILE_GROUP)
        except NotFound:
            reg.create_field_group(
                TENANT_PROFILE_GROUP,
                {
                    f"_{tenant}": {
                        "type": "object",
                        "properties": {
                            "loyalty": {
                                "type": "object",
                                "properties": {
                                    "tier": {
                                        "type": "string",
                                        "enum": ["bronze", "silver", "gold", "platinum"],
                                    },
                                    "points": {"type": "integer"},
                                    "memberSince": {"type": "string", "format": "date"},
                                },
                            },
                            "preferredStore": {"type": "string"},
                            "churnRisk": {"type": "number"},
                            "crm": {
                                "type": "object",
                                "properties": {
                                    "crmId": {"type": "string"},
                                    "ecid": {"type": "string"},
                                    "secondEcid": {"type": "string"},
                                    "loyaltyId": {"type": "string"},
                                },
                            },
                        },
                    }
                },
                classes=[PROFILE],
                description="Loyalty programme and store preferences",
            )
        return [
            "IdentityMap",
            "Demographic Details",
            "Personal Contact Details",
            "Work Contact Details",
            "Segment Membership Details",
            "Loyalty Details",
            "Consents and Preferences",
            "External Source System Audit Details",
            TENANT_PROFILE_GROUP,
        ]

    def _event_groups(self, reg: SchemaRegistry) -> list[str]:
        tenant = reg.tenant
        try:
            reg.get_field_group(TENANT_EVENT_GROUP)
        except NotFound:
            reg.create_field_group(
                TENANT_EVENT_GROUP,
                {
                    f"_{tenant}": {
                        "type": "object",
                        "properties": {
                            "channel": {"type": "string"},
                            "sessionId": {"type": "string"},
                            "store": {
                                "type": "object",
                                "properties": {"storeId": {"type": "string"}, "name": {"type": "string"}},
                            },
                            "callCenter": {
                                "type": "object",
                                "properties": {
                                    "reason": {"type": "string"},
                                    "durationSeconds": {"type": "integer"},
                                    "agentId": {"type": "string"},
                                },
                            },
                        },
                    }
                },
                classes=[EXPERIENCE_EVENT],
                description="Channel, store and contact-centre details of an event",
            )
        return [
            "IdentityMap",
            "Commerce Details",
            "Web Details",
            "Environment Details",
            "External Source System Audit Details",
            TENANT_EVENT_GROUP,
        ]
