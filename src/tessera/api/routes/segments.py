"""Segmentation (§b3-§b8, §b10): segment definitions, segment jobs, previews and estimates,
schedules, export jobs, audiences and computed attributes, plus ``/tessera/segments/…/explain``.

Jobs and exports run to completion before the answer: the returned object is final
(``SUCCEEDED``/``FAILED``), so clients never need to poll, though polling works too.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from tessera import pql
from tessera.api.deps import MAX_OFFSET, SandboxDep, empty, json_object, ok, op, parse_json
from tessera.api.errors import JsonResponse
from tessera.api.routes.profiles import resolve_identity
from tessera.errors import InvalidInput, NotFound, TesseraError
from tessera.model import format_time, parse_time, utcnow
from tessera.platform import Sandbox
from tessera.profile.fragments import identity_entries

router = APIRouter(prefix="/data/core/ups", tags=["Segmentation"])
PROFILE = "_xdm.context.profile"

SEGMENT_BODY = {
    "name": "People in the USA",
    "description": "Home address in the US",
    "schema": {"name": PROFILE},
    "ttlInDays": 60,
    "expression": {"type": "PQL", "format": "pql/text", "value": 'homeAddress.countryCode = "US"'},
    "evaluationInfo": {
        "batch": {"enabled": True},
        "continuous": {"enabled": False},
        "synchronous": {"enabled": False},
    },
}
SEGMENT_EXAMPLE = {
    **SEGMENT_BODY,
    "id": "4afe34ae-8c98-4513-8a1d-67ccaa54bc05",
    "profileInstanceId": "ups",
    "imsOrgId": "",
    "sandbox": {"sandboxId": "prod", "sandboxName": "prod", "type": "production", "default": True},
    "mergePolicyId": "8c4d9a6e-2f1b-4a3e-9d1c-0b6e5f4a3b2c",
    "dataGovernancePolicy": {"excludeOptOut": True},
    "creationTime": 1732780800000,
    "updateTime": 1732780800000,
    "updateEpoch": 1732780800,
}
JOB_EXAMPLE = {
    "id": "d3b4a50d-dfea-43eb-9fca-557ea53771fd",
    "profileInstanceId": "ups",
    "source": "api",
    "status": "SUCCEEDED",
    "segments": [{"segmentId": "4afe34ae-8c98-4513-8a1d-67ccaa54bc05"}],
    "metrics": {
        "segmentedProfileCounter": {"4afe34ae-8c98-4513-8a1d-67ccaa54bc05": 12},
        "totalProfiles": 100,
    },
    "_links": {
        "cancel": {"href": "/segment/jobs/d3b4a50d", "method": "DELETE"},
        "checkStatus": {"href": "/segment/jobs/d3b4a50d", "method": "GET"},
    },
    "creationTime": 1732780800000,
    "updateTime": 1732780801000,
}


def _body(raw: bytes) -> dict[str, Any]:
    return json_object(parse_json(raw))


def _segments(sandbox: Sandbox) -> Any:
    if sandbox.segments is None:
        raise NotFound("Segmentation is not installed in this build", path="segments")
    return sandbox.segments


def _bool_param(value: str | None, path: str) -> bool | None:
    if value is None:
        return None
    if value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise InvalidInput(f"{path} must be true or false", path=path)


# -- definitions --------------------------------------------------------------------------------
@router.get(
    "/segment/definitions",
    **op(
        {
            "segments": [SEGMENT_EXAMPLE],
            "page": {
                "totalCount": 1,
                "totalPages": 1,
                "sortField": "creationTime",
                "sort": "asc",
                "pageSize": 1,
                "limit": 100,
            },
            "link": {},
        },
        errors=(400,),
    ),
    summary="List segment definitions",
)
def list_definitions(
    sandbox: SandboxDep,
    start: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    page: Annotated[
        int | None, Query(ge=0, le=MAX_OFFSET, description="0-based page; overrides start")
    ] = None,
    sort: str = "creationTime:asc",
    continuous: Annotated[str | None, Query(alias="evaluationInfo.continuous.enabled")] = None,
    synchronous: Annotated[str | None, Query(alias="evaluationInfo.synchronous.enabled")] = None,
) -> JsonResponse:
    """Definitions in the reference ``{segments, page, link}`` shape."""
    field, _, order = sort.partition(":")
    if order not in ("", "asc", "desc") or not field:
        raise InvalidInput("sort is <field>:asc or <field>:desc", path="sort")
    return ok(
        _segments(sandbox).definitions.list(
            continuous=_bool_param(continuous, "evaluationInfo.continuous.enabled"),
            synchronous=_bool_param(synchronous, "evaluationInfo.synchronous.enabled"),
            sort=sort,
            start=page * limit if page is not None else start,
            limit=limit,
        )
    )


@router.post(
    "/segment/definitions",
    **op(SEGMENT_EXAMPLE, body=SEGMENT_BODY, errors=(400, 404, 409, 422)),
    summary="Create a segment definition",
)
async def create_definition(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """Validate the PQL (400 with line:column on errors) and store the definition; continuous
    evaluation of an ineligible expression is a 422 that says why."""
    body = _body(await request.body())
    return ok(await run_in_threadpool(_segments(sandbox).create, body))


@router.post(
    "/segment/definitions/bulk-get",
    **op(
        {"results": {SEGMENT_EXAMPLE["id"]: SEGMENT_EXAMPLE}},
        status=207,
        body={"ids": [{"id": SEGMENT_EXAMPLE["id"]}]},
    ),
    summary="Read many segment definitions (207)",
)
async def bulk_get_definitions(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """Each id maps to its definition or to a 404 error body."""
    body = _body(await request.body())
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(
        isinstance(i, dict) and isinstance(i.get("id"), str) for i in ids
    ):
        raise InvalidInput('ids must be an array of {"id": "..."} objects', path="ids")
    results: dict[str, Any] = {}
    for item in ids:
        try:
            results[item["id"]] = _segments(sandbox).get(item["id"])
        except TesseraError as err:
            results[item["id"]] = err.to_json()
    return ok({"results": results}, status=207)


@router.get(
    "/segment/definitions/{segmentId}",
    **op(SEGMENT_EXAMPLE, errors=(400, 404)),
    summary="Read a segment definition",
)
def get_definition(segmentId: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """One definition."""
    return ok(_segments(sandbox).get(segmentId))


@router.patch(
    "/segment/definitions/{segmentId}",
    **op(
        SEGMENT_EXAMPLE,
        body=[{"op": "add", "path": "/name", "value": "US residents"}],
        errors=(400, 404, 422),
    ),
    summary="Change a segment definition (JSON Patch)",
)
async def patch_definition(segmentId: str, request: Request, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """JSON Patch ops (add/replace/remove); the result is validated like a new definition."""
    ops = parse_json(await request.body())
    if isinstance(ops, dict):
        ops = [ops]
    if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
        raise InvalidInput("Expected an array of JSON Patch operations", path="body")
    return ok(await run_in_threadpool(_segments(sandbox).definitions.patch, segmentId, ops))


@router.delete(
    "/segment/definitions/{segmentId}",
    **op(None, errors=(400, 404, 409)),
    summary="Delete a segment definition",
)
def delete_definition(segmentId: str, sandbox: SandboxDep) -> Response:  # noqa: N803
    """Refused (409) while a destination activates it or another definition depends on it."""
    _segments(sandbox).delete(segmentId)
    return empty()


# -- conversion ---------------------------------------------------------------------------------
CONVERSION_BODY = {
    "name": "People in the USA",
    "expression": {"type": "PQL", "format": "pql/text", "value": 'workAddress.country = "US"'},
    "schema": {"name": PROFILE},
    "ttlInDays": 60,
}
CONVERSION_EXAMPLE = {
    "name": "People in the USA",
    "ttlInDays": 60,
    "imsOrgId": "",
    "sandbox": {"sandboxId": "prod", "sandboxName": "prod", "type": "production", "default": True},
    "schema": {"name": PROFILE},
    "expression": {
        "type": "PQL",
        "format": "pql/json",
        "value": orjson.dumps(pql.to_json(pql.parse('workAddress.country = "US"'))).decode(),
    },
}


def convert_expression(expression: Any) -> dict[str, Any]:
    """``pql/text`` ⇄ ``pql/json`` (the JSON form travels as a string, as in the reference)."""
    if not isinstance(expression, dict):
        raise InvalidInput("expression must be an object with type, format and value", path="expression")
    kind = expression.get("type", "PQL")
    if kind == "ARL":
        raise InvalidInput("ARL expressions are not supported; send PQL", path="expression.type")
    if kind != "PQL":
        raise InvalidInput("expression.type must be PQL", path="expression.type")
    fmt, value = expression.get("format"), expression.get("value")
    if fmt == "pql/text":
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput("expression.value must be PQL text", path="expression.value")
        converted = orjson.dumps(pql.to_json(pql.parse(value))).decode()
        return {"type": "PQL", "format": "pql/json", "value": converted}
    if fmt == "pql/json":
        if not isinstance(value, str | dict):
            raise InvalidInput("expression.value must be a pql/json document", path="expression.value")
        return {"type": "PQL", "format": "pql/text", "value": pql.to_text(pql.parse_json(value))}
    raise InvalidInput("expression.format must be pql/text or pql/json", path="expression.format")


@router.post(
    "/segment/conversion",
    **op(CONVERSION_EXAMPLE, body=CONVERSION_BODY, errors=(400,)),
    summary="Convert a PQL expression between pql/text and pql/json",
)
async def convert(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """The body of a segment definition with its expression in the other format; syntax errors
    are 400 with line and column. Nothing is stored."""
    body = _body(await request.body())
    ttl = body.get("ttlInDays", 30)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1:
        raise InvalidInput("ttlInDays must be a positive integer", path="ttlInDays")
    schema = body.get("schema", {"name": PROFILE})
    if not isinstance(schema, dict) or not isinstance(schema.get("name", PROFILE), str):
        raise InvalidInput("schema must be an object with a name", path="schema.name")
    out: dict[str, Any] = {}
    for name in ("name", "description"):
        if isinstance(body.get(name), str):
            out[name] = body[name]
    out.update(
        ttlInDays=ttl,
        imsOrgId="",
        sandbox={
            "sandboxId": sandbox.name,
            "sandboxName": sandbox.name,
            "type": "production" if sandbox.name == "prod" else "development",
            "default": sandbox.name == "prod",
        },
        schema={"name": schema.get("name", PROFILE)},
        expression=convert_expression(body.get("expression")),
    )
    return ok(out)


# -- jobs ---------------------------------------------------------------------------------------
def _page_links(path: str, start: int, limit: int, total: int) -> dict[str, Any]:
    nxt = f"{path}?start={start + limit}&limit={limit}" if start + limit < total else ""
    return {"next": {"href": nxt}}


@router.get(
    "/segment/jobs",
    **op(
        {
            "children": [JOB_EXAMPLE],
            "_page": {"totalCount": 1, "pageSize": 1, "next": ""},
            "_links": {"next": {"href": ""}},
        },
        errors=(400,),
    ),
    summary="List segment jobs",
)
def list_jobs(
    sandbox: SandboxDep,
    start: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    status: str | None = None,
) -> JsonResponse:
    """Newest first; ``status`` one of NEW, PROCESSING, SUCCEEDED, FAILED, CANCELLED."""
    jobs = _segments(sandbox).jobs(status=status, limit=10_000)
    page = jobs[start : start + limit]
    links = _page_links("/segment/jobs", start, limit, len(jobs))
    return ok(
        {
            "children": page,
            "_page": {"totalCount": len(jobs), "pageSize": len(page), "next": links["next"]["href"]},
            "_links": links,
        }
    )


@router.post(
    "/segment/jobs",
    **op(JOB_EXAMPLE, body=[{"segmentId": SEGMENT_EXAMPLE["id"]}], errors=(400, 404)),
    summary="Run a segment job",
)
async def create_job(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """Evaluate the listed definitions (``[{"segmentId": "*"}]`` for all batch ones) over every
    profile; the answer is the finished job with its metrics."""
    body = parse_json(await request.body())
    if (
        not isinstance(body, list)
        or not body
        or not all(isinstance(s, dict) and isinstance(s.get("segmentId"), str) for s in body)
    ):
        raise InvalidInput('The body is an array of {"segmentId": "..."}', path="body")
    return ok(await run_in_threadpool(_segments(sandbox).run_job, body))


@router.get("/segment/jobs/{jobId}", **op(JOB_EXAMPLE, errors=(400, 404)), summary="Read a segment job")
def get_job(jobId: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """Status and metrics of a job."""
    return ok(_segments(sandbox).job(jobId))


@router.delete("/segment/jobs/{jobId}", **op(JOB_EXAMPLE, errors=(400, 404)), summary="Cancel a segment job")
def cancel_job(jobId: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """Cancel a job that has not started; finished jobs are returned unchanged."""
    return ok(_segments(sandbox).cancel_job(jobId))


# -- preview and estimate -----------------------------------------------------------------------
PREVIEW_BODY = {
    "predicateExpression": 'homeAddress.countryCode = "US"',
    "predicateType": "pql/text",
    "predicateModel": PROFILE,
    "graphType": "pdg",
}


@router.post(
    "/preview",
    **op(
        {
            "state": "RESULT_READY",
            "previewQueryId": "p-1",
            "previewQueryStatus": "RESULT_READY",
            "previewId": "p-1",
            "previewExecutionId": 1,
        },
        status=201,
        body=PREVIEW_BODY,
        errors=(400,),
    ),
    summary="Preview an unsaved expression",
)
async def create_preview(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """Evaluate an expression over the profiles (a sample above one million) and keep the result
    for ``GET /preview/{id}`` and ``GET /estimate/{id}``."""
    body = _body(await request.body())
    expression = body.get("predicateExpression")
    fmt = body.get("predicateType", "pql/text")
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidInput("predicateExpression is required", path="predicateExpression")
    if body.get("predicateModel", PROFILE) != PROFILE:
        raise InvalidInput(f"predicateModel must be {PROFILE}", path="predicateModel")
    if body.get("graphType", "pdg") not in ("none", "pdg"):
        raise InvalidInput("graphType must be none or pdg", path="graphType")
    result = await run_in_threadpool(_segments(sandbox).preview, expression, str(fmt))
    pid = result["previewId"]
    return ok(
        {
            "state": result["state"],
            "previewQueryId": pid,
            "previewQueryStatus": result["state"],
            "previewId": pid,
            "previewExecutionId": 1,
        },
        status=201,
    )


@router.get(
    "/preview/{previewId}",
    **op(
        {
            "results": [{"profileId": "i-RW1haWwfYWxpY2VAYWNtZS5jb20"}],
            "state": "RESULT_READY",
            "links": {},
            "page": {"offset": 0, "size": 1},
        },
        errors=(400, 404),
    ),
    summary="Sample profiles of a preview",
)
def get_preview(
    previewId: str,  # noqa: N803
    sandbox: SandboxDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JsonResponse:
    """Matching sample profiles, ``limit`` from ``offset``."""
    return ok(_segments(sandbox).get_preview(previewId, offset=offset, limit=limit))


@router.delete("/preview/{previewId}", **op(None, errors=(400, 404)), summary="Delete a preview")
def delete_preview(previewId: str, sandbox: SandboxDep) -> Response:  # noqa: N803
    """Forget a preview and its estimate."""
    _segments(sandbox).get_estimate(previewId)
    _segments(sandbox).delete_preview(previewId)
    return empty()


@router.get(
    "/estimate/{previewId}",
    **op(
        {
            "estimatedSize": 120,
            "state": "RESULT_READY",
            "profilesReadSoFar": 1000,
            "profilesMatchedSoFar": 120,
            "totalRows": 1000,
            "standardError": 0.0,
            "confidenceInterval": "95%",
            "_links": {"preview": "/preview/p-1"},
        },
        errors=(400, 404),
    ),
    summary="Size estimate of a preview",
)
def get_estimate(previewId: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """Estimated size with its confidence interval and namespace distribution."""
    return ok(_segments(sandbox).get_estimate(previewId))


# -- schedules ----------------------------------------------------------------------------------
SCHEDULE_BODY = {
    "name": "daily",
    "type": "batch_segmentation",
    "properties": {"segments": ["*"]},
    "schedule": "0 0 1 * * ?",
    "state": "active",
}


@router.get(
    "/config/schedules",
    **op(
        {
            "children": [{**SCHEDULE_BODY, "id": "s-1"}],
            "_page": {"totalCount": 1, "pageSize": 1},
            "_links": {"next": {"href": ""}},
        },
        errors=(400,),
    ),
    tags=["Schedules"],
    summary="List schedules",
)
def list_schedules(sandbox: SandboxDep) -> JsonResponse:
    """Every schedule of the sandbox."""
    items = _segments(sandbox).schedules.list()
    return ok(
        {
            "children": items,
            "_page": {"totalCount": len(items), "pageSize": len(items)},
            "_links": {"next": {"href": ""}},
        }
    )


@router.post(
    "/config/schedules",
    **op({**SCHEDULE_BODY, "id": "s-1"}, body=SCHEDULE_BODY, errors=(400, 409)),
    tags=["Schedules"],
    summary="Create a schedule",
)
async def create_schedule(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """A Quartz cron schedule (seconds first) for batch segmentation or exports."""
    return ok(_segments(sandbox).schedules.create(_body(await request.body())))


@router.get(
    "/config/schedules/{scheduleId}",
    **op({**SCHEDULE_BODY, "id": "s-1"}, errors=(400, 404)),
    tags=["Schedules"],
    summary="Read a schedule",
)
def get_schedule(scheduleId: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """One schedule with its next run time."""
    return ok(_segments(sandbox).schedules.get(scheduleId))


@router.patch(
    "/config/schedules/{scheduleId}",
    **op(
        {**SCHEDULE_BODY, "id": "s-1", "state": "inactive"},
        body=[{"op": "add", "path": "/state", "value": "inactive"}],
        errors=(400, 404),
    ),
    tags=["Schedules"],
    summary="Change state, cron, name or properties",
)
async def patch_schedule(scheduleId: str, request: Request, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """JSON Patch ops on ``/state``, ``/schedule``, ``/name`` or ``/properties``."""
    ops = parse_json(await request.body())
    if isinstance(ops, dict):
        ops = [ops]
    if not isinstance(ops, list):
        raise InvalidInput("Expected an array of JSON Patch operations", path="body")
    changes: dict[str, Any] = {}
    for i, item in enumerate(ops):
        if (
            not isinstance(item, dict)
            or item.get("op") not in ("add", "replace")
            or not str(item.get("path", "")).startswith("/")
        ):
            raise InvalidInput("Supported ops are add and replace with a path", path=f"[{i}]")
        changes[str(item["path"])[1:]] = item.get("value")
    return ok(_segments(sandbox).schedules.update(scheduleId, changes))


@router.delete(
    "/config/schedules/{scheduleId}",
    **op(None, errors=(400, 404)),
    tags=["Schedules"],
    summary="Delete a schedule",
)
def delete_schedule(scheduleId: str, sandbox: SandboxDep) -> Response:  # noqa: N803
    """Delete a schedule."""
    _segments(sandbox).schedules.delete(scheduleId)
    return empty()


# -- export jobs --------------------------------------------------------------------------------
EXPORT_BODY = {
    "fields": "identities.id,person.name",
    "mergePolicy": {"id": "8c4d9a6e-2f1b-4a3e-9d1c-0b6e5f4a3b2c", "version": 1},
    "filter": {
        "segments": [{"segmentId": SEGMENT_EXAMPLE["id"], "segmentNs": "ups", "status": ["realized"]}]
    },
    "destination": {"format": "jsonl"},
    "schema": {"name": PROFILE},
}


@router.get(
    "/export/jobs",
    **op(
        {
            "records": [{"id": "e-1", "jobType": "BATCH", "status": "SUCCEEDED"}],
            "page": {"sortField": "createdTime", "sort": "desc", "pageOffset": 0, "pageSize": 1},
            "link": {"next": ""},
        },
        errors=(400,),
    ),
    tags=["Export jobs"],
    summary="List export jobs",
)
def list_exports(
    sandbox: SandboxDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    status: str | None = None,
) -> JsonResponse:
    """Export jobs in the reference ``{records, page, link}`` shape."""
    jobs = _segments(sandbox).activation.exports.list(status=status)
    page = jobs[offset : offset + limit]
    nxt = f"/export/jobs?offset={offset + limit}&limit={limit}" if offset + limit < len(jobs) else ""
    return ok(
        {
            "records": page,
            "page": {"sortField": "createdTime", "sort": "desc", "pageOffset": offset, "pageSize": len(page)},
            "link": {"next": nxt},
        }
    )


@router.post(
    "/export/jobs",
    **op({"id": "e-1", "jobType": "BATCH", "status": "SUCCEEDED"}, body=EXPORT_BODY, errors=(400, 404)),
    tags=["Export jobs"],
    summary="Export profiles",
)
async def create_export(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """Export the profiles of the filtered segments (to a dataset or a file); finished on return."""
    body = _body(await request.body())
    return ok(await run_in_threadpool(_segments(sandbox).activation.exports.create, body))


@router.get(
    "/export/jobs/{exportJobId}",
    **op({"id": "e-1", "jobType": "BATCH", "status": "SUCCEEDED"}, errors=(400, 404)),
    tags=["Export jobs"],
    summary="Read an export job",
)
def get_export(exportJobId: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """One export job with its metrics."""
    return ok(_segments(sandbox).activation.exports.get(exportJobId))


@router.delete(
    "/export/jobs/{exportJobId}",
    **op(None, errors=(400, 404)),
    tags=["Export jobs"],
    summary="Delete an export job",
)
def delete_export(exportJobId: str, sandbox: SandboxDep) -> Response:  # noqa: N803
    """Forget an export job; exports finish on creation, so there is nothing left to cancel."""
    _segments(sandbox).activation.exports.delete(exportJobId)
    return empty()


# -- audiences ----------------------------------------------------------------------------------
AUDIENCE_EXAMPLE = {
    **SEGMENT_EXAMPLE,
    "audienceId": SEGMENT_EXAMPLE["id"],
    "type": "SegmentDefinition",
    "originName": "REAL_TIME_CUSTOMER_PROFILE",
    "lifecycleState": "published",
}


@router.get(
    "/audiences",
    **op(
        {
            "children": [AUDIENCE_EXAMPLE],
            "_page": {"totalCount": 1, "pageSize": 1, "next": "0"},
            "_links": {"next": {"href": ""}},
        },
        errors=(400,),
    ),
    tags=["Audiences"],
    summary="List audiences",
)
def list_audiences(
    sandbox: SandboxDep,
    start: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    name: str | None = None,
) -> JsonResponse:
    """Definition-based and external audiences; ``_page.next`` is the next ``start`` (0 at the end)."""
    items = _segments(sandbox).activation.audiences.list()
    if name:
        items = [a for a in items if name.lower() in str(a.get("name", "")).lower()]
    page = items[start : start + limit]
    more = start + limit < len(items)
    href = f"/audiences?start={start + limit}&limit={limit}" if more else ""
    return ok(
        {
            "children": page,
            "_page": {
                "totalCount": len(items),
                "pageSize": len(page),
                "next": str(start + limit) if more else "0",
            },
            "_links": {"next": {"href": href}},
        }
    )


@router.post(
    "/audiences",
    **op(
        AUDIENCE_EXAMPLE,
        body={
            "name": "Uploaded VIPs",
            "originName": "CUSTOM_UPLOAD",
            "identities": [{"namespace": "Email", "id": "alice@acme.com"}],
        },
        errors=(400, 404, 409, 422),
    ),
    tags=["Audiences"],
    summary="Create an audience",
)
async def create_audience(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """A definition audience (body like a segment definition; starts as draft) or an external
    audience (``originName`` and ``identities``)."""
    body = _body(await request.body())
    return ok(await run_in_threadpool(_segments(sandbox).activation.audiences.create, body))


@router.post(
    "/audiences/bulk-get",
    **op(
        {"results": {AUDIENCE_EXAMPLE["id"]: AUDIENCE_EXAMPLE}},
        status=207,
        body={"ids": [{"id": AUDIENCE_EXAMPLE["id"]}]},
    ),
    tags=["Audiences"],
    summary="Read many audiences (207)",
)
async def bulk_get_audiences(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """Each id maps to its audience or to a 404 error body."""
    ids = _body(await request.body()).get("ids")
    if not isinstance(ids, list) or not all(
        isinstance(i, dict) and isinstance(i.get("id"), str) for i in ids
    ):
        raise InvalidInput('ids must be an array of {"id": "..."} objects', path="ids")
    audiences = _segments(sandbox).activation.audiences
    results: dict[str, Any] = {}
    for item in ids:
        try:
            results[item["id"]] = audiences.get(item["id"])
        except TesseraError as err:
            results[item["id"]] = err.to_json()
    return ok({"results": results}, status=207)


@router.get(
    "/audiences/{audienceId}",
    **op(AUDIENCE_EXAMPLE, errors=(400, 404)),
    tags=["Audiences"],
    summary="Read an audience",
)
def get_audience(audienceId: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """One audience."""
    return ok(_segments(sandbox).activation.audiences.get(audienceId))


@router.put(
    "/audiences/{audienceId}",
    **op(
        AUDIENCE_EXAMPLE,
        body={**SEGMENT_BODY, "name": "US residents"},
        errors=(400, 404, 409, 422),
    ),
    tags=["Audiences"],
    summary="Replace an audience",
)
async def replace_audience(audienceId: str, request: Request, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """A definition audience takes the body's name, description, expression and evaluation
    (re-validated); an external one its name, description, labels and identities."""
    body = _body(await request.body())
    audiences = _segments(sandbox).activation.audiences
    return ok(await run_in_threadpool(audiences.replace, audienceId, body))


@router.patch(
    "/audiences/{audienceId}",
    **op(
        AUDIENCE_EXAMPLE,
        body=[{"op": "replace", "path": "/lifecycleState", "value": "published"}],
        errors=(400, 404, 409),
    ),
    tags=["Audiences"],
    summary="Publish or deactivate an audience",
)
async def patch_audience(audienceId: str, request: Request, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """``/lifecycleState``: draft → published ⇄ inactive."""
    ops = parse_json(await request.body())
    if isinstance(ops, dict):
        ops = [ops]
    if (
        not isinstance(ops, list)
        or len(ops) != 1
        or not isinstance(ops[0], dict)
        or ops[0].get("path") != "/lifecycleState"
    ):
        raise InvalidInput("Only /lifecycleState can be patched", path="[0].path")
    state = ops[0].get("value")
    if not isinstance(state, str):
        raise InvalidInput("lifecycleState is a string", path="[0].value")
    return ok(await run_in_threadpool(_segments(sandbox).activation.audiences.set_state, audienceId, state))


@router.delete(
    "/audiences/{audienceId}",
    **op(None, errors=(400, 404, 409)),
    tags=["Audiences"],
    summary="Delete an audience",
)
def delete_audience(audienceId: str, sandbox: SandboxDep) -> Response:  # noqa: N803
    """Delete an audience (members of an external audience exit it)."""
    _segments(sandbox).activation.audiences.delete(audienceId)
    return empty()


# -- computed attributes ------------------------------------------------------------------------
ca_router = APIRouter(prefix="/data/core/ca", tags=["Computed attributes"])
CA_BODY = {
    "name": "purchaseTotal7d",
    "displayName": "Purchases last 7 days",
    "description": "Sum of order totals",
    "expression": {
        "type": "PQL",
        "format": "pql/text",
        "value": "xEvent[commerce.purchases.value > 0].sum(commerce.order.priceTotal)",
    },
    "duration": {"count": 7, "unit": "DAYS"},
    "status": "DRAFT",
}


@ca_router.get(
    "/attributes",
    **op(
        {
            "_page": {"totalCount": 1, "pageSize": 1},
            "computedAttributes": [{**CA_BODY, "id": "ca-1"}],
            "_links": {"next": {}},
        },
        errors=(400,),
    ),
    summary="List computed attributes",
)
def list_attributes(
    sandbox: SandboxDep,
    limit: Annotated[int, Query(ge=1, le=40)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JsonResponse:
    """Computed attributes, ``limit`` (1-40) from ``offset``."""
    items = _segments(sandbox).computed.list()
    page = items[offset : offset + limit]
    nxt = (
        {"href": f"/data/core/ca/attributes?offset={offset + limit}&limit={limit}"}
        if offset + limit < len(items)
        else {}
    )
    return ok(
        {
            "_page": {"totalCount": len(items), "pageSize": len(page)},
            "computedAttributes": page,
            "_links": {"next": nxt},
        }
    )


@ca_router.post(
    "/attributes",
    **op({**CA_BODY, "id": "ca-1"}, body=CA_BODY, errors=(400, 409)),
    summary="Create a computed attribute",
)
async def create_attribute(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """An aggregate over the profile's events in a look-back window."""
    return ok(_segments(sandbox).computed.create(_body(await request.body())))


