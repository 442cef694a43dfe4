"""Typed shapes of the API's responses (the reference platform's documented fields)."""

from __future__ import annotations

from typing import Any, TypedDict


class Health(TypedDict):
    status: str


class SandboxDoc(TypedDict, total=False):
    name: str
    title: str
    state: str
    type: str
    region: str
    isDefault: bool
    eTag: int
    createdDate: int
    lastModifiedDate: int


class SandboxList(TypedDict):
    sandboxes: list[SandboxDoc]
    _page: dict[str, Any]
    _links: dict[str, Any]


class SchemaRef(TypedDict, total=False):
    id: str
    contentType: str


class DatasetDoc(TypedDict, total=False):
    id: str
    name: str
    description: str
    schemaRef: SchemaRef
    tags: dict[str, list[str]]
    created: int
    updated: int
    version: str


class BatchDoc(TypedDict, total=False):
    id: str
    status: str
    relatedObjects: list[dict[str, str]]
    inputFormat: dict[str, Any]
    metrics: dict[str, Any]
    errors: list[dict[str, Any]]
    failedRecords: list[dict[str, Any]]
    created: int
    updated: int
    version: str
    tags: dict[str, Any]


class ConnectionDoc(TypedDict, total=False):
    id: str
    name: str
    description: str
    connectionSpec: dict[str, str]
    auth: dict[str, Any]
    etag: str


class StreamResult(TypedDict, total=False):
    inletId: str
    xactionId: str
    receivedTimeMs: int
    syncValidation: dict[str, Any]


class StreamBatchResult(TypedDict, total=False):
    inletId: str
    batchId: str
    receivedTimeMs: int
    responses: list[dict[str, Any]]


class MergePolicyDoc(TypedDict, total=False):
    id: str
    name: str
    imsOrgId: str
    sandbox: dict[str, Any]
    schema: dict[str, str]
    version: int
    identityGraph: dict[str, str]
    attributeMerge: dict[str, Any]
    isActiveOnEdge: bool
    default: bool
    updateEpoch: int


class Paged(TypedDict, total=False):
    _page: dict[str, Any]
    children: list[dict[str, Any]]
    _links: dict[str, Any]


class EntityDoc(TypedDict, total=False):
    entityId: str
    mergePolicy: dict[str, Any]
    sources: list[str]
    entity: dict[str, Any]
    lastModifiedAt: str


class NamespaceDoc(TypedDict, total=False):
    id: int
    code: str
    name: str
    description: str
    idType: str
    status: str
    custom: bool
    createTime: int
    updateTime: int
