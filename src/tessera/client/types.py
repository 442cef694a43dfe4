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


class SegmentDoc(TypedDict, total=False):
    id: str
    name: str
    description: str
    schema: dict[str, str]
    ttlInDays: int
    expression: dict[str, Any]
    mergePolicyId: str
    evaluationInfo: dict[str, Any]
    sandbox: dict[str, Any]
    creationTime: int
    updateTime: int
    updateEpoch: int


class SegmentList(TypedDict, total=False):
    segments: list[SegmentDoc]
    page: dict[str, Any]
    link: dict[str, Any]


class ConversionDoc(TypedDict, total=False):
    name: str
    ttlInDays: int
    imsOrgId: str
    sandbox: dict[str, Any]
    schema: dict[str, str]
    expression: dict[str, Any]


class SegmentJobDoc(TypedDict, total=False):
    id: str
    status: str
    source: str
    segments: list[dict[str, Any]]
    metrics: dict[str, Any]
    batchId: str
    _links: dict[str, Any]
    creationTime: int
    updateTime: int


class PreviewDoc(TypedDict, total=False):
    state: str
    previewId: str
    previewQueryId: str
    previewQueryStatus: str
    previewExecutionId: int


class EstimateDoc(TypedDict, total=False):
    estimatedSize: int
    state: str
    profilesReadSoFar: int
    profilesMatchedSoFar: int
    totalRows: int
    standardError: float
    confidenceInterval: str


class EdgeVerdict(TypedDict):
    segmentId: str
    name: str
    qualifies: bool


class EdgeResult(TypedDict, total=False):
    profileId: str | None
    evaluatedAt: str
    segments: list[EdgeVerdict]


class ExportJobDoc(TypedDict, total=False):
    id: str
    jobType: str
    status: str
    destination: dict[str, Any]
    fields: str
    filter: dict[str, Any]
    metrics: dict[str, Any]
    creationTime: int
    updateTime: int


class AudienceDoc(TypedDict, total=False):
    id: str
    audienceId: str
    name: str
    description: str
    type: str
    originName: str
    lifecycleState: str
    expression: dict[str, Any]
    identities: list[dict[str, str]]
    creationTime: int
    updateTime: int


class SystemJobDoc(TypedDict, total=False):
    id: str
    imsOrgId: str
    dataSetId: str
    batchId: str
    jobType: str
    status: str
    metrics: str
    createEpoch: int
    updateEpoch: int
