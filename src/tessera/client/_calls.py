"""Every operation as a pure request description, shared by the sync and async clients."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast
from urllib.parse import quote

T = TypeVar("T")

CATALOG = "/data/foundation/catalog"
IMPORT = "/data/foundation/import"
SANDBOXES = "/data/foundation/sandbox-management/sandboxes"
UPS = "/data/core/ups"
IDENTITY = "/data/core/identity"
NAMESPACES = "/data/core/idnamespace/identities"
STREAMING_SPEC = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb"
PROFILE = "_xdm.context.profile"
EVENT = "_xdm.context.experienceevent"


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request and how to turn its JSON answer into ``T``."""

    method: str
    path: str
    params: Mapping[str, Any] | list[tuple[str, Any]] | None = None
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    parse: Callable[[Any], T] = cast(Callable[[Any], T], _same)


def seg(value: str) -> str:
    """A path segment, percent-encoded.

    >>> seg("a b/c")
    'a%20b%2Fc'
    """
    return quote(value, safe="")


def _only(body: Any) -> Any:
    """The single value of an id-keyed Catalog answer."""
    return next(iter(body.values()))


def _ref_id(body: Any) -> str:
    return str(body[0].rsplit("/", 1)[1])


# -- Tessera -----------------------------------------------------------------------------------
def health() -> Call[Any]:
    return Call("GET", "/tessera/health")


def ready() -> Call[Any]:
    return Call("GET", "/tessera/ready")


def settings() -> Call[Any]:
    return Call("GET", "/tessera/settings")


def stats() -> Call[Any]:
    return Call("GET", "/tessera/stats")


def simulate(
    text: str,
    unique: list[str] | None = None,
    priority: list[str] | None = None,
    limit: int | None = 50,
    validate: bool = False,
) -> Call[Any]:
    """The identity graph simulator: ``text`` holds one ``NS: value, NS: value`` row per line."""
    body = {
        "text": text,
        "unique": unique or [],
        "priority": priority or [],
        "limit": limit,
        "validate": validate,
    }
    return Call("POST", "/tessera/identity/simulate", json=body)


# -- sandboxes ---------------------------------------------------------------------------------
def list_sandboxes() -> Call[Any]:
    return Call("GET", SANDBOXES)


def create_sandbox(name: str, title: str | None = None, kind: str = "development") -> Call[Any]:
    return Call("POST", SANDBOXES, json={"name": name, "title": title or name, "type": kind})


def get_sandbox(name: str) -> Call[Any]:
    return Call("GET", f"{SANDBOXES}/{seg(name)}")


def delete_sandbox(name: str) -> Call[Any]:
    return Call("DELETE", f"{SANDBOXES}/{seg(name)}")


# -- catalog -----------------------------------------------------------------------------------
def create_dataset(
    name: str,
    schema_id: str,
    *,
    profile: bool = True,
    identity: bool = True,
    upsert: bool = False,
    **extra: Any,
) -> Call[str]:
    tags = {
        "unifiedProfile": ["enabled:true" if profile else "enabled:false"]
        + (["isUpsert:true"] if upsert else []),
        "unifiedIdentity": ["enabled:true" if identity else "enabled:false"],
    }
    body = {
        "name": name,
        "schemaRef": {"id": schema_id, "contentType": "application/vnd.adobe.xed+json;version=1"},
    }
    return Call("POST", f"{CATALOG}/dataSets", json={**body, "tags": tags, **extra}, parse=_ref_id)


def list_datasets(limit: int = 50, start: int = 0, name: str | None = None) -> Call[Any]:
    params: dict[str, Any] = {"limit": limit, "start": start}
    if name is not None:
        params["name"] = name
    return Call("GET", f"{CATALOG}/dataSets", params=params)


def get_dataset(dataset_id: str) -> Call[Any]:
    return Call("GET", f"{CATALOG}/dataSets/{seg(dataset_id)}", parse=_only)


