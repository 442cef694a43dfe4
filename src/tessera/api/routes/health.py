"""Tessera's own operational endpoints: liveness, readiness and the effective settings."""

from __future__ import annotations

from fastapi import APIRouter

from tessera.api.deps import PlatformDep, ok, op
from tessera.api.errors import JsonResponse
from tessera.errors import StorageError, TesseraError
from tessera.settings import SETTINGS
from tessera.store import WriteBatch

PROBE_TABLE = "ops_ready"

router = APIRouter(tags=["Tessera"])


@router.get("/tessera/health", **op({"status": "ok"}, errors=(), summary="Liveness (never needs a key)"))
async def health() -> JsonResponse:
    """The process is up. Needs no API key, so load balancers can probe it."""
    return ok({"status": "ok"})


@router.get(
    "/tessera/ready",
    **op(
        {"status": "ready", "sandboxes": 2, "checked": ["system", "prod"]},
        errors=(),
        extra={503: {"description": "A store does not answer or refuses writes"}},
        summary="Readiness: every open store reads and writes",
    ),
)
def ready(platform: PlatformDep) -> JsonResponse:
    """The system store, the default sandbox and every other open sandbox store answer a read and
    take a write; 503 otherwise.

    The write is an empty transaction (deleting a probe key that never exists), so it proves
    the store is open, not read-only and not locked, without changing any data.
    """
    checked = ["system"]
    try:
        count = len(platform.sandboxes.list())
        platform.system.write(WriteBatch().delete(PROBE_TABLE, "probe"))
        platform.sandbox()  # the default sandbox must open (its graph loaded) before traffic comes
        for sandbox in platform.opened():
            checked.append(sandbox.name)
            sandbox.store.get(PROBE_TABLE, "probe")
            sandbox.store.write(WriteBatch().delete(PROBE_TABLE, "probe"))
    except Exception as exc:  # a broken store must read as "not ready", not as a crash
        detail = exc.message if isinstance(exc, TesseraError) else type(exc).__name__
        raise StorageError(f"Store of {checked[-1]} is not ready: {detail}") from exc
    return ok({"status": "ready", "sandboxes": count, "checked": checked})


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
