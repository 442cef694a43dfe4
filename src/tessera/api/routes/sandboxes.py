"""Sandbox management (``spec/aep.md`` §a8, §b16): list, create, read and delete sandboxes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from tessera.api.deps import KeyDep, PlatformDep, ok, op
from tessera.api.errors import JsonResponse

router = APIRouter(prefix="/data/foundation/sandbox-management", tags=["Sandbox management"])

EXAMPLE = {
    "name": "prod",
    "title": "Production",
    "state": "active",
    "type": "production",
    "region": "local",
    "isDefault": True,
    "eTag": 1,
    "createdDate": 1732780800000,
    "lastModifiedDate": 1732780800000,
}


class SandboxCreate(BaseModel):
    """Body of ``POST /sandboxes``."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{"name": "dev-1", "title": "Development 1", "type": "development"}]},
    )
    name: str = Field(description="Lowercase letters, digits and dashes; at most 63 characters.")
    title: str | None = None
    type: Literal["development", "production"] = "development"


@router.get(
    "/sandboxes",
    **op(
        {"sandboxes": [EXAMPLE], "_page": {"limit": 50, "count": 1}, "_links": {"next": {"href": ""}}},
        errors=(400,),
        summary="List sandboxes",
    ),
)
def list_sandboxes(platform: PlatformDep, key: KeyDep) -> JsonResponse:
    """Every sandbox the caller's key may use (all of them on an open server)."""
    items = [s for s in platform.sandboxes.list() if key is None or key.allows(s["name"])]
    return ok(
        {
            "sandboxes": items,
            "_page": {"limit": len(items), "count": len(items)},
            "_links": {"next": {"href": ""}},
        }
    )


@router.post(
    "/sandboxes",
    **op(
        {**EXAMPLE, "name": "dev-1", "title": "Development 1", "type": "development", "isDefault": False},
        status=201,
        errors=(400, 409, 422),
    ),
    summary="Create a sandbox",
)
def create_sandbox(body: SandboxCreate, platform: PlatformDep) -> JsonResponse:
    """Create a development (or production) sandbox; its data lives in its own folder."""
    return ok(platform.sandboxes.create(body.name, body.title, body.type), status=201)


@router.get("/sandboxes/{sandboxName}", **op(EXAMPLE, errors=(400, 404)), summary="Read one sandbox")
def get_sandbox(sandboxName: str, platform: PlatformDep) -> JsonResponse:  # noqa: N803 - reference name
    """One sandbox by name."""
    return ok(platform.sandboxes.get(sandboxName))


@router.delete(
    "/sandboxes/{sandboxName}",
    **op({**EXAMPLE, "name": "dev-1", "state": "deleted"}, errors=(400, 404, 422)),
    summary="Delete a sandbox and all its data",
)
def delete_sandbox(sandboxName: str, platform: PlatformDep) -> JsonResponse:  # noqa: N803 - reference name
    """Delete a sandbox with every dataset, profile and segment in it; ``prod`` cannot be deleted."""
    doc = platform.sandboxes.get(sandboxName)
    platform.delete_sandbox(sandboxName)
    return ok({**doc, "state": "deleted"})
