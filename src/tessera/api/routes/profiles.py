"""Profile Access (``/data/core/ups/access/entities``, §b1) and merge policies
(``/data/core/ups/config/mergePolicies``, §b2)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from tessera.api.deps import (
    MAX_OFFSET,
    SANDBOX_HEADER,
    SandboxDep,
    empty,
    json_object,
    ok,
    op,
    parse_json,
    sandbox_of,
)
from tessera.api.errors import JsonResponse
from tessera.errors import InvalidInput, NotFound, TesseraError
from tessera.identity.service import identity_of_xid
from tessera.model import Identity, format_time, parse_time
from tessera.platform import Sandbox

router = APIRouter(prefix="/data/core/ups", tags=["Profile"])
PROFILE = "_xdm.context.profile"
EVENT = "_xdm.context.experienceevent"
ENTITIES = "/access/entities"
POLICIES = "/config/mergePolicies"
EMPTY_TIME = "1970-01-01T00:00:00Z"

PROFILE_EXAMPLE = {
    "i-RW1haWwfYWxpY2VAYWNtZS5jb20": {
        "entityId": "i-RW1haWwfYWxpY2VAYWNtZS5jb20",
        "mergePolicy": {"id": "8c4d9a6e-2f1b-4a3e-9d1c-0b6e5f4a3b2c"},
        "sources": ["5c8c3c555033b814b69f947f"],
        "entity": {
            "identities": [{"id": "alice@acme.com", "namespace": {"code": "Email"}, "primary": True}],
            "person": {"name": {"firstName": "Alice", "lastName": "Doe"}},
        },
        "lastModifiedAt": "2024-01-01T12:00:00.000Z",
    }
}
EVENTS_EXAMPLE = {
    "_page": {"orderby": "timestamp", "start": "evt-1", "count": 1, "next": ""},
    "children": [
        {
            "relatedEntityId": "i-RW1haWwfYWxpY2VAYWNtZS5jb20",
            "entityId": "evt-1",
            "timestamp": 1704110400000,
            "entity": {
                "_id": "evt-1",
                "timestamp": "2024-01-01T12:00:00Z",
                "eventType": "web.webpagedetails.pageViews",
            },
            "lastModifiedAt": "2024-01-01T12:00:01.000Z",
        }
    ],
    "_links": {"next": {"href": ""}},
}
POLICY_EXAMPLE = {
    "id": "8c4d9a6e-2f1b-4a3e-9d1c-0b6e5f4a3b2c",
    "name": "profile-default",
    "imsOrgId": "",
    "sandbox": {"sandboxId": "prod", "sandboxName": "prod", "type": "production", "default": True},
    "schema": {"name": PROFILE},
    "version": 1,
    "identityGraph": {"type": "pdg"},
    "attributeMerge": {"type": "timestampOrdered"},
    "isActiveOnEdge": False,
    "default": True,
    "updateEpoch": 1732780800,
}
POLICY_BODY = {
    "name": "crm-first",
    "identityGraph": {"type": "pdg"},
    "attributeMerge": {"type": "dataSetPrecedence", "order": ["5c8c3c555033b814b69f947f"]},
    "schema": {"name": PROFILE},
    "isActiveOnEdge": False,
    "default": False,
}


def resolve_identity(sandbox: Sandbox, entity_id: str | None, namespace: str | None, path: str) -> Identity:
    """An identity from ``entityId`` + ``entityIdNS`` (namespace codes match case-insensitively,
    as the reference's examples write ``email`` for ``Email``), or from an XID alone."""
    if not entity_id:
        raise InvalidInput(f"{path} is required", path=path)
    if not namespace:
        return identity_of_xid(entity_id)
    try:
        return Identity(sandbox.identity.namespace(namespace).code, entity_id)
    except NotFound:
        for ns in sandbox.identity.namespaces():
            if ns.code.lower() == namespace.lower():
                return Identity(ns.code, entity_id)
        raise


def _fields(raw: str | list[str] | None) -> list[str] | None:
    if raw is None:
        return None
    items = raw.split(",") if isinstance(raw, str) else [f for part in raw for f in str(part).split(",")]
    fields = [f.strip() for f in items if f.strip()]
    return fields or None


def _entity(
    sandbox: Sandbox, identity: Identity, fields: list[str] | None, merge_policy_id: str | None
) -> dict[str, Any] | None:
    view = sandbox.profiles.get(identity, merge_policy_id=merge_policy_id, fields=fields)
    if view is None:
        return None
    entity = dict(view.attributes)
    if not fields or "identities" in fields:
        entity["identities"] = [{k: v for k, v in i.items() if k != "xid"} for i in view.identities]
    if view.memberships and (not fields or "segmentMembership" in fields):
        entity["segmentMembership"] = {"ups": view.memberships}
    return {
        "entityId": view.profile_id,
        "mergePolicy": {"id": view.merge_policy_id},
        "sources": view.sources,
        "entity": entity,
        "lastModifiedAt": format_time(view.last_modified) if view.last_modified else EMPTY_TIME,
    }


def _ms_time(value: int | None, path: str) -> Any:
    if value is None:
        return None
    if value < 0:
        raise InvalidInput("Times are epoch milliseconds (non-negative)", path=path)
    return parse_time(value)


def _events_page(
    sandbox: Sandbox,
    identity: Identity,
    *,
    params: dict[str, Any],
    merge_policy_id: str | None,
    orderby: str,
    start_time: int | None,
    end_time: int | None,
    limit: int,
    cursor: str | None,
    fields: list[str] | None,
) -> dict[str, Any]:
    if orderby.lstrip("+-") != "timestamp":
        raise InvalidInput("orderby must be timestamp, +timestamp or -timestamp", path="orderby")
    events, next_cursor = sandbox.profiles.events(
        identity,
        merge_policy_id=merge_policy_id,
        start=_ms_time(start_time, "startTime"),
        end=_ms_time(end_time, "endTime"),
        descending=orderby.startswith("-"),
        limit=limit,
        cursor=cursor,
    )
    profile_id = sandbox.identity.profile_id_of(identity)
    children = []
    for event in events:
        record = event["record"]
        entity = record
        if fields:
            from tessera.profile.service import project

            entity = project(record, fields)
        children.append(
            {
                "relatedEntityId": profile_id,
                "entityId": str(record.get("_id", "")),
                "timestamp": int(parse_time(record["timestamp"]).timestamp() * 1000)
                if "timestamp" in record
                else None,
                "entity": entity,
                "lastModifiedAt": format_time(parse_time(event["ingestedAt"]))
                if "ingestedAt" in event
                else EMPTY_TIME,
            }
        )
    href = ""
    if next_cursor is not None:
        href = "entities?" + urlencode(
            {**{k: v for k, v in params.items() if v is not None}, "start": next_cursor}
        )
    return {
        "_page": {
            "orderby": orderby,
            "start": children[0]["entityId"] if children else "",
            "count": len(children),
            "next": next_cursor or "",
        },
        "children": children,
        "_links": {"next": {"href": href}},
    }


def _param(name: str, description: str, *, required: bool = False, kind: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": kind},
    }


# Documented by hand and parsed by hand: FastAPI's per-parameter validation costs more than the
# lookup itself on this hot path (about 0.5 ms for 17 parameters).
ENTITY_PARAMS = [
    _param("schema.name", "_xdm.context.profile or _xdm.context.experienceevent", required=True),
    _param("entityId", "Identity value, or an XID (profiles)"),
    _param("entityIdNS", "Namespace code of entityId (omit for an XID)"),
    _param("relatedSchema.name", "_xdm.context.profile (events)"),
    _param("relatedEntityId", "Identity whose events to read (events)"),
    _param("relatedEntityIdNS", "Namespace code of relatedEntityId (events)"),
    _param("fields", "Comma-separated XDM paths to return, e.g. identities,person.name"),
    _param("mergePolicyId", "Merge policy (default: the class default)"),
    _param("orderby", "Events: timestamp, +timestamp or -timestamp"),
    _param("startTime", "Events from this time (epoch ms)", kind="integer"),
    _param("endTime", "Events before this time (epoch ms)", kind="integer"),
    _param("limit", "Events per page (1-1000, default 1000)", kind="integer"),
    _param("start", "Paging cursor from _links.next.href"),
]


def _int_param(params: Any, name: str, default: int | None, low: int, high: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer", path=f"query:{name}") from None
    if value < low or (high is not None and value > high):
        raise InvalidInput(
            f"{name} must be between {low} and {high if high is not None else 'any'}", path=f"query:{name}"
        )
    return value


@router.get(
    ENTITIES,
    **op(PROFILE_EXAMPLE, errors=(400, 404, 422), summary="Read a profile, or a profile's events"),
    openapi_extra={
        "parameters": [*ENTITY_PARAMS, SANDBOX_HEADER],
        "responses": {
            "200": {
                "content": {
                    "application/json": {
                        "examples": {
                            "profile": {"value": PROFILE_EXAMPLE},
                            "events": {"value": EVENTS_EXAMPLE},
                        }
                    }
                }
            }
        },
    },
)
async def get_entities(request: Request) -> JsonResponse:
    """``schema.name=_xdm.context.profile``: the merged profile of ``entityId``/``entityIdNS`` (or
    an XID), keyed by its entity id; 404 when nothing is stored, 422 when its graph is too large
    or no default merge policy exists. ``schema.name=_xdm.context.experienceevent``: the events of
    ``relatedEntityId``/``relatedEntityIdNS``, paged through ``_links.next.href``."""
    sandbox = sandbox_of(request)
    q = request.query_params
    schema_name = q.get("schema.name")
    if not schema_name:
        raise InvalidInput("schema.name is required", path="query:schema.name")
    fields = q.get("fields")
    wanted = _fields(fields)
    merge_policy_id = q.get("mergePolicyId")
    if schema_name == PROFILE:
        identity = resolve_identity(
            sandbox, q.get("entityId"), q.get("entityIdNS") or q.get("entityIdNs"), "entityId"
        )
        entity = _entity(sandbox, identity, wanted, merge_policy_id)
        if entity is None:
            raise NotFound(f"No profile holds the identity {identity}", path="entityId")
        return ok({entity["entityId"]: entity})
    if schema_name != EVENT:
        raise InvalidInput(f"schema.name must be {PROFILE} or {EVENT}", path="schema.name")
    if q.get("relatedSchema.name") not in (None, PROFILE):
        raise InvalidInput(f"relatedSchema.name must be {PROFILE}", path="relatedSchema.name")
    related_id, related_ns = q.get("relatedEntityId"), q.get("relatedEntityIdNS")
    identity = resolve_identity(sandbox, related_id, related_ns, "relatedEntityId")
    order = q.get("orderby") or q.get("orderBy") or "timestamp"
    start_time = _int_param(q, "startTime", None, 0)
    end_time = _int_param(q, "endTime", None, 0)
    limit = _int_param(q, "limit", 1000, 1, 1000) or 1000
    params = {
        "schema.name": EVENT,
        "relatedSchema.name": PROFILE,
        "relatedEntityId": related_id,
        "relatedEntityIdNS": related_ns,
        "fields": fields,
        "mergePolicyId": merge_policy_id,
        "orderby": order,
        "startTime": start_time,
        "endTime": end_time,
        "limit": limit,
    }
    page = await run_in_threadpool(
        lambda: _events_page(
            sandbox,
            identity,
            params=params,
            merge_policy_id=merge_policy_id,
            orderby=order,
            start_time=start_time,
            end_time=end_time,
            limit=limit,
            cursor=q.get("start") or q.get("offsets"),
            fields=wanted,
        )
    )
    return ok(page)


@router.post(
    ENTITIES,
    **op(
        PROFILE_EXAMPLE,
        body={
            "schema": {"name": PROFILE},
            "fields": ["identities", "person.name"],
            "identities": [{"entityId": "alice@acme.com", "entityIdNS": {"code": "Email"}}],
        },
        errors=(400, 404, 422),
    ),
    summary="Read many profiles (or their events) at once",
)
async def post_entities(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """One entry per requested identity, keyed by entity id. An unknown identity answers with
    ``sources: [""]``, ``entity: {}`` and ``lastModifiedAt: 1970-01-01T00:00:00Z``, as the
    reference does. With ``schema.name=_xdm.context.experienceevent`` each entry is an events page."""
    body = json_object(parse_json(await request.body()))
    schema = body.get("schema") or {}
    schema_name = schema.get("name") if isinstance(schema, dict) else None
    identities = body.get("identities")
    if not isinstance(identities, list) or not identities:
        raise InvalidInput("identities must be a non-empty array", path="identities")
    if len(identities) > 1000:
        raise InvalidInput("At most 1000 identities per request", path="identities")
    raw_fields = body.get("fields")
    wanted = _fields(raw_fields if isinstance(raw_fields, str | list) else None)
    merge_policy_id = body.get("mergePolicyId")
    if merge_policy_id is not None and not isinstance(merge_policy_id, str):
        raise InvalidInput("mergePolicyId must be a string", path="mergePolicyId")

    def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, item in enumerate(identities):
            if not isinstance(item, dict):
                raise InvalidInput("Each identity is an object", path=f"identities[{i}]")
            related = schema_name == EVENT
            value = item.get("relatedEntityId" if related else "entityId")
            ns_obj = item.get("relatedEntityIdNS" if related else "entityIdNS")
            ns = ns_obj.get("code") if isinstance(ns_obj, dict) else ns_obj
            if not isinstance(value, str) or (ns is not None and not isinstance(ns, str)):
                raise InvalidInput("entityId and entityIdNS.code must be strings", path=f"identities[{i}]")
            identity = resolve_identity(sandbox, value, ns, f"identities[{i}].entityId")
            requested = {"entityId": value, "entityIdNS": {"code": identity.namespace}}
            if related:
                time_filter = body.get("timeFilter") or {}
                page = _events_page(
                    sandbox,
                    identity,
                    params={},
                    merge_policy_id=merge_policy_id,
                    orderby=str(body.get("orderby", "timestamp")),
                    start_time=time_filter.get("startTime") if isinstance(time_filter, dict) else None,
                    end_time=time_filter.get("endTime") if isinstance(time_filter, dict) else None,
                    limit=int(body.get("limit", 1000)),
                    cursor=None,
                    fields=wanted,
                )
                out[sandbox.identity.profile_id_of(identity)] = {**page, "requestedIdentity": requested}
                continue
            entity = _entity(sandbox, identity, wanted, merge_policy_id)
            if entity is None:
                entity = {"entityId": value, "sources": [""], "entity": {}, "lastModifiedAt": EMPTY_TIME}
                out.setdefault(str(identity), {**entity, "requestedIdentity": requested})
            else:
                out[entity["entityId"]] = {**entity, "requestedIdentity": requested}
        return out

    if schema_name not in (PROFILE, EVENT):
        raise InvalidInput(f"schema.name must be {PROFILE} or {EVENT}", path="schema.name")
    return ok(await run_in_threadpool(run))


@router.delete(ENTITIES, **op(None, status=202, errors=(400, 404, 422)), summary="Delete a profile's data")
def delete_entity(
    sandbox: SandboxDep,
    schema_name: Annotated[str, Query(alias="schema.name")],
    entityId: str,  # noqa: N803
    entityIdNS: str | None = None,  # noqa: N803
    mergePolicyId: str | None = None,  # noqa: N803
) -> Response:
    """Delete every fragment and event of the profile holding the identity (202, empty body).
    Only ``_xdm.context.profile`` is accepted; the identity graph itself is kept."""
    if schema_name != PROFILE:
        raise InvalidInput(f"Only {PROFILE} entities can be deleted", path="schema.name")
    identity = resolve_identity(sandbox, entityId, entityIdNS, "entityId")
    members = sandbox.identity.members(sandbox.identity.profile_id_of(identity)) or [identity]
    removed = sandbox.privacy.delete(members, profile=True, graph=False)
    if not any(removed.values()):
        raise NotFound(f"No profile data is stored for {identity}", path="entityId")
    return empty(202)


# -- merge policies -----------------------------------------------------------------------------
def _bool(value: str | None, path: str) -> bool | None:
    if value is None:
        return None
    if value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise InvalidInput(f"{path} must be true or false", path=path)


@router.get(
    POLICIES,
    **op(
        {
            "_page": {"totalCount": 1, "pageSize": 1},
            "children": [POLICY_EXAMPLE],
            "_links": {"next": {"href": ""}},
        },
        errors=(400,),
    ),
    tags=["Merge policies"],
    summary="List merge policies",
)
def list_policies(
    sandbox: SandboxDep,
    default: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    orderBy: str = "name",  # noqa: N803
    isActiveOnEdge: str | None = None,  # noqa: N803
    schema_name: Annotated[str | None, Query(alias="schema.name")] = None,
    identity_graph: Annotated[str | None, Query(alias="identityGraph.type")] = None,
    attribute_merge: Annotated[str | None, Query(alias="attributeMerge.type")] = None,
    start: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    version: Annotated[int | None, Query(ge=1, le=MAX_OFFSET)] = None,
) -> JsonResponse:
    """Policies of the sandbox ordered by name, ``limit`` per page from offset ``start``."""
    policies = sandbox.merge_policies.list(
        schema_name=schema_name,
        default=_bool(default, "default"),
        is_active_on_edge=_bool(isActiveOnEdge, "isActiveOnEdge"),
        identity_graph=identity_graph,
        attribute_merge=attribute_merge,
        order_by=orderBy,
    )
    if version is not None:
        policies = [p for p in policies if p.version == version]
    page = policies[start : start + limit]
    href = ""
    if start + limit < len(policies):
        href = f"/data/core/ups{POLICIES}?" + urlencode(
            {"start": start + limit, "limit": limit, "orderBy": orderBy}
        )
    return ok(
        {
            "_page": {"totalCount": len(policies), "pageSize": len(page)},
            "children": [p.to_json() for p in page],
            "_links": {"next": {"href": href}},
        }
    )


@router.post(
    POLICIES + "/bulk-get",
    **op(
        {"results": {POLICY_EXAMPLE["id"]: POLICY_EXAMPLE}},
        status=207,
        body={"ids": [{"id": POLICY_EXAMPLE["id"]}]},
    ),
    tags=["Merge policies"],
    summary="Read many merge policies (207)",
)
async def bulk_get_policies(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """Each requested id maps to its policy, or to a 404 error body when it does not exist."""
    body = json_object(parse_json(await request.body()))
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(
        isinstance(i, dict) and isinstance(i.get("id"), str) for i in ids
    ):
        raise InvalidInput('ids must be an array of {"id": "..."} objects', path="ids")
    found = sandbox.merge_policies.bulk_get(i["id"] for i in ids)
    results = {
        pid: (p.to_json() if not isinstance(p, TesseraError) else p.to_json()) for pid, p in found.items()
    }
    return ok({"results": results}, status=207)


@router.get(
    POLICIES + "/{mergePolicyId}",
    **op(POLICY_EXAMPLE, errors=(400, 404)),
    tags=["Merge policies"],
    summary="Read a merge policy",
)
def get_policy(mergePolicyId: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """One policy; 404 after deletion."""
    return ok(sandbox.merge_policies.get(mergePolicyId).to_json())


@router.post(
    POLICIES,
    **op(POLICY_EXAMPLE, body=POLICY_BODY, errors=(400, 404, 409, 422)),
    tags=["Merge policies"],
    summary="Create a merge policy",
)
async def create_policy(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """Create a policy; ``default: true`` demotes the class's previous default."""
    body = json_object(parse_json(await request.body()))
    return ok((await run_in_threadpool(sandbox.merge_policies.create, body)).to_json())


@router.put(
    POLICIES + "/{mergePolicyId}",
    **op(POLICY_EXAMPLE, body=POLICY_BODY, errors=(400, 404, 409, 422)),
    tags=["Merge policies"],
    summary="Replace a merge policy",
)
async def replace_policy(mergePolicyId: str, request: Request, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """Full replacement; ``version`` goes up by one."""
    body = json_object(parse_json(await request.body()))
    return ok((await run_in_threadpool(sandbox.merge_policies.replace, mergePolicyId, body)).to_json())


@router.patch(
    POLICIES + "/{mergePolicyId}",
    **op(
        POLICY_EXAMPLE, body={"op": "add", "path": "/default", "value": "true"}, errors=(400, 404, 409, 422)
    ),
    tags=["Merge policies"],
    summary="Change one field (JSON-Patch-like op)",
)
async def patch_policy(mergePolicyId: str, request: Request, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """One op (or a list of ops) on ``/name``, ``/identityGraph.type``, ``/attributeMerge.type``,
    ``/schema.name``, ``/default`` or ``/isActiveOnEdge``."""
    ops = parse_json(await request.body())
    if not isinstance(ops, dict | list):
        raise InvalidInput("Expected a patch op object or an array of them", path="body")
    return ok((await run_in_threadpool(sandbox.merge_policies.patch, mergePolicyId, ops)).to_json())


@router.delete(
    POLICIES + "/{mergePolicyId}",
    **op(None, errors=(400, 404, 409, 422)),
    tags=["Merge policies"],
    summary="Delete a merge policy",
)
def delete_policy(mergePolicyId: str, sandbox: SandboxDep) -> Response:  # noqa: N803
    """200 with an empty body; refused while the policy is active on edge."""
    sandbox.merge_policies.delete(mergePolicyId)
    return empty()
