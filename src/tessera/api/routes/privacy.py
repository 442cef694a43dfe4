"""Privacy Service jobs (``/data/core/privacy/jobs``, §b15): access and delete requests."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from tessera.api.deps import MAX_OFFSET, SandboxDep, json_object, ok, op, parse_json
from tessera.api.errors import JsonResponse

router = APIRouter(prefix="/data/core/privacy", tags=["Privacy"])

REQUEST_EXAMPLE = {
    "companyContexts": [{"namespace": "imsOrgID", "value": "{ORG_ID}"}],
    "users": [
        {
            "key": "user-1",
            "action": ["access", "delete"],
            "userIDs": [{"namespace": "email", "value": "alice@acme.com", "type": "standard"}],
        }
    ],
    "include": ["ProfileService", "identity"],
    "expandIds": True,
    "priority": "normal",
    "regulation": "gdpr",
}
JOB_EXAMPLE = {
    "jobId": "6b0afd7d7772f9211004fef2",
    "customer": {"user": {"key": "user-1", "action": ["access", "delete"]}},
    "regulation": "gdpr",
    "status": "complete",
}


@router.post(
    "/jobs",
    **op({"jobs": [JOB_EXAMPLE], "requestStatus": 1, "totalRecords": 1}, body=REQUEST_EXAMPLE, errors=(400,)),
    summary="Create privacy jobs (one per user)",
)
async def create_jobs(request: Request, sandbox: SandboxDep) -> JsonResponse:
    """Run the access and/or delete request of each user now; ``expandIds`` widens each user to
    their whole identity graph. Jobs are complete when this returns."""
    body = json_object(parse_json(await request.body()))
    jobs = await run_in_threadpool(sandbox.privacy.run, body)
    return ok({"jobs": jobs, "requestStatus": 1, "totalRecords": len(jobs)})


@router.get(
    "/jobs",
    **op({"jobs": [JOB_EXAMPLE], "page": 1, "size": 100, "totalRecords": 1}, errors=(400,)),
    summary="List privacy jobs",
)
def list_jobs(
    sandbox: SandboxDep,
    regulation: str | None = None,
    status: str | None = None,
    page: Annotated[int, Query(ge=1, le=MAX_OFFSET)] = 1,
    size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JsonResponse:
    """Jobs of the sandbox, newest first, filtered by regulation and status."""
    jobs: list[dict[str, Any]] = sorted(
        sandbox.privacy.list(), key=lambda j: j.get("createdAt", 0), reverse=True
    )
    if regulation:
        jobs = [j for j in jobs if j.get("regulation") == regulation]
    if status:
        jobs = [j for j in jobs if j.get("status") == status]
    chunk = jobs[(page - 1) * size : page * size]
    return ok({"jobs": chunk, "page": page, "size": size, "totalRecords": len(jobs)})


@router.get("/jobs/{jobId}", **op(JOB_EXAMPLE, errors=(400, 404)), summary="Read a privacy job")
def get_job(jobId: str, sandbox: SandboxDep) -> JsonResponse:  # noqa: N803
    """One job with what was found (access) and removed (delete)."""
    return ok(sandbox.privacy.get(jobId))
