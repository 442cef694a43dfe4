"""Error rendering: every error the API returns is JSON in one of the reference shapes.

* Problem details (``spec/aep.md`` §b18) for everything a :class:`~tessera.errors.TesseraError`
  describes: ``{"type", "status", "title", "detail", "error_code", "report"}``.
* The gateway shape ``{"error_code": "401013", "message": …}`` for authentication failures,
  because that is what the reference gateway answers before any service sees the request.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.responses import Response

from tessera.errors import Forbidden, SemanticError, TesseraError, Unauthorized, storage_error_of

log = logging.getLogger("tessera.api")


class JsonResponse(Response):
    """JSON via orjson (FastAPI's ``ORJSONResponse`` is deprecated)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class UnsafeBind(SemanticError):
    """Refusing to listen beyond loopback while no API key exists."""

    code = "TESSERA-1901-422"
    title = "Refusing an open server on a public address"


class GatewayError(TesseraError):
    """An authentication or authorisation failure in the reference gateway's shape."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.http_status = status
        self.error_code = error_code

    def to_json(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "message": self.message}


def error_response(err: TesseraError, headers: dict[str, str] | None = None) -> JsonResponse:
    """The response for ``err``: its status and its JSON body."""
    status = int(getattr(err, "http_status", err.status))
    return JsonResponse(err.to_json(), status_code=status, headers=headers)


def crash_response(method: str, path: str, exc: Exception) -> JsonResponse:
    """The 500 for an unexpected error (logged with its trace, never sent), or the storage
    error it stands for (a full disk is 507, not a crash)."""
    if isinstance(exc, OSError) and (full := storage_error_of(exc)) is not None:
        log.error("no space to write on %s %s: %s", method, path, exc)
        return error_response(full)
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return error_response(TesseraError("Internal error; the server log has the details"))


def missing_key() -> GatewayError:
    return GatewayError(
        Unauthorized.status, "401013", "An API key is required: send it as x-api-key or Authorization: Bearer"
    )


def invalid_key() -> GatewayError:
    return GatewayError(Unauthorized.status, "401013", "Oauth token is not valid: unknown or revoked API key")


def wrong_sandbox(sandbox: str) -> GatewayError:
    return GatewayError(Forbidden.status, "403003", f"This API key may not use sandbox {sandbox!r}")


def admin_required() -> GatewayError:
    return GatewayError(
        Forbidden.status, "403003", "Managing sandboxes needs an API key scoped to all sandboxes ('*')"
    )
