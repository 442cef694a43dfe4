"""Profile system jobs (``/data/core/ups/system/jobs``, §b9): delete a dataset's Profile data or
one event batch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from tessera.api.deps import MAX_OFFSET, SandboxDep, empty, json_object, ok, op, parse_json
from tessera.api.errors import JsonResponse
from tessera.errors import InvalidInput
from tessera.profile.system_jobs import SystemJobs

router = APIRouter(prefix="/data/core/ups", tags=["Profile system jobs"])

JOB_EXAMPLE = {
    "id": "9aba816d-b7c5-4b9f-8b8e-1b2f5b9b6a3e",
    "imsOrgId": "",
    "dataSetId": "5c802d3cd83fc311b2c5b2e1",
    "jobType": "DELETE",
    "status": "COMPLETED",
    "metrics": '{"deletedRecordCount":120,"startTimeInMs":1732780800000,"endTimeInMs":1732780800450}',
    "createEpoch": 1732780800,
    "updateEpoch": 1732780800,
    "creationTime": 1732780800000,
}


@router.post(
    "/system/jobs",
    **op(JOB_EXAMPLE, body={"dataSetId": "5c802d3cd83fc311b2c5b2e1"}, errors=(400, 404, 422)),
    summary="Delete a dataset's Profile data or one event batch",
)
async def create_job(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """``{"dataSetId": …}`` removes every fragment and event the dataset brought into Profile;
    ``{"batchId": …}`` the events of one batch (422 for a record dataset's batch). Finished on
    return; the catalog data stays."""
    body = json_object(parse_json(await request.body()))
    return ok(await run_in_threadpool(SystemJobs(sandbox).create, body))


@router.get(
    "/system/jobs",
    **op(
        {
            "_page": {"count": 1, "next": ""},
            "children": [JOB_EXAMPLE],
            "_links": {"next": {"href": ""}},
        },
        errors=(400,),
    ),
    summary="List profile system jobs",
)
def list_jobs(
    sandbox: SandboxDep,
    start: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    page: Annotated[
        int | None, Query(ge=0, le=MAX_OFFSET, description="0-based page; overrides start")
    ] = None,
    sort: str = "createEpoch:desc",
) -> JsonResponse:
    """Newest first (``sort=createEpoch:asc`` for oldest first); paged by ``start``/``page`` and ``limit``."""
    if sort not in ("createEpoch:desc", "createEpoch:asc"):
        raise InvalidInput("sort is createEpoch:asc or createEpoch:desc", path="sort")
    jobs = SystemJobs(sandbox).list()
    if sort.endswith(":asc"):
        jobs.reverse()
    first = page * limit if page is not None else start
    chunk = jobs[first : first + limit]
    nxt = f"/system/jobs?start={first + limit}&limit={limit}" if first + limit < len(jobs) else ""
    return ok(
        {"_page": {"count": len(chunk), "next": nxt}, "children": chunk, "_links": {"next": {"href": nxt}}}
    )


@router.get("/system/jobs/{id}", **op(JOB_EXAMPLE, errors=(400, 404)), summary="Read a profile system job")
def get_job(id: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: A002
    """Status and metrics of one job."""
    return ok(SystemJobs(sandbox).get(id))


@router.delete("/system/jobs/{id}", **op(None, errors=(400, 404)), summary="Delete a profile system job")
def delete_job(id: str, sandbox: SandboxDep) -> Response:  # noqa: A002
    """Forget the job record (the data it deleted stays deleted)."""
    SystemJobs(sandbox).delete(id)
    return empty()
