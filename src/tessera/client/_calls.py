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


def simulate(events: list[Any], rules: Mapping[str, Any] | None = None) -> Call[Any]:
    return Call(
        "POST", "/tessera/identity/simulate", json={"events": events, **({"rules": rules} if rules else {})}
    )


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