@ca_router.get(
    "/attributes/{attributeId}",
    **op({**CA_BODY, "id": "ca-1"}, errors=(400, 404)),
    summary="Read a computed attribute",
)
def get_attribute(attributeId: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """One computed attribute."""
    return ok(_segments(sandbox).computed.get(attributeId))


@ca_router.patch(
    "/attributes/{attributeId}",
    **op(
        {**CA_BODY, "id": "ca-1", "status": "PUBLISHED"}, body={"status": "PUBLISHED"}, errors=(400, 404, 409)
    ),
    summary="Publish or deactivate a computed attribute",
)
async def patch_attribute(attributeId: str, request: Request, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """``{"status": "PUBLISHED" | "INACTIVE"}``."""
    body = _body(await request.body())
    status = body.get("status")
    if not isinstance(status, str):
        raise InvalidInput("status is required", path="status")
    return ok(_segments(sandbox).computed.set_status(attributeId, status))


@ca_router.delete(
    "/attributes/{attributeId}", **op(None, errors=(400, 404)), summary="Delete a computed attribute"
)
def delete_attribute(attributeId: str, sandbox: SandboxDep) -> Response:  # noqa: N803
    """Delete a computed attribute."""
    _segments(sandbox).computed.delete(attributeId)
    return empty()


# -- Tessera extra ------------------------------------------------------------------------------
extra_router = APIRouter(tags=["Tessera"])


@extra_router.get(
    "/tessera/segments/{segmentId}/explain",
    **op(
        {
            "segmentId": SEGMENT_EXAMPLE["id"],
            "profileId": "i-RW1haWwfYWxpY2VAYWNtZS5jb20",
            "qualifies": True,
            "explanation": {},
        },
        errors=(400, 404),
    ),
    summary="Why a profile is or is not in a segment",
)
def explain_segment(
    segmentId: str,  # noqa: N803
    sandbox: SandboxDep,
    entityId: str,  # noqa: N803
    entityIdNS: str | None = None,  # noqa: N803
) -> JsonResponse:
    """The verdict for one profile, each sub-condition's value and the events that matched."""
    identity = resolve_identity(sandbox, entityId, entityIdNS, "entityId")
    return ok(_segments(sandbox).explain(segmentId, sandbox.identity.profile_id_of(identity)))


EDGE_BODY = {
    "event": {
        "xdm": {
            "identityMap": {"Email": [{"id": "alice@acme.com", "primary": True}]},
            "eventType": "web.webpagedetails.pageViews",
            "timestamp": "2024-01-01T12:00:00Z",
            "web": {"webPageDetails": {"name": "checkout"}},
        }
    }
}
EDGE_EXAMPLE = {
    "profileId": "i-RW1haWwfYWxpY2VAYWNtZS5jb20",
    "evaluatedAt": "2024-01-01T12:00:00.000Z",
    "segments": [{"segmentId": SEGMENT_EXAMPLE["id"], "name": SEGMENT_EXAMPLE["name"], "qualifies": True}],
}


def _edge_identity(sandbox: Sandbox, body: dict[str, Any], xdm: dict[str, Any] | None) -> Any:
    given = body.get("identity")
    if given is not None:
        if not isinstance(given, dict) or not isinstance(given.get("id"), str):
            raise InvalidInput("identity must be {namespace, id} strings", path="identity")
        namespace = given.get("namespace")
        if namespace is not None and not isinstance(namespace, str):
            raise InvalidInput("identity.namespace must be a string", path="identity.namespace")
        return resolve_identity(sandbox, given["id"], namespace, "identity.id")
    entries = identity_entries(xdm or {}, path="event.xdm.identityMap")
    if not entries:
        return None
    namespace, value, _ = next((e for e in entries if e[2].get("primary") is True), entries[0])
    return resolve_identity(sandbox, value, namespace, "event.xdm.identityMap")


@extra_router.post(
    "/tessera/edge/evaluate",
    **op(EDGE_EXAMPLE, body=EDGE_BODY, errors=(400, 404)),
    summary="Evaluate edge (synchronous) segments for one request, storing nothing",
)
async def edge_evaluate(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """The definitions with ``evaluationInfo.synchronous.enabled`` judged for the profile of the
    event's primary identity (or ``identity``), with the event counted as if it had been stored,
    like the reference Edge Network's ``/ee/v2/interact``. ``profile`` adds or overrides
    attributes; nothing is written. An identity nobody holds is judged on the event alone."""
    body = _body(await request.body())
    event = body.get("event")
    xdm: dict[str, Any] | None = None
    if event is not None:
        xdm = json_object(event, "event").get("xdm")
        xdm = json_object(xdm, "event.xdm")
        stamp = xdm.get("timestamp")
        if stamp is not None:
            if not isinstance(stamp, str):
                raise InvalidInput("timestamp must be an ISO-8601 string", path="event.xdm.timestamp")
            try:
                parse_time(stamp)
            except ValueError as exc:
                raise InvalidInput(f"Invalid timestamp: {exc}", path="event.xdm.timestamp") from None
    profile = body.get("profile")
    if profile is not None:
        profile = json_object(profile, "profile")
    identity = _edge_identity(sandbox, body, xdm)
    if identity is None and profile is None and xdm is None:
        raise InvalidInput("Send an event, an identity or profile attributes", path="body")
    segments = _segments(sandbox)
    profile_id = sandbox.identity.profile_id_of(identity) if identity is not None else None
    # the event's own time is "now" for its windows, as when it is ingested
    now = parse_time(str(xdm["timestamp"])) if xdm is not None and xdm.get("timestamp") else utcnow()
    verdicts = await run_in_threadpool(
        segments.evaluate_synchronous, profile_id, xdm, profile=profile, now=now
    )
    names = {d["id"]: d.get("name", "") for d in segments.definitions.all()}
    return ok(
        {
            "profileId": profile_id,
            "evaluatedAt": format_time(now),
            "segments": [
                {"segmentId": sid, "name": names.get(sid, ""), "qualifies": verdict}
                for sid, verdict in verdicts.items()
            ],
        }
    )
