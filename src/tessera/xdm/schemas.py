"""XDM classes, field groups, schemas and identity descriptors, and the in-memory registry.

Everything here is pure: a :class:`SchemaRegistry` is built from and dumped to plain JSON dicts
(:meth:`SchemaRegistry.to_json` / :meth:`SchemaRegistry.from_json`) and the caller persists it
(one per sandbox). Objects serialise in the reference platform's Schema Registry shape
(``$id``, ``meta:altId``, ``title``, ``meta:class``, ``allOf``, ``meta:extends``, ``version``) so
the REST API can serve them as they are; field groups and schemas are served resolved
(``properties`` written out, the ``xed-full`` form).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from tessera.errors import Conflict, InvalidInput, NotFound, SemanticError
from tessera.xdm.errors import BreakingSchemaChange
from tessera.xdm.fields import Node, breaking_changes, check_field_schema, find_field, merge_properties
from tessera.xdm.paths import split_path
from tessera.xdm.standard import (
    EXPERIENCE_EVENT,
    PROFILE,
    RECORD_BEHAVIOR,
    TIME_SERIES_BEHAVIOR,
    alt_id,
    standard_classes,
    standard_field_groups,
)
from tessera.xdm.validate import RecordValidator

Behavior = Literal["record", "time-series"]
_BEHAVIOR_IDS = {"record": RECORD_BEHAVIOR, "time-series": TIME_SERIES_BEHAVIOR}


@dataclass(frozen=True)
class XdmClass:
    """An XDM class: the behaviour (record or time series) and the fields every schema of it has."""

    id: str
    title: str
    behavior: Behavior
    properties: dict[str, Node]
    required: tuple[str, ...] = ()
    description: str = ""
    alt_id: str = ""
    version: str = "1.0"

    def __post_init__(self) -> None:
        if not self.alt_id:
            object.__setattr__(self, "alt_id", alt_id(self.id))

    def to_json(self) -> dict[str, Any]:
        """AEP-shaped class body."""
        return {
            "$id": self.id,
            "meta:altId": self.alt_id or alt_id(self.id),
            "meta:resourceType": "classes",
            "version": self.version,
            "title": self.title,
            "description": self.description,
            "type": "object",
            "meta:abstract": True,
            "meta:extensible": True,
            "meta:extends": [_BEHAVIOR_IDS[self.behavior]],
            "meta:behaviorType": self.behavior,
            "properties": copy.deepcopy(self.properties),
            "required": list(self.required),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> XdmClass:
        behavior = data.get("meta:behaviorType") or data.get("behavior") or "record"
        if behavior not in _BEHAVIOR_IDS:
            raise InvalidInput(
                f"class behavior must be 'record' or 'time-series', got {behavior!r}", path="behavior"
            )
        return cls(
            id=data["$id"],
            title=data["title"],
            behavior="time-series" if behavior == "time-series" else "record",
            properties=copy.deepcopy(data.get("properties", {})),
            required=tuple(data.get("required", ())),
            description=data.get("description", ""),
            alt_id=data.get("meta:altId", "") or alt_id(data["$id"]),
            version=str(data.get("version", "1.0")),
        )


@dataclass(frozen=True)
class FieldGroup:
    """A reusable block of fields for one or more classes. ``tenant`` is ``None`` for built-ins."""

    id: str
    title: str
    properties: dict[str, Node]
    classes: tuple[str, ...] = ()
    description: str = ""
    alt_id: str = ""
    version: str = "1.0"
    tenant: str | None = None

    def __post_init__(self) -> None:
        if not self.alt_id:
            object.__setattr__(self, "alt_id", alt_id(self.id))

    def to_json(self) -> dict[str, Any]:
        """AEP-shaped field group body (resolved: ``properties`` written out)."""
        body: dict[str, Any] = {
            "$id": self.id,
            "meta:altId": self.alt_id or alt_id(self.id),
            "meta:resourceType": "mixins",
            "version": self.version,
            "title": self.title,
            "description": self.description,
            "type": "object",
            "meta:intendedToExtend": list(self.classes),
            "properties": copy.deepcopy(self.properties),
        }
        if self.tenant is not None:
            body["meta:tenantNamespace"] = f"_{self.tenant}"
        return body

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FieldGroup:
        """Read the resolved form or AEP's ``definitions`` + ``allOf`` form."""
        props: dict[str, Node] = copy.deepcopy(data.get("properties", {}))
        for part in data.get("allOf", ()):
            ref = part.get("$ref", "") if isinstance(part, dict) else ""
            if ref.startswith("#/definitions/"):
                definition = data.get("definitions", {}).get(ref.removeprefix("#/definitions/"), {})
                props = merge_properties(props, definition.get("properties", {}))
        tenant = data.get("meta:tenantNamespace")
        return cls(
            id=data["$id"],
            title=data["title"],
            properties=props,
            classes=tuple(data.get("meta:intendedToExtend", ())),
            description=data.get("description", ""),
            alt_id=data.get("meta:altId", "") or alt_id(data["$id"]),
            version=str(data.get("version", "1.0")),
            tenant=tenant.removeprefix("_") if isinstance(tenant, str) else None,
        )