def patch_dataset(dataset_id: str, changes: Mapping[str, Any]) -> Call[Any]:
    return Call("PATCH", f"{CATALOG}/dataSets/{seg(dataset_id)}", json=dict(changes))


def delete_dataset(dataset_id: str) -> Call[Any]:
    return Call("DELETE", f"{CATALOG}/dataSets/{seg(dataset_id)}")


def list_batches(dataset_id: str | None = None, status: str | None = None, limit: int = 50) -> Call[Any]:
    params: dict[str, Any] = {"limit": limit}
    if dataset_id:
        params["dataSet"] = dataset_id
    if status:
        params["status"] = status
    return Call("GET", f"{CATALOG}/batches", params=params)


def get_batch(batch_id: str) -> Call[Any]:
    return Call("GET", f"{CATALOG}/batches/{seg(batch_id)}", parse=_only)


# -- batch ingestion ---------------------------------------------------------------------------
def create_batch(dataset_id: str, fmt: str = "json") -> Call[Any]:
    return Call("POST", f"{IMPORT}/batches", json={"datasetId": dataset_id, "inputFormat": {"format": fmt}})


def _file_path(batch_id: str, dataset_id: str, file_name: str) -> str:
    return f"{IMPORT}/batches/{seg(batch_id)}/datasets/{seg(dataset_id)}/files/{seg(file_name)}"


def upload_file(batch_id: str, dataset_id: str, file_name: str, data: bytes) -> Call[Any]:
    headers = {"Content-Type": "application/octet-stream"}
    return Call("PUT", _file_path(batch_id, dataset_id, file_name), content=data, headers=headers)


def initialize_file(batch_id: str, dataset_id: str, file_name: str) -> Call[Any]:
    return Call("POST", _file_path(batch_id, dataset_id, file_name), params={"action": "INITIALIZE"})


