"""Batch ingestion (``/data/foundation/import``, §b13), streaming connections (Flow Service) and
streaming collection (``/collection/…``, §b12).

Batch completion runs the whole batch before answering, so the Catalog shows the final status
as soon as ``?action=COMPLETE`` returns. Streaming messages are validated synchronously: a refused
message gets its 400 at once (single endpoint) or in its slot of the 207 answer (batch endpoint),
and an acknowledged message is durably stored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from tessera.api.deps import (
    SANDBOX_HEADER,
    SandboxDep,
    empty,
    json_object,
    ok,
    op,
    optional_param,
    parse_json,
    sandbox_of,
)
from tessera.api.errors import JsonResponse
from tessera.api.stream_batcher import StreamBatcher, batcher_of
from tessera.catalog.ids import epoch_ms, new_id
from tessera.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from tessera.platform import Sandbox

router = APIRouter(tags=["Ingestion"])
IMPORT = "/data/foundation/import/batches"
FILES = IMPORT + "/{batchId}/datasets/{datasetId}/files/{fileName}"
STREAMING_SPEC = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb"
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
SCHEMA_ID = "https://ns.adobe.com/tessera/schemas/loyalty-members"

BATCH_EXAMPLE = {
    "id": "5d01230fc78a4e4f8c0c6b387b4b8d1c",
    "imsOrg": "tessera",
    "status": "loading",
    "relatedObjects": [{"type": "dataSet", "id": "5c8c3c555033b814b69f947f"}],
    "inputFormat": {"format": "json"},
    "created": 1732780800000,
    "updated": 1732780800000,
    "createdUser": "api",
    "updatedUser": "api",
    "version": "1.0.0",
    "tags": {},
}
ENVELOPE_EXAMPLE = {
    "header": {
        "schemaRef": {"id": SCHEMA_ID, "contentType": "application/vnd.adobe.xed-full+json;version=1"},
        "imsOrgId": "tessera",
        "datasetId": "5c8c3c555033b814b69f947f",
        "source": {"name": "web"},
    },
    "body": {
        "xdmMeta": {
            "schemaRef": {"id": SCHEMA_ID, "contentType": "application/vnd.adobe.xed-full+json;version=1"}
        },
        "xdmEntity": {
            "_id": "evt-1",
            "timestamp": "2024-01-01T12:00:00Z",
            "eventType": "commerce.purchases",
            "identityMap": {"Email": [{"id": "alice@acme.com", "primary": True}]},
        },
    },
}


class InputFormat(BaseModel):
    model_config = ConfigDict(extra="allow")
    format: Literal["json", "jsonl", "csv", "parquet"] = "json"


class BatchCreate(BaseModel):
    """Body of ``POST /batches``."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{"datasetId": "5c8c3c555033b814b69f947f", "inputFormat": {"format": "json"}}]
        },
    )
    datasetId: str = Field(min_length=1)
    inputFormat: InputFormat = Field(default_factory=InputFormat)


def _batch_doc(sandbox: Sandbox, doc: dict[str, Any]) -> dict[str, Any]:
    return {
        **doc,
        "imsOrg": sandbox.settings.tenant,
        "createdUser": doc.get("createdUser", "api"),
        "updatedUser": doc.get("updatedUser", "api"),
    }


def _loading_batch(sandbox: Sandbox, batch_id: str, dataset_id: str) -> dict[str, Any]:
    batch = sandbox.batches.get(batch_id)
    if batch["relatedObjects"][0]["id"] != dataset_id:
        raise NotFound(f"Batch {batch_id} belongs to another dataset than {dataset_id}", path="datasetId")
    if batch["status"] != "loading":
        raise Conflict(f"Batch {batch_id} is {batch['status']}; files can only be added while it is loading")
    return batch


@router.post(IMPORT, **op(BATCH_EXAMPLE, status=201, errors=(400, 404), summary="Create a batch"))
def create_batch(body: BatchCreate, sandbox: SandboxDep) -> JsonResponse:
    """Open a batch for a dataset; upload files to it, then ``?action=COMPLETE``."""
    doc = sandbox.ingest.create_batch(body.datasetId, body.inputFormat.format)
    return ok(_batch_doc(sandbox, doc), status=201)


