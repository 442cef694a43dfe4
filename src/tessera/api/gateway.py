"""The gateway: what every request passes before it reaches a route.

A plain ASGI middleware (no per-request task or thread hop) that, in order:

1. authenticates: when any API key exists, every path but ``/tessera/health`` needs a valid key
   in ``x-api-key`` or ``Authorization: Bearer`` (401), scoped to the sandbox the request names
   in ``x-sandbox-name`` or in a sandbox-management path (403); ``/metrics`` needs a key scoped
   to all sandboxes (403 otherwise), since it carries every sandbox's labels;
2. rate-limits per key (setting ``rate_limit_per_s``; per client address when the server is open);
3. checks the content type of bodies: JSON wherever the reference requires it (400 when missing,
   415 when wrong); raw bytes only on batch-ingestion file uploads;
4. caps bodies (413) before reading them when ``Content-Length`` says so and while reading them
   otherwise: streaming collection at ``max_streaming_message_bytes`` (ten times that for a
   batch), file uploads at ``max_upload_bytes``, every other JSON body at ``max_json_body_bytes``.

The verified key is left in ``scope["state"]["api_key"]`` (``None`` on an open server).
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tessera.api import errors as api_errors
from tessera.api.keys import ApiKey, has_keys, verify_key
from tessera.catalog import DEFAULT_SANDBOX
from tessera.errors import (
    Forbidden,
    InvalidInput,
    PayloadTooLarge,
    RateLimited,
    TesseraError,
    UnsupportedMediaType,
)
from tessera.platform import Platform

OPEN_PATHS = frozenset({"/tessera/health", "/"})
"""Paths that hold no data: health, and the UI's page (it asks for a key before any data call)."""
OPEN_PREFIXES = ("/ui/static/",)
METRICS = "/metrics"
SANDBOX_MGMT = "/data/foundation/sandbox-management/sandboxes"
RAW_UPLOAD = re.compile(r"^/data/foundation/import/batches/[^/]+/datasets/[^/]+/files/[^/]+$")
COLLECTION_BATCH = "/collection/batch/"
COLLECTION = "/collection/"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BATCH_BODY_FACTOR = 10
"""A batch of streaming messages may be this many times one message's limit in total."""


def is_json_type(content_type: str) -> bool:
    """Whether a Content-Type header names JSON (``application/json`` or any ``+json`` type).

    >>> is_json_type("application/vnd.adobe.xed-full+json;version=1")
    True
    >>> is_json_type("text/plain")
    False
    """
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class _Bucket:
    __slots__ = ("tokens", "stamp")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    """Token buckets per caller: ``rate`` per second, bursts up to one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def retry_after(self, caller: str) -> float:
        """0 when the call may proceed (and is counted), else seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        burst = max(1.0, self.rate)
        with self._lock:
            bucket = self._buckets.get(caller)
            if bucket is None:
                bucket = self._buckets[caller] = _Bucket(burst, now)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate


class Gateway:
    """ASGI middleware doing authentication, rate limits and body checks (see module docstring)."""

    def __init__(self, app: ASGIApp, platform: Platform) -> None:
        self.app = app
        self.platform = platform
        self.limiter = RateLimiter(platform.settings.rate_limit_per_s)
        self.max_message = platform.settings.max_streaming_message_bytes
        self.max_json = platform.settings.max_json_body_bytes
        self.max_upload = platform.settings.max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        extra_headers: dict[str, str] | None = None
        try:
            key = self._authenticate(scope, headers)
            caller = key.id if key is not None else str((scope.get("client") or ("local",))[0])
            wait = self.limiter.retry_after(caller)
            if wait > 0:
                extra_headers = {"Retry-After": str(max(1, round(wait)))}
                raise RateLimited(f"Rate limit of {self.limiter.rate:g} requests/s exceeded; retry later")
            receive = self._check_body(scope, headers, receive)
        except TesseraError as err:
            await api_errors.error_response(err, extra_headers)(scope, receive, send)
            return
        scope.setdefault("state", {})["api_key"] = key
        await self.app(scope, receive, send)

    def _authenticate(self, scope: Scope, headers: dict[str, str]) -> ApiKey | None:
        path: str = scope["path"]
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES) or not has_keys(self.platform.system):
            return None
        candidates = []
        if headers.get("x-api-key"):
            candidates.append(headers["x-api-key"].strip())
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            candidates.append(auth[7:].strip())
        if not candidates:
            raise api_errors.missing_key()
        key = None
        for token in candidates:
            key = verify_key(self.platform.system, token)
            if key is not None:
                break
        if key is None:
            raise api_errors.invalid_key()
        if path == METRICS and not key.is_admin:
            raise api_errors.GatewayError(  # the exposition names every sandbox
                Forbidden.status, "403003", "Metrics need an API key scoped to all sandboxes ('*')"
            )
        sandbox = headers.get("x-sandbox-name") or DEFAULT_SANDBOX
        if path.startswith(SANDBOX_MGMT):
            rest = path[len(SANDBOX_MGMT) :].strip("/")
            if scope["method"] != "GET" and not key.is_admin:
                raise api_errors.admin_required()
            if rest:
                sandbox = rest.split("/", 1)[0]
            else:
                return key  # the list is filtered to the key's sandboxes by the route
        if not key.allows(sandbox):
            raise api_errors.wrong_sandbox(sandbox)
        return key

    def _check_body(self, scope: Scope, headers: dict[str, str], receive: Receive) -> Receive:
        method: str = scope["method"]
        if method not in BODY_METHODS:
            return receive
        length_header = headers.get("content-length")
        chunked = "transfer-encoding" in headers
        try:
            length = int(length_header) if length_header is not None else None
        except ValueError as exc:
            raise InvalidInput("Content-Length must be a number", path="content-length") from exc
        if not chunked and not length:
            return receive
        path: str = scope["path"]
        if not RAW_UPLOAD.match(path):
            content_type = headers.get("content-type")
            if not content_type:
                raise InvalidInput("A valid content-type must be specified", path="content-type")
            if not is_json_type(content_type):
                raise UnsupportedMediaType(
                    f"This endpoint takes JSON (application/json), not {content_type.split(';')[0]!r}",
                    path="content-type",
                )
        if path.startswith(COLLECTION):
            cap = self.max_message * (BATCH_BODY_FACTOR if path.startswith(COLLECTION_BATCH) else 1)
        elif RAW_UPLOAD.match(path):
            cap = self.max_upload
        else:
            cap = self.max_json
        if length is not None and length > cap:
            raise _too_large(cap)
        return _capped(receive, cap)


def _too_large(cap: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body is larger than {cap} bytes", path="body", limit=cap)


def _capped(receive: Receive, cap: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message: dict[str, Any] = dict(await receive())
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap:
                raise _too_large(cap)
        return message

    return wrapped
