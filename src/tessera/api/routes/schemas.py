"""Schema Registry (``/data/foundation/schemaregistry``, §a10): classes, field groups, schemas,
identity descriptors and union schemas.

Lists answer ``{"results": [...], "_page": {...}, "_links": {...}}``; with an ``Accept`` header
naming ``xed-id`` they hold only ``$id``, ``meta:altId``, ``version`` and ``title`` (the default),
with any other ``xed`` type the full objects. A schema read with ``Accept: …xed-full+json``
comes back resolved (class and field groups composed). Objects are addressed by ``$id``
(URL-encoded), ``meta:altId`` or title. ``global`` holds the built-in classes and field groups,
``tenant`` those of the sandbox and every schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import unquote

from fastapi import APIRouter, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from tessera.api.deps import SandboxDep, empty, json_object, ok, op, parse_json
from tessera.api.errors import JsonResponse
from tessera.errors import InvalidInput
from tessera.platform import Sandbox
from tessera.xdm.schemas import IdentityDescriptor, SchemaRegistry

router = APIRouter(prefix="/data/foundation/schemaregistry", tags=["Schema registry"])
Container = Literal["global", "tenant"]
AcceptHeader = Annotated[
    str | None, Header(alias="Accept", description="e.g. application/vnd.adobe.xed-full+json;version=1")
]

SUMMARY_KEYS = ("$id", "meta:altId", "version", "title")
SCHEMA_EXAMPLE = {
    "$id": "https://ns.adobe.com/tessera/schemas/3f0c9a",
    "meta:altId": "_tessera.schemas.3f0c9a",
    "meta:resourceType": "schemas",
    "version": "1.0",
    "title": "Loyalty Members",
    "description": "",
    "type": "object",
    "meta:class": "https://ns.adobe.com/xdm/context/profile",
    "allOf": [
        {"$ref": "https://ns.adobe.com/xdm/context/profile"},
        {"$ref": "https://ns.adobe.com/xdm/context/identitymap"},
    ],
    "meta:extends": [
        "https://ns.adobe.com/xdm/context/profile",
        "https://ns.adobe.com/xdm/context/identitymap",
    ],
    "meta:immutableTags": ["union"],
    "meta:identityDescriptors": [],
}
SCHEMA_BODY = {
    "type": "object",
    "title": "Loyalty Members",
    "description": "Schema for loyalty program members",
    "allOf": [
        {"$ref": "https://ns.adobe.com/xdm/context/profile"},
        {"$ref": "https://ns.adobe.com/xdm/context/profile-person-details"},
        {"$ref": "https://ns.adobe.com/xdm/context/identitymap"},
    ],
    "meta:immutableTags": ["union"],
}
FIELD_GROUP_BODY = {
    "type": "object",
    "title": "Loyalty details",
    "description": "Tier and points",
    "meta:intendedToExtend": ["https://ns.adobe.com/xdm/context/profile"],
    "definitions": {
        "loyalty": {
            "properties": {
                "_tessera": {
                    "type": "object",
                    "properties": {
                        "loyalty": {
                            "type": "object",
                            "properties": {"tier": {"type": "string"}, "points": {"type": "integer"}},
                        }
                    },
                }
            }
        }
    },
    "allOf": [{"$ref": "#/definitions/loyalty"}],
}
DESCRIPTOR_BODY = {
    "@type": "xdm:descriptorIdentity",
    "xdm:sourceSchema": "https://ns.adobe.com/tessera/schemas/3f0c9a",
    "xdm:sourceVersion": 1,
    "xdm:sourceProperty": "/_tessera/loyaltyId",
    "xdm:namespace": "CRMID",
    "xdm:property": "xdm:code",
    "xdm:isPrimary": True,
}


def _ref(raw: str) -> str:
    return unquote(raw)


def _listing(items: list[dict[str, Any]], accept: str | None) -> dict[str, Any]:
    full = accept is not None and "xed" in accept and "xed-id" not in accept
    results = items if full else [{k: i.get(k) for k in SUMMARY_KEYS} for i in items]
    return {
        "results": results,
        "_page": {"orderby": "title", "next": None, "count": len(results)},
        "_links": {},
    }


def _registry(sandbox: Sandbox) -> SchemaRegistry:
    return sandbox.schemas.registry


def _properties(body: dict[str, Any]) -> dict[str, Any]:
    """Field definitions from a field-group body: ``properties``, or AEP's ``definitions`` + ``allOf``."""
    if isinstance(body.get("properties"), dict):
        return dict(body["properties"])
    props: dict[str, Any] = {}
    definitions = body.get("definitions") or {}
    if not isinstance(definitions, dict):
        raise InvalidInput("definitions must be an object", path="definitions")
    for name, part in definitions.items():
        if not isinstance(part, dict) or not isinstance(part.get("properties"), dict):
            raise InvalidInput("each definition needs properties", path=f"definitions.{name}")
        props.update(part["properties"])
    if not props:
        raise InvalidInput(
            "A field group needs properties (or definitions with properties)", path="definitions"
        )
    return props