@router.put(
    FILES,
    **op(None, errors=(400, 404, 409), summary="Upload a small file (raw bytes)"),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "[{...}]",
                }
            },
        }
    },
)
async def put_file(
    batchId: str, datasetId: str, fileName: str, request: Request, sandbox: SandboxDep
) -> Response:  # noqa: N803
    """Store one file (JSON array, JSON lines, CSV or Parquet) of a loading batch."""
    data = await request.body()

    def store() -> None:
        _loading_batch(sandbox, batchId, datasetId)
        sandbox.ingest.upload(batchId, fileName, data)

    await run_in_threadpool(store)
    return empty()


@router.post(
    FILES,
    **op(
        None, status=201, errors=(400, 404, 409), summary="Large file: ?action=INITIALIZE or ?action=COMPLETE"
    ),
)
def file_action(
    batchId: str,  # noqa: N803
    datasetId: str,  # noqa: N803
    fileName: str,  # noqa: N803
    sandbox: SandboxDep,
    action: Annotated[Literal["INITIALIZE", "COMPLETE"], Query(description="INITIALIZE or COMPLETE")],
) -> Response:
    """Start a multipart upload, or finish it after the ``PATCH`` chunks."""
    _loading_batch(sandbox, batchId, datasetId)
    if action == "INITIALIZE":
        sandbox.ingest.staging.initialise(batchId, fileName)
    else:
        sandbox.ingest.staging.finish(batchId, fileName)
    return empty(201)


@router.patch(
    FILES,
    **op(None, errors=(400, 404, 409), summary="Large file: upload one chunk with Content-Range"),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "...",
                }
            },
        }
    },
)
async def patch_file(
    batchId: str,  # noqa: N803
    datasetId: str,  # noqa: N803
    fileName: str,  # noqa: N803
    request: Request,
    sandbox: SandboxDep,
    content_range: Annotated[str, Header(alias="Content-Range", description="e.g. `bytes 0-999/*`")],
) -> Response:
    """Append one chunk; chunks must arrive in order (the range must start where the file ends)."""
    match = CONTENT_RANGE.match(content_range.strip())
    if match is None:
        raise InvalidInput("Content-Range must look like 'bytes 0-999/*'", path="Content-Range")
    first, last = int(match.group(1)), int(match.group(2))
    data = await request.body()
    if last < first or last - first + 1 != len(data):
        raise InvalidInput(
            f"Content-Range covers {last - first + 1} bytes but the body has {len(data)}",
            path="Content-Range",
        )

    def store() -> None:
        _loading_batch(sandbox, batchId, datasetId)
        sandbox.ingest.staging.append(batchId, fileName, first, data)

    await run_in_threadpool(store)
    return empty()


@router.post(
    IMPORT + "/{batchId}",
    **op(None, errors=(400, 404, 409, 422), summary="?action=COMPLETE, ABORT or REVERT a batch"),
)
def batch_action(
    batchId: str,  # noqa: N803
    sandbox: SandboxDep,
    action: Annotated[Literal["COMPLETE", "ABORT", "REVERT"], Query(description="COMPLETE, ABORT or REVERT")],
) -> Response:
    """COMPLETE processes every uploaded file (the batch is final when this returns); ABORT drops
    a loading batch; REVERT removes a finished batch's events from Profile."""
    if action == "COMPLETE":
        sandbox.ingest.complete(batchId)
    elif action == "ABORT":
        sandbox.ingest.abort(batchId)
    else:
        sandbox.ingest.revert(batchId)
    return empty()


# -- Flow Service: streaming connections --------------------------------------------------------
CONNECTIONS = "/data/foundation/flowservice/connections"
CONNECTION_BODY = {
    "name": "Web events",
    "description": "HTTP API streaming connection",
    "connectionSpec": {"id": STREAMING_SPEC, "version": "1.0"},
    "auth": {
        "specName": "Streaming Connection",
        "params": {
            "sourceId": "web",
            "dataType": "xdm",
            "name": "Web events",
            "authenticationRequired": False,
        },
    },
}


