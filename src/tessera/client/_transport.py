"""Sending calls: headers, retries with exponential backoff, and errors as ``TesseraError``."""

from __future__ import annotations

import random
from typing import Any

import httpx

import tessera.errors as errors_module
from tessera.errors import TesseraError

RETRY_STATUSES = frozenset({429, 502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_BY_STATUS: dict[int, type[TesseraError]] = {
    400: errors_module.InvalidInput,
    401: errors_module.Unauthorized,
    403: errors_module.Forbidden,
    404: errors_module.NotFound,
    409: errors_module.Conflict,
    413: errors_module.PayloadTooLarge,
    415: errors_module.UnsupportedMediaType,
    422: errors_module.SemanticError,
    429: errors_module.RateLimited,
    503: errors_module.StorageError,
}


def should_retry(method: str, status: int) -> bool:
    """429 and 503 are always safe to retry (nothing was done); other 5xx only for idempotent calls.

    >>> should_retry("POST", 429), should_retry("POST", 500), should_retry("GET", 500)
    (True, False, True)
    """
    if status in (429, 503):
        return True
    return method in IDEMPOTENT and (status in RETRY_STATUSES or status == 500)


def backoff(attempt: int, base: float, retry_after: str | None) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): ``Retry-After`` when given (capped at
    30 s), else ``base * 2**attempt`` with up to 10 % jitter."""
    if retry_after:
        try:
            return min(30.0, max(0.0, float(retry_after)))
        except ValueError:
            pass
    return float(base * (2**attempt) * (1 + random.random() / 10))


def _error_class(body: dict[str, Any], status: int) -> type[TesseraError]:
    name = str(body.get("type", "")).rsplit("/", 1)[-1]
    candidate = getattr(errors_module, name, None)
    if isinstance(candidate, type) and issubclass(candidate, TesseraError) and candidate.status == status:
        return candidate
    return _BY_STATUS.get(status, TesseraError)


def error_from_response(response: httpx.Response) -> TesseraError:
    """The ``TesseraError`` subclass an error response stands for, with its message and path.

    Problem-details bodies keep ``detail``, ``report.path`` and the other report fields; gateway
    bodies (``{"error_code", "message"}``) become ``Unauthorized``/``Forbidden``.
    """
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text[:500] or response.reason_phrase}
    if not isinstance(body, dict):
        body = {"detail": str(body)}
    cls = _error_class(body, response.status_code)
    message = str(body.get("detail") or body.get("message") or body.get("title") or response.reason_phrase)
    report = dict(body.get("report") or {})
    path = report.pop("path", None)
    error = cls.__new__(cls)
    TesseraError.__init__(error, message, path=path, **report)
    error.http_status = response.status_code  # type: ignore[attr-defined]
    if "error_code" in body:
        error.error_code = body["error_code"]  # type: ignore[attr-defined]
    return error


def decode(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise error_from_response(response)
    if not response.content:
        return None
    return response.json()


def default_headers(api_key: str | None, sandbox: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if api_key:
        headers["x-api-key"] = api_key
        headers["Authorization"] = f"Bearer {api_key}"
    if sandbox:
        headers["x-sandbox-name"] = sandbox
    return headers
