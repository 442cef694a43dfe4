"""Catalog (``spec/aep.md`` §b13-§b14): datasets and batches, in the reference's id-keyed shapes.

Catalog answers lists *and* single reads as an object keyed by id (``{"<id>": {...}}``), and
answers writes with a list of references (``["@/dataSets/<id>"]``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from tessera.api.deps import MAX_OFFSET, SandboxDep, ok, op
from tessera.api.errors import JsonResponse
from tessera.errors import InvalidInput

router = APIRouter(prefix="/data/foundation/catalog", tags=["Catalog"])

SCHEMA_ID = "https://ns.adobe.com/tessera/schemas/loyalty-members"
DATASET_EXAMPLE = {
    "5c8c3c555033b814b69f947f": {
        "id": "5c8c3c555033b814b69f947f",
        "name": "Loyalty Members",
        "description": "",
        "schemaRef": {"id": SCHEMA_ID, "contentType": "application/vnd.adobe.xed+json;version=1"},
        "tags": {"unifiedProfile": ["enabled:true"], "unifiedIdentity": ["enabled:true"]},
        "created": 1732780800000,
        "updated": 1732780800000,
        "version": "1.0.0",
    }
}
BATCH_EXAMPLE = {
    "5d01230fc78a4e4f8c0c6b387b4b8d1c": {
        "id": "5d01230fc78a4e4f8c0c6b387b4b8d1c",
        "status": "success",
        "relatedObjects": [{"type": "dataSet", "id": "5c8c3c555033b814b69f947f"}],
        "inputFormat": {"format": "json"},
        "metrics": {"inputRecordCount": 3, "outputRecordCount": 2, "failedRecordCount": 1},
        "errors": [
            {
                "code": "TESSERA-1101-400",
                "description": "person.name.firstName must be a string",
                "recordIndex": 2,
            }
        ],
        "created": 1732780800000,
        "updated": 1732780801000,
        "version": "1.0.0",
        "tags": {},
    }
}
MAX_LIMIT = 100
MAX_ERRORS_SHOWN = 100


class SchemaRef(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1, description="`$id` of the XDM schema the records conform to.")
    contentType: str = "application/vnd.adobe.xed+json;version=1"


class DatasetCreate(BaseModel):
    """Body of ``POST /dataSets``. Without ``tags`` the dataset is not enabled for Profile or
    Identity, as in the reference platform."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "name": "Loyalty Members",
                    "schemaRef": {"id": SCHEMA_ID, "contentType": "application/vnd.adobe.xed+json;version=1"},
                    "tags": {"unifiedProfile": ["enabled:true"], "unifiedIdentity": ["enabled:true"]},
                }
            ]
        },
    )
    name: str = Field(min_length=1, max_length=256)
    schemaRef: SchemaRef
    description: str = ""
    tags: dict[str, list[str]] = Field(default_factory=dict)