@dataclass(frozen=True)
class IdentityDescriptor:
    """Marks one schema field as an identity of a namespace (``spec/aep.md`` §a10).

    Attributes:
        path: dotted field path, e.g. ``personalEmail.address`` or ``_acme.loyaltyId``.
        namespace: identity namespace code, e.g. ``Email`` (case-sensitive).
        primary: whether this is the schema's primary identity (at most one per schema).
    """

    path: str
    namespace: str
    primary: bool = False

    def to_json(self, schema_id: str = "", schema_version: int = 1) -> dict[str, Any]:
        """AEP descriptor body (``xdm:descriptorIdentity``)."""
        return {
            "@type": "xdm:descriptorIdentity",
            "xdm:sourceSchema": schema_id,
            "xdm:sourceVersion": schema_version,
            "xdm:sourceProperty": "/" + "/".join(split_path(self.path)),
            "xdm:namespace": self.namespace,
            "xdm:property": "xdm:code",
            "xdm:isPrimary": self.primary,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IdentityDescriptor:
        """Read an AEP descriptor body or the short ``{"path", "namespace", "primary"}`` form."""
        path = data.get("path") or data.get("xdm:sourceProperty")
        namespace = data.get("namespace") or data.get("xdm:namespace")
        if not isinstance(path, str) or not split_path(path):
            raise InvalidInput("an identity descriptor needs a field path", path="xdm:sourceProperty")
        if not isinstance(namespace, str) or not namespace:
            raise InvalidInput("an identity descriptor needs a namespace code", path="xdm:namespace")
        primary = data.get("primary", data.get("xdm:isPrimary", False))
        return cls(path=".".join(split_path(path)), namespace=namespace, primary=bool(primary))


@dataclass(frozen=True)
class Schema:
    """A schema: one class plus field groups, with identity descriptors and Profile enablement."""

    id: str
    title: str
    class_id: str
    field_groups: tuple[str, ...] = ()
    identities: tuple[IdentityDescriptor, ...] = ()
    profile_enabled: bool = False
    description: str = ""
    alt_id: str = ""
    version: str = "1.0"

    def __post_init__(self) -> None:
        if not self.alt_id:
            object.__setattr__(self, "alt_id", alt_id(self.id))

    @property
    def primary_identity(self) -> IdentityDescriptor | None:
        """The primary identity descriptor, if any."""
        return next((d for d in self.identities if d.primary), None)

    def to_json(self) -> dict[str, Any]:
        """AEP-shaped schema body, with its identity descriptors under ``meta:identityDescriptors``."""
        body: dict[str, Any] = {
            "$id": self.id,
            "meta:altId": self.alt_id or alt_id(self.id),
            "meta:resourceType": "schemas",
            "version": self.version,
            "title": self.title,
            "description": self.description,
            "type": "object",
            "meta:class": self.class_id,
            "allOf": [{"$ref": ref} for ref in (self.class_id, *self.field_groups)],
            "meta:extends": [self.class_id, *self.field_groups],
            "meta:immutableTags": ["union"] if self.profile_enabled else [],
            "meta:identityDescriptors": [d.to_json(self.id, _major(self.version)) for d in self.identities],
        }
        return body

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schema:
        class_id = data.get("meta:class")
        refs = [p["$ref"] for p in data.get("allOf", ()) if isinstance(p, dict) and "$ref" in p]
        if not class_id and refs:
            class_id = refs[0]
        if not isinstance(class_id, str):
            raise InvalidInput("a schema needs a class (meta:class)", path="meta:class")
        return cls(
            id=data["$id"],
            title=data["title"],
            class_id=class_id,
            field_groups=tuple(r for r in refs if r != class_id),
            identities=tuple(
                IdentityDescriptor.from_json(d) for d in data.get("meta:identityDescriptors", ())
            ),
            profile_enabled="union" in data.get("meta:immutableTags", ()),
            description=data.get("description", ""),
            alt_id=data.get("meta:altId", "") or alt_id(data["$id"]),
            version=str(data.get("version", "1.0")),
        )


def _major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 1


def _bump(version: str) -> str:
    major, _, minor = version.partition(".")
    return f"{major}.{int(minor or 0) + 1}"


def is_event_schema(schema: Schema) -> bool:
    """Whether records of ``schema`` are ExperienceEvents (time series)."""
    return schema.class_id == EXPERIENCE_EVENT


def is_profile_schema(schema: Schema) -> bool:
    """Whether records of ``schema`` are Individual Profile records."""
    return schema.class_id == PROFILE


def identity_fields(schema: Schema) -> tuple[IdentityDescriptor, ...]:
    """The identity descriptors of ``schema`` (path, namespace, primary), primary first."""
    return tuple(sorted(schema.identities, key=lambda d: not d.primary))


@dataclass
class SchemaRegistry:
    """The schema registry of one sandbox: built-in classes and field groups plus tenant ones.

    Pure and in memory; :meth:`to_json` / :meth:`from_json` round-trip everything the tenant
    created (built-ins are not dumped: they come with the code). Look-ups accept a ``$id``, a
    ``meta:altId`` or a title.

    Args:
        tenant: the tenant id; custom fields live under ``_<tenant>``.

    >>> reg = SchemaRegistry("acme")
    >>> s = reg.create_schema("Customers", "_xdm.context.profile", ["IdentityMap", "Demographic Details"])
    >>> sorted(reg.resolve(s.id)["properties"])[:3]
    ['_id', '_repo', 'identityMap']
    """

    tenant: str = "tessera"
    _classes: dict[str, XdmClass] = field(default_factory=dict, repr=False)
    _field_groups: dict[str, FieldGroup] = field(default_factory=dict, repr=False)
    _schemas: dict[str, Schema] = field(default_factory=dict, repr=False)
    _validators: dict[tuple[str, str, bool, bool], RecordValidator] = field(
        default_factory=dict, repr=False, compare=False
    )
    _unions: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.tenant or not self.tenant.replace("_", "").isalnum():
            raise InvalidInput(
                f"tenant id must be letters, digits and '_', got {self.tenant!r}", path="tenant"
            )
        for c in standard_classes():
            xc = XdmClass.from_json({**c, "meta:behaviorType": c["behavior"]})
            self._classes.setdefault(xc.id, xc)
        for g in standard_field_groups():
            fg = FieldGroup(g["$id"], g["title"], g["properties"], tuple(g["classes"]), g["description"])
            self._field_groups.setdefault(fg.id, fg)

    # ---- persistence -------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """Everything the tenant created, as plain JSON (feed it back to :meth:`from_json`)."""
        return {
            "tenant": self.tenant,
            "fieldGroups": [g.to_json() for g in self._field_groups.values() if g.tenant is not None],
            "schemas": [s.to_json() for s in self._schemas.values()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SchemaRegistry:
        """Rebuild a registry dumped by :meth:`to_json`."""
        reg = cls(str(data.get("tenant", "tessera")))
        for g in data.get("fieldGroups", ()):
            fg = FieldGroup.from_json(g)
            reg._field_groups[fg.id] = replace(fg, tenant=fg.tenant or reg.tenant)
        for s in data.get("schemas", ()):
            schema = Schema.from_json(s)
            reg._schemas[schema.id] = schema
        for schema in reg._schemas.values():
            try:
                reg._check_schema(schema)
            except NotFound as exc:
                raise InvalidInput(
                    f"schema {schema.title!r} refers to a missing class or field group", path=exc.path
                ) from exc
        return reg

    # ---- look-ups ----------------------------------------------------------------------
    def _find(self, table: dict[str, Any], ref: str, kind: str) -> Any:
        if ref in table:
            return table[ref]
        for obj in table.values():
            if ref in (obj.alt_id or alt_id(obj.id), obj.title):
                return obj
        raise NotFound(f"no {kind} {ref!r} in this sandbox", path=ref)

    def list_classes(self) -> list[XdmClass]:
        """All classes."""
        return list(self._classes.values())

    def get_class(self, ref: str) -> XdmClass:
        """One class by ``$id``, ``meta:altId`` or title; :class:`NotFound` otherwise."""
        return self._find(self._classes, ref, "class")  # type: ignore[no-any-return]

    def list_field_groups(self, class_ref: str | None = None) -> list[FieldGroup]:
        """All field groups, or those usable with one class."""
        groups = list(self._field_groups.values())
        if class_ref is None:
            return groups
        class_id = self.get_class(class_ref).id
        return [g for g in groups if not g.classes or class_id in g.classes]

    def get_field_group(self, ref: str) -> FieldGroup:
        """One field group by ``$id``, ``meta:altId`` or title; :class:`NotFound` otherwise."""
        return self._find(self._field_groups, ref, "field group")  # type: ignore[no-any-return]

    def list_schemas(self, class_ref: str | None = None) -> list[Schema]:
        """All schemas, or those of one class."""
        schemas = list(self._schemas.values())
        if class_ref is None:
            return schemas
        class_id = self.get_class(class_ref).id
        return [s for s in schemas if s.class_id == class_id]

    def get_schema(self, ref: str) -> Schema:
        """One schema by ``$id``, ``meta:altId`` or title; :class:`NotFound` otherwise."""
        return self._find(self._schemas, ref, "schema")  # type: ignore[no-any-return]

    def behavior(self, schema_ref: str) -> Behavior:
        """``record`` (profile-like) or ``time-series`` (events) for a schema."""
        return self.get_class(self.get_schema(schema_ref).class_id).behavior

    # ---- tenant field groups ------------------------------------------------------------
    def _tenant_properties(self, properties: dict[str, Any]) -> dict[str, Node]:
        if not isinstance(properties, dict) or not properties:
            raise InvalidInput("a field group needs at least one field", path="properties")
        root = f"_{self.tenant}"
        if root in properties:
            if len(properties) > 1:
                others = ", ".join(sorted(k for k in properties if k != root))
                raise InvalidInput(
                    f"custom fields must all be under {root}; move {others} there", path="properties"
                )
            if not isinstance(properties[root], dict) or properties[root].get("type") != "object":
                raise InvalidInput(f"{root} must be an object holding the custom fields", path=root)
        else:
            # Custom fields always live under the tenant object (spec/aep.md §a10).
            properties = {root: {"type": "object", "properties": properties}}
        check_field_schema({"type": "object", "properties": properties})
        return copy.deepcopy(properties)

    def _unique_title(self, table: dict[str, Any], title: str, kind: str, own_id: str | None = None) -> None:
        if not isinstance(title, str) or not title.strip():
            raise InvalidInput(f"a {kind} needs a title", path="title")
        for obj in table.values():
            if obj.title == title and obj.id != own_id:
                raise Conflict(f"a {kind} titled {title!r} already exists", path="title")

    def create_field_group(
        self,
        title: str,
        properties: dict[str, Any],
        *,
        classes: Sequence[str] = (PROFILE, EXPERIENCE_EVENT),
        description: str = "",
    ) -> FieldGroup:
        """Create a tenant field group.

        Args:
            title: unique title.
            properties: field definitions (resolved JSON Schema ``properties``). Fields not already
                under ``_<tenant>`` are placed there.
            classes: the classes it may be used with (refs).
            description: free text.

        Raises:
            InvalidInput: a field definition is malformed (``path`` names it).
            Conflict: the title is taken.
        """
        self._unique_title(self._field_groups, title, "field group")
        props = self._tenant_properties(properties)
        class_ids = tuple(self.get_class(c).id for c in classes)
        gid = f"https://ns.adobe.com/{self.tenant}/mixins/{uuid.uuid4().hex}"
        fg = FieldGroup(gid, title, props, class_ids, description, tenant=self.tenant)
        self._field_groups[fg.id] = fg
        return fg

    def update_field_group(
        self,
        ref: str,
        *,
        title: str | None = None,
        properties: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> FieldGroup:
        """Change a tenant field group; only additive changes if a Profile-enabled schema uses it.

        Raises:
            BreakingSchemaChange: a used-by-Profile field group would lose or retype a field.
        """
        old = self.get_field_group(ref)
        if old.tenant is None:
            raise SemanticError(f"built-in field group {old.title!r} cannot be changed", path=ref)
        new = old
        if title is not None:
            self._unique_title(self._field_groups, title, "field group", old.id)
            new = replace(new, title=title)
        if description is not None:
            new = replace(new, description=description)
        if properties is not None:
            new = replace(new, properties=self._tenant_properties(properties))
            if any(old.id in s.field_groups and s.profile_enabled for s in self._schemas.values()):
                _refuse_breaking(breaking_changes(old.properties, new.properties), old.title)
        new = replace(new, version=_bump(old.version))
        self._field_groups[old.id] = new
        try:
            for s in self._schemas.values():
                if old.id in s.field_groups:
                    self._compose(s)
                    if s.profile_enabled:
                        self.union_schema(s.class_id)
        except Exception:
            self._field_groups[old.id] = old
            raise
        self._validators.clear()
        return new

    def delete_field_group(self, ref: str) -> None:
        """Delete a tenant field group that no schema uses (:class:`Conflict` otherwise)."""
        fg = self.get_field_group(ref)
        if fg.tenant is None:
            raise SemanticError(f"built-in field group {fg.title!r} cannot be deleted", path=ref)
        users = [s.title for s in self._schemas.values() if fg.id in s.field_groups]
        if users:
            raise Conflict(f"field group {fg.title!r} is used by schema(s) {', '.join(users)}", path=ref)
        del self._field_groups[fg.id]

    # ---- schemas ---------------------------------------------------------------------------
    def _compose(self, schema: Schema) -> dict[str, Node]:
        cls = self.get_class(schema.class_id)
        props = copy.deepcopy(cls.properties)
        for ref in schema.field_groups:
            fg = self.get_field_group(ref)
            if fg.classes and cls.id not in fg.classes:
                raise InvalidInput(
                    f"field group {fg.title!r} cannot be used with class {cls.title!r}", path=ref
                )
            props = merge_properties(props, fg.properties)
        return props

    def _check_schema(self, schema: Schema) -> None:
        props = self._compose(schema)
        primaries = [d for d in schema.identities if d.primary]
        if len(primaries) > 1:
            raise InvalidInput("a schema has at most one primary identity", path=primaries[1].path)
        seen: set[str] = set()
        for d in schema.identities:
            node = find_field(props, d.path)
            if node is None:
                raise InvalidInput(f"identity field {d.path} is not in the schema", path=d.path)
            if node.get("type") != "string":
                raise InvalidInput(f"identity field {d.path} must be a string field", path=d.path)
            if d.path in seen:
                raise InvalidInput(f"identity field {d.path} has two descriptors", path=d.path)
            seen.add(d.path)
        if schema.profile_enabled and not primaries and "identityMap" not in props:
            raise SemanticError(
                "a schema needs a primary identity descriptor or the IdentityMap field group "
                "before it can be enabled for Profile",
                path="meta:immutableTags",
            )

    def _group_ids(self, refs: Sequence[str]) -> tuple[str, ...]:
        if isinstance(refs, str):  # one ref given where a list was meant
            refs = [refs]
        return tuple(dict.fromkeys(self.get_field_group(g).id for g in refs))

    def _identities(self, items: Any) -> tuple[IdentityDescriptor, ...]:
        out = []
        for d in items or ():
            out.append(d if isinstance(d, IdentityDescriptor) else IdentityDescriptor.from_json(d))
        return tuple(out)

    def create_schema(
        self,
        title: str,
        class_ref: str,
        field_groups: Sequence[str] = (),
        identities: Sequence[IdentityDescriptor | dict[str, Any]] = (),
        *,
        profile_enabled: bool = False,
        description: str = "",
    ) -> Schema:
        """Create a schema from a class and field groups (refs), with identity descriptors.

        Raises:
            InvalidInput: unknown/unsuitable field group, bad identity descriptor (``path`` set).
            Conflict: the title is taken, or two field groups define a field differently.
            SemanticError: Profile enablement without any primary identity.
        """
        self._unique_title(self._schemas, title, "schema")
        cls = self.get_class(class_ref)
        groups = self._group_ids(field_groups)
        sid = f"https://ns.adobe.com/{self.tenant}/schemas/{uuid.uuid4().hex}"
        schema = Schema(
            sid, title, cls.id, groups, self._identities(identities), profile_enabled, description
        )
        self._check_schema(schema)
        self._schemas[sid] = schema
        if profile_enabled:
            try:
                self.union_schema(cls.id)
            except Exception:
                del self._schemas[sid]
                raise
        return schema

    def update_schema(
        self,
        ref: str,
        *,
        title: str | None = None,
        description: str | None = None,
        field_groups: Sequence[str] | None = None,
        identities: list[IdentityDescriptor]
        | list[dict[str, Any]]
        | tuple[IdentityDescriptor, ...]
        | None = None,
        profile_enabled: bool | None = None,
    ) -> Schema:
        """Change a schema; once Profile-enabled only additive changes are accepted.

        Raises:
            BreakingSchemaChange: removing a field group or identity descriptor, changing the
                primary identity, or disabling Profile on a Profile-enabled schema.
        """
        old = self.get_schema(ref)
        new = old
        if title is not None:
            self._unique_title(self._schemas, title, "schema", old.id)
            new = replace(new, title=title)
        if description is not None:
            new = replace(new, description=description)
        if field_groups is not None:
            new = replace(new, field_groups=self._group_ids(field_groups))
        if identities is not None:
            new = replace(new, identities=self._identities(identities))
        if profile_enabled is not None:
            new = replace(new, profile_enabled=profile_enabled)
        if old.profile_enabled:
            problems: list[tuple[str, str]] = []
            if not new.profile_enabled:
                problems.append(
                    ("meta:immutableTags", "Profile cannot be disabled on a Profile-enabled schema")
                )
            for g in old.field_groups:
                if g not in new.field_groups:
                    problems.append((g, f"field group {self.get_field_group(g).title!r} removed"))
            for d in old.identities:
                if d not in new.identities:
                    problems.append((d.path, "identity descriptor removed or changed"))
            problems += breaking_changes(self._compose(old), self._compose(new))
            _refuse_breaking(problems, old.title)
        self._check_schema(new)
        new = replace(new, version=_bump(old.version))
        self._schemas[old.id] = new
        if new.profile_enabled:
            try:
                self.union_schema(new.class_id)
            except Exception:
                self._schemas[old.id] = old
                raise
        self._drop_validators(old.id)
        return new

    def delete_schema(self, ref: str) -> None:
        """Delete a schema (whether datasets still use it is the catalog's business)."""
        schema = self.get_schema(ref)
        del self._schemas[schema.id]
        self._drop_validators(schema.id)

    def identity_descriptors(self, ref: str) -> tuple[IdentityDescriptor, ...]:
        """The identity descriptors of a schema, primary first."""
        return identity_fields(self.get_schema(ref))

    # ---- resolved views ----------------------------------------------------------------
    def resolve(self, ref: str) -> dict[str, Any]:
        """The composed schema (class + field groups) as one resolved JSON Schema dict."""
        schema = self.get_schema(ref)
        cls = self.get_class(schema.class_id)
        return {
            "$id": schema.id,
            "meta:altId": schema.alt_id or alt_id(schema.id),
            "title": schema.title,
            "version": schema.version,
            "type": "object",
            "meta:class": cls.id,
            "meta:behaviorType": cls.behavior,
            "properties": self._compose(schema),
            "required": list(cls.required),
        }

    def union_schema(self, class_ref: str) -> dict[str, Any]:
        """The union of the class and all its Profile-enabled schemas, resolved (no ``$ref``).

        Raises:
            Conflict: two Profile-enabled schemas define one field path with different types.
        """
        cls = self.get_class(class_ref)
        members = [s for s in self._schemas.values() if s.class_id == cls.id and s.profile_enabled]
        # Everything a union is made of carries a version that changes with it: the same versions
        # give the same union. Composing one takes tens of milliseconds and every segment check
        # asks for it, so it is computed once per state (and shared: callers must not change it).
        state = (
            cls.id,
            cls.version,
            tuple(
                (s.id, s.version, tuple((g, self.get_field_group(g).version) for g in s.field_groups))
                for s in members
            ),
        )
        cached = self._unions.get(state)
        if cached is not None:
            return cached
        props = copy.deepcopy(cls.properties)
        for s in members:
            props = merge_properties(props, self._compose(s))
        if len(self._unions) >= 16:
            self._unions.clear()
        union = self._unions[state] = {
            "$id": f"{cls.id}__union",
            "meta:altId": f"{cls.alt_id or alt_id(cls.id)}__union",
            "meta:resourceType": "unions",
            "title": f"{cls.title} union schema",
            "type": "object",
            "meta:class": cls.id,
            "meta:behaviorType": cls.behavior,
            "meta:extends": [s.id for s in members],
            "properties": props,
            "required": list(cls.required),
        }
        return union

    def validator(self, ref: str, *, allow_unknown: bool = True, allow_null: bool = False) -> RecordValidator:
        """A compiled validator for a schema (cached until the schema or its field groups change)."""
        schema = self.get_schema(ref)
        key = (schema.id, schema.version, allow_unknown, allow_null)
        found = self._validators.get(key)
        if found is None:
            found = RecordValidator(
                self.resolve(schema.id), allow_unknown=allow_unknown, allow_null=allow_null
            )
            self._validators[key] = found
        return found

    def _drop_validators(self, schema_id: str) -> None:
        for key in [k for k in self._validators if k[0] == schema_id]:
            del self._validators[key]


def _refuse_breaking(problems: list[tuple[str, str]], title: str) -> None:
    if problems:
        path, reason = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BreakingSchemaChange(
            f"{title!r} is enabled for Profile, so only additive changes are allowed: {path}: {reason}{more}",
            path=path,
            problems=[{"path": p, "reason": r} for p, r in problems],
        )


__all__ = [
    "FieldGroup",
    "IdentityDescriptor",
    "Schema",
    "SchemaRegistry",
    "XdmClass",
    "identity_fields",
    "is_event_schema",
    "is_profile_schema",
]