def upload_chunk(batch_id: str, dataset_id: str, file_name: str, offset: int, data: bytes) -> Call[Any]:
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Range": f"bytes {offset}-{offset + len(data) - 1}/*",
    }
    return Call("PATCH", _file_path(batch_id, dataset_id, file_name), content=data, headers=headers)


def complete_file(batch_id: str, dataset_id: str, file_name: str) -> Call[Any]:
    return Call("POST", _file_path(batch_id, dataset_id, file_name), params={"action": "COMPLETE"})


def batch_action(batch_id: str, action: str) -> Call[Any]:
    return Call("POST", f"{IMPORT}/batches/{seg(batch_id)}", params={"action": action})


# -- streaming ---------------------------------------------------------------------------------
def create_connection(name: str, *, data_type: str = "xdm", dataset_id: str | None = None) -> Call[Any]:
    params: dict[str, Any] = {"name": name, "dataType": data_type, "authenticationRequired": False}
    if dataset_id:
        params["datasetId"] = dataset_id
    body = {
        "name": name,
        "connectionSpec": {"id": STREAMING_SPEC, "version": "1.0"},
        "auth": {"specName": "Streaming Connection", "params": params},
    }
    return Call("POST", "/data/foundation/flowservice/connections", json=body)


def get_connection(connection_id: str) -> Call[Any]:
    return Call("GET", f"/data/foundation/flowservice/connections/{seg(connection_id)}")


def send_message(inlet_id: str, message: Mapping[str, Any], sync_validation: bool = False) -> Call[Any]:
    params = {"syncValidation": "true"} if sync_validation else None
    return Call("POST", f"/collection/{seg(inlet_id)}", params=params, json=dict(message))


def send_messages(inlet_id: str, messages: list[Mapping[str, Any]]) -> Call[Any]:
    return Call("POST", f"/collection/batch/{seg(inlet_id)}", json={"messages": [dict(m) for m in messages]})


# -- merge policies ----------------------------------------------------------------------------
def list_merge_policies(limit: int = 20, **filters: Any) -> Call[Any]:
    return Call("GET", f"{UPS}/config/mergePolicies", params={"limit": limit, **filters})


def get_merge_policy(policy_id: str) -> Call[Any]:
    return Call("GET", f"{UPS}/config/mergePolicies/{seg(policy_id)}")


def create_merge_policy(body: Mapping[str, Any]) -> Call[Any]:
    return Call("POST", f"{UPS}/config/mergePolicies", json=dict(body))


def replace_merge_policy(policy_id: str, body: Mapping[str, Any]) -> Call[Any]:
    return Call("PUT", f"{UPS}/config/mergePolicies/{seg(policy_id)}", json=dict(body))


def patch_merge_policy(policy_id: str, op: Mapping[str, Any] | list[Mapping[str, Any]]) -> Call[Any]:
    body = [dict(o) for o in op] if isinstance(op, list) else dict(op)
    return Call("PATCH", f"{UPS}/config/mergePolicies/{seg(policy_id)}", json=body)


def delete_merge_policy(policy_id: str) -> Call[Any]:
    return Call("DELETE", f"{UPS}/config/mergePolicies/{seg(policy_id)}")


def bulk_get_merge_policies(ids: list[str]) -> Call[Any]:
    return Call("POST", f"{UPS}/config/mergePolicies/bulk-get", json={"ids": [{"id": i} for i in ids]})


# -- profile access ----------------------------------------------------------------------------
def get_profile(
    entity_id: str,
    namespace: str | None = None,
    *,
    fields: list[str] | None = None,
    merge_policy_id: str | None = None,
) -> Call[Any]:
    params: dict[str, Any] = {"schema.name": PROFILE, "entityId": entity_id}
    if namespace:
        params["entityIdNS"] = namespace
    if fields:
        params["fields"] = ",".join(fields)
    if merge_policy_id:
        params["mergePolicyId"] = merge_policy_id
    return Call("GET", f"{UPS}/access/entities", params=params)


def get_events(
    entity_id: str,
    namespace: str | None = None,
    *,
    limit: int = 1000,
    orderby: str = "timestamp",
    start_time: int | None = None,
    end_time: int | None = None,
    start: str | None = None,
) -> Call[Any]:
    params: dict[str, Any] = {
        "schema.name": EVENT,
        "relatedSchema.name": PROFILE,
        "relatedEntityId": entity_id,
        "limit": limit,
        "orderby": orderby,
    }
    if namespace:
        params["relatedEntityIdNS"] = namespace
    if start_time is not None:
        params["startTime"] = start_time
    if end_time is not None:
        params["endTime"] = end_time
    if start is not None:
        params["start"] = start
    return Call("GET", f"{UPS}/access/entities", params=params)


def get_profiles(
    identities: list[tuple[str, str]], fields: list[str] | None = None, **extra: Any
) -> Call[Any]:
    body: dict[str, Any] = {
        "schema": {"name": PROFILE},
        "identities": [{"entityId": value, "entityIdNS": {"code": ns}} for ns, value in identities],
        **extra,
    }
    if fields:
        body["fields"] = fields
    return Call("POST", f"{UPS}/access/entities", json=body)


def delete_profile(entity_id: str, namespace: str) -> Call[Any]:
    params = {"schema.name": PROFILE, "entityId": entity_id, "entityIdNS": namespace}
    return Call("DELETE", f"{UPS}/access/entities", params=params)


# -- identity service --------------------------------------------------------------------------
def get_xid(namespace: str, value: str) -> Call[str]:
    return Call(
        "GET",
        f"{IDENTITY}/identity",
        params={"namespace": namespace, "id": value},
        parse=lambda b: str(b["xid"]),
    )


def cluster_members(
    *, xid: str | None = None, namespace: str | None = None, value: str | None = None
) -> Call[Any]:
    params = {"xid": xid} if xid else {"namespace": namespace, "id": value}
    return Call("GET", f"{IDENTITY}/cluster/members", params=params)


def clusters_members(
    xids: list[str] | None = None, composite: list[Mapping[str, Any]] | None = None
) -> Call[Any]:
    body: dict[str, Any] = {"graph-type": "Private Graph"}
    if xids:
        body["xids"] = xids
    if composite:
        body["compositeXids"] = [dict(c) for c in composite]
    return Call("POST", f"{IDENTITY}/clusters/members", json=body)


def cluster_history(
    *, xid: str | None = None, namespace: str | None = None, value: str | None = None
) -> Call[Any]:
    params = {"xid": xid} if xid else {"namespace": namespace, "id": value}
    return Call("GET", f"{IDENTITY}/cluster/history", params=params)


def mapping(namespace: str, value: str, target_namespace: str) -> Call[Any]:
    return Call(
        "GET",
        f"{IDENTITY}/mapping",
        params={"namespace": namespace, "id": value, "targetNs": target_namespace},
    )


def list_namespaces() -> Call[Any]:
    return Call("GET", NAMESPACES)


def get_namespace(code_or_id: str | int) -> Call[Any]:
    return Call("GET", f"{NAMESPACES}/{seg(str(code_or_id))}")


def create_namespace(code: str, name: str, id_type: str, description: str = "") -> Call[Any]:
    body = {"code": code, "name": name, "idType": id_type, "description": description}
    return Call("POST", NAMESPACES, json=body)


def explain_link(from_identity: str, to_identity: str) -> Call[Any]:
    """Why two identities are (or are not) in one graph; identities as ``NS:value``."""
    return Call("GET", "/tessera/identity/explain", params={"from": from_identity, "to": to_identity})


# -- schema registry ---------------------------------------------------------------------------
REGISTRY = "/data/foundation/schemaregistry"
XED_FULL = {"Accept": "application/vnd.adobe.xed-full+json;version=1"}


def list_classes(container: str = "global") -> Call[Any]:
    return Call("GET", f"{REGISTRY}/{seg(container)}/classes", headers=XED_FULL)


def list_field_groups(container: str = "tenant") -> Call[Any]:
    return Call("GET", f"{REGISTRY}/{seg(container)}/fieldgroups", headers=XED_FULL)


def create_field_group(body: Mapping[str, Any]) -> Call[Any]:
    return Call("POST", f"{REGISTRY}/tenant/fieldgroups", json=dict(body))


def list_schemas() -> Call[Any]:
    return Call("GET", f"{REGISTRY}/tenant/schemas", headers=XED_FULL)


def get_schema(schema_id: str) -> Call[Any]:
    return Call("GET", f"{REGISTRY}/tenant/schemas/{seg(schema_id)}", headers=XED_FULL)


def create_schema(body: Mapping[str, Any]) -> Call[Any]:
    return Call("POST", f"{REGISTRY}/tenant/schemas", json=dict(body))


def get_union(union_id: str) -> Call[Any]:
    return Call("GET", f"{REGISTRY}/tenant/unions/{seg(union_id)}", headers=XED_FULL)


# -- segmentation ------------------------------------------------------------------------------
def list_segments(limit: int = 100, start: int = 0, **filters: Any) -> Call[Any]:
    return Call("GET", f"{UPS}/segment/definitions", params={"limit": limit, "start": start, **filters})


def get_segment(segment_id: str) -> Call[Any]:
    return Call("GET", f"{UPS}/segment/definitions/{seg(segment_id)}")


def create_segment(body: Mapping[str, Any]) -> Call[Any]:
    return Call("POST", f"{UPS}/segment/definitions", json=dict(body))


def patch_segment(segment_id: str, ops: list[Mapping[str, Any]]) -> Call[Any]:
    return Call("PATCH", f"{UPS}/segment/definitions/{seg(segment_id)}", json=[dict(o) for o in ops])


def delete_segment(segment_id: str) -> Call[Any]:
    return Call("DELETE", f"{UPS}/segment/definitions/{seg(segment_id)}")


def bulk_get_segments(ids: list[str]) -> Call[Any]:
    return Call(
        "POST",
        f"{UPS}/segment/definitions/bulk-get",
        json={"ids": [{"id": i} for i in ids]},
        parse=lambda b: b["results"],
    )


def convert_expression(value: str | Mapping[str, Any], fmt: str = "pql/text", **body: Any) -> Call[Any]:
    """``pql/text`` ⇄ ``pql/json``; the answer's ``expression`` is in the other format."""
    expression = {"type": "PQL", "format": fmt, "value": value if isinstance(value, str) else dict(value)}
    return Call("POST", f"{UPS}/segment/conversion", json={**body, "expression": expression})


def run_segment_job(segment_ids: list[str]) -> Call[Any]:
    return Call("POST", f"{UPS}/segment/jobs", json=[{"segmentId": s} for s in segment_ids])


def get_segment_job(job_id: str) -> Call[Any]:
    return Call("GET", f"{UPS}/segment/jobs/{seg(job_id)}")


def list_segment_jobs(limit: int = 100, start: int = 0, status: str | None = None) -> Call[Any]:
    params: dict[str, Any] = {"limit": limit, "start": start, **({"status": status} if status else {})}
    return Call("GET", f"{UPS}/segment/jobs", params=params)


def cancel_segment_job(job_id: str) -> Call[Any]:
    return Call("DELETE", f"{UPS}/segment/jobs/{seg(job_id)}")


def create_preview(expression: str, fmt: str = "pql/text", graph_type: str = "pdg") -> Call[Any]:
    body = {
        "predicateExpression": expression,
        "predicateType": fmt,
        "predicateModel": PROFILE,
        "graphType": graph_type,
    }
    return Call("POST", f"{UPS}/preview", json=body)


def get_preview(preview_id: str, limit: int = 100, offset: int = 0) -> Call[Any]:
    return Call("GET", f"{UPS}/preview/{seg(preview_id)}", params={"limit": limit, "offset": offset})


def get_estimate(preview_id: str) -> Call[Any]:
    return Call("GET", f"{UPS}/estimate/{seg(preview_id)}")


def delete_preview(preview_id: str) -> Call[Any]:
    return Call("DELETE", f"{UPS}/preview/{seg(preview_id)}")


def explain_segment(segment_id: str, entity_id: str, namespace: str | None = None) -> Call[Any]:
    params = {"entityId": entity_id, **({"entityIdNS": namespace} if namespace else {})}
    return Call("GET", f"/tessera/segments/{seg(segment_id)}/explain", params=params)


def edge_evaluate(
    event: Mapping[str, Any] | None = None,
    *,
    identity: Mapping[str, str] | None = None,
    profile: Mapping[str, Any] | None = None,
) -> Call[Any]:
    """Edge (synchronous) segments for one request; ``event`` is the XDM of the incoming event."""
    body: dict[str, Any] = {}
    if event is not None:
        body["event"] = {"xdm": dict(event)}
    if identity is not None:
        body["identity"] = dict(identity)
    if profile is not None:
        body["profile"] = dict(profile)
    return Call("POST", "/tessera/edge/evaluate", json=body)


def list_schedules() -> Call[Any]:
    return Call("GET", f"{UPS}/config/schedules")


def create_schedule(body: Mapping[str, Any]) -> Call[Any]:
    return Call("POST", f"{UPS}/config/schedules", json=dict(body))


def get_schedule(schedule_id: str) -> Call[Any]:
    return Call("GET", f"{UPS}/config/schedules/{seg(schedule_id)}")


def patch_schedule(schedule_id: str, ops: list[Mapping[str, Any]]) -> Call[Any]:
    return Call("PATCH", f"{UPS}/config/schedules/{seg(schedule_id)}", json=[dict(o) for o in ops])


def delete_schedule(schedule_id: str) -> Call[Any]:
    return Call("DELETE", f"{UPS}/config/schedules/{seg(schedule_id)}")


def create_export(body: Mapping[str, Any]) -> Call[Any]:
    return Call("POST", f"{UPS}/export/jobs", json=dict(body))


def get_export(export_id: str) -> Call[Any]:
    return Call("GET", f"{UPS}/export/jobs/{seg(export_id)}")


def list_exports(limit: int = 100, offset: int = 0, status: str | None = None) -> Call[Any]:
    params: dict[str, Any] = {"limit": limit, "offset": offset, **({"status": status} if status else {})}
    return Call("GET", f"{UPS}/export/jobs", params=params)


def delete_export(export_id: str) -> Call[Any]:
    return Call("DELETE", f"{UPS}/export/jobs/{seg(export_id)}")


def list_audiences(limit: int = 100, start: int = 0, name: str | None = None) -> Call[Any]:
    params: dict[str, Any] = {"limit": limit, "start": start, **({"name": name} if name else {})}
    return Call("GET", f"{UPS}/audiences", params=params)


def get_audience(audience_id: str) -> Call[Any]:
    return Call("GET", f"{UPS}/audiences/{seg(audience_id)}")


def create_audience(body: Mapping[str, Any]) -> Call[Any]:
    return Call("POST", f"{UPS}/audiences", json=dict(body))


def replace_audience(audience_id: str, body: Mapping[str, Any]) -> Call[Any]:
    return Call("PUT", f"{UPS}/audiences/{seg(audience_id)}", json=dict(body))


def set_audience_state(audience_id: str, state: str) -> Call[Any]:
    op = [{"op": "replace", "path": "/lifecycleState", "value": state}]
    return Call("PATCH", f"{UPS}/audiences/{seg(audience_id)}", json=op)


def delete_audience(audience_id: str) -> Call[Any]:
    return Call("DELETE", f"{UPS}/audiences/{seg(audience_id)}")


def bulk_get_audiences(ids: list[str]) -> Call[Any]:
    return Call(
        "POST",
        f"{UPS}/audiences/bulk-get",
        json={"ids": [{"id": i} for i in ids]},
        parse=lambda b: b["results"],
    )


CA = "/data/core/ca/attributes"


def list_computed_attributes(limit: int = 20, offset: int = 0) -> Call[Any]:
    return Call("GET", CA, params={"limit": limit, "offset": offset})


def get_computed_attribute(attribute_id: str) -> Call[Any]:
    return Call("GET", f"{CA}/{seg(attribute_id)}")


def create_computed_attribute(body: Mapping[str, Any]) -> Call[Any]:
    return Call("POST", CA, json=dict(body))


def set_computed_attribute_status(attribute_id: str, status: str) -> Call[Any]:
    return Call("PATCH", f"{CA}/{seg(attribute_id)}", json={"status": status})


def delete_computed_attribute(attribute_id: str) -> Call[Any]:
    return Call("DELETE", f"{CA}/{seg(attribute_id)}")


# -- profile system jobs and privacy ------------------------------------------------------------
def delete_dataset_profile_data(dataset_id: str) -> Call[Any]:
    """A profile system job removing every fragment and event the dataset brought into Profile."""
    return Call("POST", f"{UPS}/system/jobs", json={"dataSetId": dataset_id})


def delete_event_batch(batch_id: str) -> Call[Any]:
    """A profile system job removing the events of one batch (event datasets only)."""
    return Call("POST", f"{UPS}/system/jobs", json={"batchId": batch_id})


def list_system_jobs(limit: int = 100, start: int = 0) -> Call[Any]:
    return Call("GET", f"{UPS}/system/jobs", params={"limit": limit, "start": start})


def get_system_job(job_id: str) -> Call[Any]:
    return Call("GET", f"{UPS}/system/jobs/{seg(job_id)}")


def delete_system_job(job_id: str) -> Call[Any]:
    return Call("DELETE", f"{UPS}/system/jobs/{seg(job_id)}")


PRIVACY = "/data/core/privacy/jobs"


def create_privacy_jobs(body: Mapping[str, Any]) -> Call[Any]:
    return Call("POST", PRIVACY, json=dict(body))


def list_privacy_jobs(regulation: str | None = None, status: str | None = None) -> Call[Any]:
    params = {k: v for k, v in (("regulation", regulation), ("status", status)) if v}
    return Call("GET", PRIVACY, params=params)


def get_privacy_job(job_id: str) -> Call[Any]:
    return Call("GET", f"{PRIVACY}/{seg(job_id)}")