class DatasetPatch(BaseModel):
    """Body of ``PATCH /dataSets/{id}``: any of ``name``, ``description`` and ``tags``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"tags": {"unifiedProfile": ["enabled:true"], "unifiedIdentity": ["enabled:true"]}}]
        },
    )
    name: str | None = Field(default=None, min_length=1, max_length=256)
    description: str | None = None
    tags: dict[str, list[str]] | None = None


def _page(items: list[dict[str, Any]], start: int, limit: int) -> dict[str, Any]:
    return {doc["id"]: doc for doc in items[start : start + limit]}


def _properties(doc: dict[str, Any], properties: str | None) -> dict[str, Any]:
    if not properties:
        return doc
    wanted = {p.strip() for p in properties.split(",") if p.strip()}
    return {k: v for k, v in doc.items() if k in wanted or k == "id"}


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (at most 100).")]
Start = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Offset of the first item.")]


@router.post(
    "/dataSets",
    **op(
        ["@/dataSets/5c8c3c555033b814b69f947f"],
        status=201,
        errors=(400, 404, 409),
        summary="Create a dataset",
    ),
)
def create_dataset(body: DatasetCreate, sandbox: SandboxDep) -> JsonResponse:
    """Create a dataset for a schema; ``tags`` enable it for Profile (``unifiedProfile``) and
    Identity (``unifiedIdentity``), ``isUpsert:true`` makes record writes upserts."""
    profile_tags = body.tags.get("unifiedProfile", [])
    doc = sandbox.datasets.create(
        body.name,
        body.schemaRef.id,
        profile="enabled:true" in profile_tags,
        identity="enabled:true" in body.tags.get("unifiedIdentity", []),
        upsert="isUpsert:true" in profile_tags,
        description=body.description,
    )
    others = {k: v for k, v in body.tags.items() if k not in {"unifiedProfile", "unifiedIdentity"}}
    if others:
        sandbox.datasets.patch(doc["id"], {"tags": others})
    return ok([f"@/dataSets/{doc['id']}"], status=201)


@router.get("/dataSets", **op(DATASET_EXAMPLE, errors=(400, 404), summary="List datasets (id-keyed)"))
def list_datasets(
    sandbox: SandboxDep,
    limit: Limit = 50,
    start: Start = 0,
    name: Annotated[str | None, Query(description="Only the dataset with this exact name.")] = None,
    properties: Annotated[str | None, Query(description="Comma-separated fields to return.")] = None,
) -> JsonResponse:
    """Datasets, oldest first, as an object keyed by id."""
    items = sorted(sandbox.datasets.list(), key=lambda d: (d["created"], d["id"]))
    if name is not None:
        items = [d for d in items if d["name"] == name]
    return ok({k: _properties(v, properties) for k, v in _page(items, start, limit).items()})


@router.get("/dataSets/{dataSetId}", **op(DATASET_EXAMPLE, errors=(400, 404), summary="Read one dataset"))
def get_dataset(dataSetId: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803 - reference name
    """One dataset, keyed by its id."""
    return ok({dataSetId: sandbox.datasets.get(dataSetId)})


@router.patch(
    "/dataSets/{dataSetId}",
    **op(
        ["@/dataSets/5c8c3c555033b814b69f947f"], errors=(400, 404), summary="Update name, description or tags"
    ),
)
def patch_dataset(dataSetId: str, body: DatasetPatch, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """Merge new tags into the dataset (e.g. enable it for Profile) or rename it."""
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise InvalidInput("Nothing to change: give name, description or tags", path="body")
    sandbox.datasets.patch(dataSetId, changes)
    return ok([f"@/dataSets/{dataSetId}"])


@router.delete(
    "/dataSets/{dataSetId}",
    **op(["@/dataSets/5c8c3c555033b814b69f947f"], errors=(400, 404), summary="Delete a dataset"),
)
def delete_dataset(dataSetId: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803 - reference name
    """Delete the dataset's catalog entry."""
    sandbox.datasets.delete(dataSetId)
    return ok([f"@/dataSets/{dataSetId}"])


@router.get(
    "/batches", **op(BATCH_EXAMPLE, errors=(400, 404), summary="List batches (id-keyed, newest first)")
)
def list_batches(
    sandbox: SandboxDep,
    limit: Limit = 50,
    start: Start = 0,
    dataSet: Annotated[str | None, Query(description="Only batches of this dataset id.")] = None,  # noqa: N803
    status: Annotated[
        str | None, Query(description="Only batches in this status (loading, success, failed, ...).")
    ] = None,
) -> JsonResponse:
    """Batches with status and metrics, newest first, keyed by id."""
    items = sandbox.batches.list(dataSet)
    if status is not None:
        items = [b for b in items if b["status"] == status]
    return ok(_page(items, start, limit))


@router.get(
    "/batches/{batchId}", **op(BATCH_EXAMPLE, errors=(400, 404), summary="Read one batch with its errors")
)
def get_batch(batchId: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803 - reference name
    """One batch with status, metrics, batch-level ``errors`` and the first 100 per-record
    diagnostics (``failedRecords``: record index, reason and field path)."""
    doc = sandbox.batches.get(batchId)
    doc.setdefault("errors", [])
    doc["failedRecords"] = list(sandbox.batches.errors(batchId, limit=MAX_ERRORS_SHOWN))
    return ok({batchId: doc})
