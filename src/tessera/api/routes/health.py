"""Tessera's own operational endpoints: liveness, readiness and the effective settings."""

from __future__ import annotations

from fastapi import APIRouter

from tessera.api.deps import PlatformDep, ok, op
from tessera.api.errors import JsonResponse
from tessera.errors import StorageError, TesseraError
from tessera.settings import SETTINGS

router = APIRouter(tags=["Tessera"])


@router.get("/tessera/health", **op({"status": "ok"}, errors=(), summary="Liveness (never needs a key)"))
async def health() -> JsonResponse:
    """The process is up. Needs no API key, so load balancers can probe it."""
    return ok({"status": "ok"})


@router.get(
    "/tessera/ready",
    **op({"status": "ready", "sandboxes": 2}, errors=(), summary="Readiness: the stores answer"),
)
def ready(platform: PlatformDep) -> JsonResponse:
    """The system store answers reads; 503 in the problem shape otherwise."""
    try:
        count = len(platform.sandboxes.list())
    except TesseraError:
        raise
    except Exception as exc:  # a broken store must read as "not ready", not as a crash
        raise StorageError(f"The system store does not answer: {type(exc).__name__}") from exc
    return ok({"status": "ready", "sandboxes": count})


@router.get(
    "/tessera/settings",
    **op(
        {
            "settings": [
                {
                    "name": "port",
                    "type": "int",
                    "value": 8000,
                    "default": 8000,
                    "help": "Port the server listens on.",
                },
                {
                    "name": "home",
                    "type": "str",
                    "value": "./tessera-data",
                    "default": "./tessera-data",
                    "help": "Data directory; one folder per sandbox under it (env TESSERA_HOME).",
                },
            ]
        },
        errors=(),
        summary="Effective settings with their help text",
    ),
)
def settings(platform: PlatformDep) -> JsonResponse:
    """Every setting: name, type, effective value, default and help line."""
    values = platform.settings.to_json()
    return ok(
        {
            "settings": [
                {
                    "name": s.name,
                    "type": s.type.__name__,
                    "value": values.get(s.name),
                    "default": s.default,
                    "help": s.help,
                }
                for s in SETTINGS
            ]
        }
    )