def _refs(body: dict[str, Any]) -> list[str]:
    all_of = body.get("allOf", [])
    if not isinstance(all_of, list):
        raise InvalidInput("allOf must be an array of {$ref}", path="allOf")
    refs = []
    for i, part in enumerate(all_of):
        if not isinstance(part, dict) or not isinstance(part.get("$ref"), str):
            raise InvalidInput("allOf entries are {$ref: ...}", path=f"allOf[{i}]")
        refs.append(part["$ref"])
    return refs


# -- classes ------------------------------------------------------------------------------------
@router.get(
    "/{container}/classes",
    **op(
        {
            "results": [{k: SCHEMA_EXAMPLE[k] for k in SUMMARY_KEYS}],
            "_page": {"orderby": "title", "next": None, "count": 1},
            "_links": {},
        },
        errors=(400, 404),
    ),
    summary="List classes",
)
def list_classes(container: Container, sandbox: SandboxDep, accept: AcceptHeader = None) -> JsonResponse:
    """The built-in classes (``global``); Tessera has no tenant classes, so ``tenant`` is empty."""
    items = [c.to_json() for c in _registry(sandbox).list_classes()] if container == "global" else []
    return ok(_listing(items, accept))


@router.get(
    "/{container}/classes/{classId:path}",
    **op(
        {
            "$id": "https://ns.adobe.com/xdm/context/profile",
            "title": "XDM Individual Profile",
            "meta:behaviorType": "record",
        },
        errors=(400, 404),
    ),
    summary="Read a class",
)
def get_class(container: Container, classId: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """One class by ``$id``, ``meta:altId`` or title."""
    return ok(_registry(sandbox).get_class(_ref(classId)).to_json())


# -- field groups -------------------------------------------------------------------------------
@router.get(
    "/{container}/fieldgroups",
    **op(
        {
            "results": [
                {
                    "$id": "https://ns.adobe.com/xdm/context/identitymap",
                    "meta:altId": "_xdm.context.identitymap",
                    "version": "1.0",
                    "title": "IdentityMap",
                }
            ],
            "_page": {"orderby": "title", "next": None, "count": 1},
            "_links": {},
        },
        errors=(400, 404),
    ),
    summary="List field groups",
)
def list_field_groups(container: Container, sandbox: SandboxDep, accept: AcceptHeader = None) -> JsonResponse:
    """Built-in field groups (``global``) or the sandbox's own (``tenant``)."""
    groups = _registry(sandbox).list_field_groups()
    items = [g.to_json() for g in groups if (g.tenant is None) == (container == "global")]
    return ok(_listing(items, accept))


@router.get(
    "/{container}/fieldgroups/{fieldGroupId:path}",
    **op(
        {"$id": "https://ns.adobe.com/xdm/context/identitymap", "title": "IdentityMap", "properties": {}},
        errors=(400, 404),
    ),
    summary="Read a field group",
)
def get_field_group(container: Container, fieldGroupId: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """One field group with its fields written out."""
    return ok(_registry(sandbox).get_field_group(_ref(fieldGroupId)).to_json())


@router.post(
    "/tenant/fieldgroups",
    **op(
        {
            "$id": "https://ns.adobe.com/tessera/mixins/9c1e",
            "title": "Loyalty details",
            "meta:tenantNamespace": "_tessera",
        },
        status=201,
        body=FIELD_GROUP_BODY,
        errors=(400, 404, 409),
    ),
    summary="Create a field group",
)
async def create_field_group(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """A tenant field group; custom fields live under ``_<tenant>`` (moved there when needed)."""
    body = json_object(parse_json(await request.body()))
    title = body.get("title")
    if not isinstance(title, str):
        raise InvalidInput("title is required", path="title")
    classes = body.get("meta:intendedToExtend") or [
        "https://ns.adobe.com/xdm/context/profile",
        "https://ns.adobe.com/xdm/context/experienceevent",
    ]
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise InvalidInput("meta:intendedToExtend is an array of class ids", path="meta:intendedToExtend")
    props = _properties(body)
    description = str(body.get("description", ""))
    group = await run_in_threadpool(
        sandbox.schemas.change,
        lambda reg: reg.create_field_group(title, props, classes=classes, description=description),
    )
    return ok(group.to_json(), status=201)


@router.put(
    "/tenant/fieldgroups/{fieldGroupId:path}",
    **op(
        {"$id": "https://ns.adobe.com/tessera/mixins/9c1e", "title": "Loyalty details", "version": "1.1"},
        body=FIELD_GROUP_BODY,
        errors=(400, 404, 409, 422),
    ),
    summary="Replace a field group (additive changes only once in Profile)",
)
async def replace_field_group(fieldGroupId: str, request: Request, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """New title, description or fields; a field group used by a Profile schema may only grow."""
    body = json_object(parse_json(await request.body()))
    props = _properties(body) if ("properties" in body or "definitions" in body) else None
    ref = _ref(fieldGroupId)
    group = await run_in_threadpool(
        sandbox.schemas.change,
        lambda reg: reg.update_field_group(
            ref, title=body.get("title"), properties=props, description=body.get("description")
        ),
    )
    return ok(group.to_json())


@router.delete(
    "/tenant/fieldgroups/{fieldGroupId:path}",
    **op(None, status=204, errors=(400, 404, 422)),
    summary="Delete a field group",
)
def delete_field_group(fieldGroupId: str, sandbox: SandboxDep) -> Response:  # noqa: N803
    """Delete a tenant field group no schema uses."""
    ref = _ref(fieldGroupId)
    sandbox.schemas.change(lambda reg: reg.delete_field_group(ref))
    return empty(204)


# -- schemas ------------------------------------------------------------------------------------
@router.get(
    "/tenant/schemas",
    **op(
        {
            "results": [{k: SCHEMA_EXAMPLE[k] for k in SUMMARY_KEYS}],
            "_page": {"orderby": "title", "next": None, "count": 1},
            "_links": {},
        },
        errors=(400, 404),
    ),
    summary="List schemas",
)
def list_schemas(sandbox: SandboxDep, accept: AcceptHeader = None) -> JsonResponse:
    """Every schema of the sandbox."""
    return ok(_listing([s.to_json() for s in _registry(sandbox).list_schemas()], accept))


@router.get(
    "/tenant/schemas/{schemaId:path}",
    **op(SCHEMA_EXAMPLE, errors=(400, 404)),
    summary="Read a schema (resolved with Accept: …xed-full+json)",
)
def get_schema(schemaId: str, sandbox: SandboxDep, accept: AcceptHeader = None) -> JsonResponse:  # noqa: N803
    """One schema; ``Accept: application/vnd.adobe.xed-full+json`` returns it resolved."""
    ref = _ref(schemaId)
    if accept and "xed-full" in accept:
        return ok(sandbox.schemas.resolved(ref))
    return ok(sandbox.schemas.get(ref))


@router.post(
    "/tenant/schemas",
    **op(SCHEMA_EXAMPLE, status=201, body=SCHEMA_BODY, errors=(400, 404, 409, 422)),
    summary="Create a schema",
)
async def create_schema(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """A schema from ``allOf`` (the class first, then field groups). ``meta:immutableTags: ["union"]``
    enables it for Profile; identity descriptors may come inline (``meta:identityDescriptors``) or
    later through ``/tenant/descriptors``."""
    body = json_object(parse_json(await request.body()))
    title = body.get("title")
    if not isinstance(title, str):
        raise InvalidInput("title is required", path="title")
    refs = _refs(body)
    class_ref = body.get("meta:class") or (refs[0] if refs else None)
    if not isinstance(class_ref, str):
        raise InvalidInput("A schema needs a class: the first allOf $ref or meta:class", path="allOf")
    groups = [r for r in refs if r != class_ref]
    tags = body.get("meta:immutableTags") or []
    descriptors = body.get("meta:identityDescriptors") or []
    if not isinstance(tags, list) or not isinstance(descriptors, list):
        raise InvalidInput(
            "meta:immutableTags and meta:identityDescriptors are arrays", path="meta:immutableTags"
        )
    schema = await run_in_threadpool(
        sandbox.schemas.change,
        lambda reg: reg.create_schema(
            title,
            class_ref,
            groups,
            descriptors,
            profile_enabled="union" in tags,
            description=str(body.get("description", "")),
        ),
    )
    return ok(schema.to_json(), status=201)


@router.patch(
    "/tenant/schemas/{schemaId:path}",
    **op(
        SCHEMA_EXAMPLE,
        body=[
            {
                "op": "add",
                "path": "/allOf/-",
                "value": {"$ref": "https://ns.adobe.com/xdm/context/profile-personal-details"},
            }
        ],
        errors=(400, 404, 409, 422),
    ),
    summary="Add field groups, enable for Profile, rename (JSON Patch)",
)
async def patch_schema(schemaId: str, request: Request, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """JSON Patch ops: ``add /allOf/-`` (a field group), ``add|replace /meta:immutableTags``
    (``["union"]``), ``replace /title``, ``replace /description``. Removing anything from a
    Profile-enabled schema is refused (breaking change)."""
    ops = parse_json(await request.body())
    if isinstance(ops, dict):
        ops = [ops]
    if not isinstance(ops, list):
        raise InvalidInput("Expected an array of JSON Patch operations", path="body")
    ref = _ref(schemaId)
    current = sandbox.schemas.registry.get_schema(ref)
    groups = list(current.field_groups)
    changes: dict[str, Any] = {}
    for i, item in enumerate(ops):
        if (
            not isinstance(item, dict)
            or item.get("op") not in {"add", "replace"}
            or not isinstance(item.get("path"), str)
        ):
            raise InvalidInput("Supported ops are add and replace with a path", path=f"[{i}]")
        path, value = item["path"], item.get("value")
        if path in ("/allOf/-", "/allOf") and isinstance(value, dict) and isinstance(value.get("$ref"), str):
            groups.append(value["$ref"])
        elif path == "/meta:immutableTags" and isinstance(value, list):
            changes["profile_enabled"] = "union" in value
        elif path in ("/title", "/description") and isinstance(value, str):
            changes[path[1:]] = value
        else:
            raise InvalidInput(f"Unsupported patch of {path}", path=f"[{i}].path")
    if groups != list(current.field_groups):
        changes["field_groups"] = groups
    schema = await run_in_threadpool(sandbox.schemas.change, lambda reg: reg.update_schema(ref, **changes))
    return ok(schema.to_json())


@router.delete(
    "/tenant/schemas/{schemaId:path}", **op(None, status=204, errors=(400, 404)), summary="Delete a schema"
)
def delete_schema(schemaId: str, sandbox: SandboxDep) -> Response:  # noqa: N803
    """Delete a schema (datasets that use it keep their reference)."""
    ref = _ref(schemaId)
    sandbox.schemas.change(lambda reg: reg.delete_schema(ref))
    return empty(204)


@router.post(
    "/tenant/descriptors",
    **op(DESCRIPTOR_BODY, status=201, body=DESCRIPTOR_BODY, errors=(400, 404, 409, 422)),
    summary="Add an identity descriptor",
)
async def create_descriptor(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """``xdm:descriptorIdentity``: mark a string field of a schema as an identity of a namespace
    (``xdm:isPrimary`` for the primary identity)."""
    body = json_object(parse_json(await request.body()))
    if body.get("@type") != "xdm:descriptorIdentity":
        raise InvalidInput("Only xdm:descriptorIdentity descriptors are supported", path="@type")
    schema_ref = body.get("xdm:sourceSchema")
    if not isinstance(schema_ref, str):
        raise InvalidInput("xdm:sourceSchema is required", path="xdm:sourceSchema")
    descriptor = IdentityDescriptor.from_json(body)

    def add(reg: SchemaRegistry) -> Any:
        schema = reg.get_schema(schema_ref)
        return reg.update_schema(schema_ref, identities=[*schema.identities, descriptor])

    schema = await run_in_threadpool(sandbox.schemas.change, add)
    return ok(descriptor.to_json(schema.id, int(str(schema.version).split(".")[0])), status=201)


# -- unions -------------------------------------------------------------------------------------
@router.get(
    "/tenant/unions",
    **op(
        {
            "results": [
                {
                    "$id": "https://ns.adobe.com/xdm/context/profile__union",
                    "title": "Union of XDM Individual Profile",
                    "meta:class": "https://ns.adobe.com/xdm/context/profile",
                }
            ],
            "_page": {"orderby": "title", "next": None, "count": 1},
            "_links": {},
        },
        errors=(400, 404),
    ),
    summary="List union schemas",
)
def list_unions(sandbox: SandboxDep) -> JsonResponse:
    """One union per class that has Profile-enabled schemas."""
    reg = _registry(sandbox)
    classes = sorted({s.class_id for s in reg.list_schemas() if s.profile_enabled})
    results = [
        {"$id": f"{c}__union", "title": f"Union of {reg.get_class(c).title}", "meta:class": c}
        for c in classes
    ]
    return ok(
        {"results": results, "_page": {"orderby": "title", "next": None, "count": len(results)}, "_links": {}}
    )


@router.get(
    "/tenant/unions/{unionId:path}",
    **op(
        {"$id": "https://ns.adobe.com/xdm/context/profile__union", "type": "object", "properties": {}},
        errors=(400, 404, 422),
    ),
    summary="Read a union schema (resolved)",
)
def get_union(unionId: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """The union of a class and all its Profile-enabled schemas (by union id, class id or altId)."""
    ref = _ref(unionId).removesuffix("__union")
    return ok(sandbox.schemas.union(ref))