def _connection(inlet: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": inlet["id"],
        "name": inlet["name"],
        "description": inlet.get("description", ""),
        "connectionSpec": {"id": STREAMING_SPEC, "version": "1.0"},
        "state": "enabled",
        "auth": {
            "specName": "Streaming Connection",
            "params": {
                "sourceId": inlet["name"],
                "dataType": inlet["dataType"],
                "name": inlet["name"],
                "authenticationRequired": False,
                "inletId": inlet["inletId"],
                "inletUrl": inlet["inletUrl"],
                **({"datasetId": inlet["datasetId"]} if inlet.get("datasetId") else {}),
            },
        },
        "createdAt": inlet["created"],
        "etag": f'"{inlet["created"]:x}"',
    }


@router.post(
    CONNECTIONS,
    **op(
        {"id": "6b0af7a683d62f6cded0e0546b0af7a683d62f6c", "etag": '"18c2f1a0e00"'},
        status=201,
        body=CONNECTION_BODY,
    ),
    summary="Create a streaming (HTTP API) connection",
)
async def create_connection(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """Create an inlet; post messages to ``/collection/{id}``. ``auth.params.datasetId`` (a Tessera
    extension) lets messages without ``header.datasetId`` land in that dataset."""
    body = json_object(parse_json(await request.body()))
    spec = body.get("connectionSpec") or {}
    if not isinstance(spec, dict) or spec.get("id", STREAMING_SPEC) != STREAMING_SPEC:
        raise InvalidInput(
            f"Only the HTTP API streaming connection spec {STREAMING_SPEC} is supported",
            path="connectionSpec.id",
        )
    auth = body.get("auth") or {}
    params = auth.get("params") if isinstance(auth, dict) else None
    params = params if isinstance(params, dict) else {}
    name = body.get("name") or params.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInput("A connection needs a name", path="name")
    data_type = params.get("dataType", "xdm")
    dataset_id = params.get("datasetId")
    if not isinstance(data_type, str) or (dataset_id is not None and not isinstance(dataset_id, str)):
        raise InvalidInput("auth.params.dataType and datasetId must be strings", path="auth.params")
    inlet = await run_in_threadpool(
        sandbox.ingest.create_inlet, name, data_type=data_type, dataset_id=dataset_id
    )
    return ok({"id": inlet["id"], "etag": _connection(inlet)["etag"]}, status=201)


@router.get(
    CONNECTIONS,
    **op(
        {
            "items": [
                _connection(
                    {
                        "id": "c1",
                        "name": "Web",
                        "dataType": "xdm",
                        "inletId": "c1",
                        "inletUrl": "/collection/c1",
                        "created": 1,
                    }
                )
            ]
        },
        errors=(400, 404),
    ),
    summary="List streaming connections",
)
def list_connections(sandbox: SandboxDep) -> JsonResponse:
    """Every streaming connection of the sandbox, in Flow Service's ``items`` shape."""
    return ok({"items": [_connection(i) for i in sandbox.ingest.inlets()]})


@router.get(
    CONNECTIONS + "/{connectionId}",
    **op(
        {
            "items": [
                _connection(
                    {
                        "id": "c1",
                        "name": "Web",
                        "dataType": "xdm",
                        "inletId": "c1",
                        "inletUrl": "/collection/c1",
                        "created": 1,
                    }
                )
            ]
        },
        errors=(400, 404),
    ),
    summary="Read a connection (its inletUrl)",
)
def get_connection(connectionId: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """One connection with ``auth.params.inletId`` and ``inletUrl``."""
    return ok({"items": [_connection(sandbox.ingest.inlet(connectionId))]})


# -- streaming collection -----------------------------------------------------------------------
SYNC_VALIDATION_PARAM = optional_param("syncValidation", "query", "true: answer with a syncValidation block")


def sync_validation_flag(value: str | None) -> bool:
    """Whether ``?syncValidation=`` asks for the validation block (``true``, any case)."""
    return (value or "").lower() == "true"


@router.post(
    "/collection/{inletId}",
    **op(
        {
            "inletId": "6b0af7a683d62f6cded0e054",
            "xactionId": "5c8c3c555033b814b69f947f-1732780800000-0",
            "receivedTimeMs": 1732780800000,
        },
        body=ENVELOPE_EXAMPLE,
        errors=(400, 404, 413),
        parameters=[SYNC_VALIDATION_PARAM, SANDBOX_HEADER],
    ),
    tags=["Streaming collection"],
    summary="Send one streaming message",
)
async def collect_one(inletId: str, request: Request) -> JsonResponse:  # noqa: N803
    """Validate and store one message (the reference envelope, or a bare record when the
    connection names a dataset). 400 with the reason and field path when it is refused.

    The app answers this path through :mod:`tessera.api.collection_lane` (same code, without the
    framework's routing); this route documents it and serves the bare router."""
    body = await store_one(
        sandbox_of(request),
        inletId,
        await request.body(),
        sync_validation=sync_validation_flag(request.query_params.get("syncValidation")),
        batcher=batcher_of(request.app.state),
    )
    return ok(body)


async def store_one(
    sandbox: Sandbox, inlet_id: str, raw: bytes, *, sync_validation: bool, batcher: StreamBatcher
) -> dict[str, Any]:
    """``POST /collection/{inletId}``: the answer's body, or the refusal raised as an error."""
    received = epoch_ms()
    message = parse_json(raw)
    inlet = sandbox.ingest.inlet(inlet_id)
    [result] = await batcher.stream(sandbox, [message], inlet.get("datasetId"))
    if "xactionId" not in result:
        status = int(result.get("statusCode", 400))
        error: Any = (
            NotFound(result["message"], path="header.datasetId")
            if status == 404
            else InvalidInput(result["message"], path=result.get("path") or "body")
        )
        raise error
    body: dict[str, Any] = {"inletId": inlet_id, "xactionId": result["xactionId"], "receivedTimeMs": received}
    if sync_validation:
        body["syncValidation"] = {"status": "pass"}
    return body


@router.post(
    "/collection/batch/{inletId}",
    **op(
        {
            "inletId": "6b0af7a683d62f6cded0e054",
            "batchId": "1732780800000:6b0af7a683d62f6c",
            "receivedTimeMs": 1732780800000,
            "responses": [
                {"xactionId": "5c8c3c555033b814b69f947f-1732780800000-0"},
                {
                    "statusCode": 400,
                    "message": "timestamp is required for ExperienceEvents",
                    "path": "timestamp",
                },
            ],
        },
        status=207,
        body={"messages": [ENVELOPE_EXAMPLE]},
        errors=(400, 404, 413),
        parameters=[SANDBOX_HEADER],
    ),
    tags=["Streaming collection"],
    summary="Send many streaming messages (207 per-message results)",
)
async def collect_batch(inletId: str, request: Request) -> JsonResponse:  # noqa: N803
    """Validate and store each message on its own: one bad message never refuses the others.
    Each message over ``max_streaming_message_bytes`` gets a 413 entry (served like
    :func:`collect_one`)."""
    body = await store_many(sandbox_of(request), inletId, await request.body(), batcher_of(request.app.state))
    return ok(body, status=207)


async def store_many(sandbox: Sandbox, inlet_id: str, raw: bytes, batcher: StreamBatcher) -> dict[str, Any]:
    """``POST /collection/batch/{inletId}``: the 207 answer's body (one result per message)."""
    received = epoch_ms()
    body = json_object(parse_json(raw))
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise InvalidInput("The body needs a 'messages' array", path="messages")
    most = sandbox.settings.max_streaming_batch_messages
    if len(messages) > most:
        raise PayloadTooLarge(
            f"A batch holds at most {most} messages, this one has {len(messages)}; split it",
            path="messages",
            limit=most,
        )
    limit = sandbox.settings.max_streaming_message_bytes

    inlet = sandbox.ingest.inlet(inlet_id)
    results: list[dict[str, Any]] = [{} for _ in messages]
    keep: list[int] = []
    # Re-encoding a message can only grow it by rewriting numbers (``1e9`` → ``1000000000.0``,
    # at most 8x), so a body under an eighth of the limit holds no oversized message.
    small = len(raw) * 8 <= limit
    for i, message in enumerate(messages):
        if not small and len(orjson.dumps(message)) > limit:
            results[i] = {
                "statusCode": PayloadTooLarge.status,
                "message": f"Message is larger than {limit} bytes",
            }
        else:
            keep.append(i)
    if keep:
        streamed = await batcher.stream(sandbox, [messages[i] for i in keep], inlet.get("datasetId"))
        for i, result in zip(keep, streamed, strict=True):
            results[i] = result
    return {
        "inletId": inlet_id,
        "batchId": f"{received}:{new_id()[:16]}",
        "receivedTimeMs": received,
        "responses": results,
    }
