"""The outermost middleware: request ids, one access-log line and a latency sample per request.

Every request gets an id: the caller's ``x-request-id`` when it is a sane token (letters, digits,
``.-_:``, at most 128 characters), else a new one. It is echoed in the response's
``x-request-id`` header and set in :data:`tessera.ops.logs.REQUEST_ID` while the request is
served, so every log line written meanwhile carries it. Latencies are recorded per route
*template* (``/data/core/ups/segment/jobs/{jobId}``), never per raw path.
"""

from __future__ import annotations

import logging
import random
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tessera.ops import metrics
from tessera.ops.logs import REQUEST_ID

log = logging.getLogger("tessera.access")
HEADER = b"x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED = "<unmatched>"
_ids = random.Random()  # seeded from the entropy pool once


def header_value(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case) in an ASGI scope, without building the
    framework's header mapping."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def request_id_of(scope: Scope) -> str:
    """The caller's request id when acceptable, else a fresh one."""
    text = header_value(scope, HEADER)
    if text is not None and _SANE_ID.match(text):
        return text
    # Unique, not secret: uuid4 reads the system's entropy pool, a system call per request on the
    # event loop's thread (which then waits to get the interpreter lock back from the workers).
    return f"{_ids.getrandbits(128):032x}"


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else UNMATCHED


class Observe:
    """ASGI middleware: request id, access log, latency histogram (see module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        token = REQUEST_ID.set(request_id)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                headers.append((HEADER, request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = route_template(scope)
            method = str(scope.get("method", ""))
            metrics.record_request(method, route, status, seconds)
            if log.isEnabledFor(logging.INFO):
                # made directly: ``log.info`` would also walk the stack for the caller's line,
                # a fifth of the line's cost, to name this very spot on every request
                log.handle(
                    log.makeRecord(
                        log.name,
                        logging.INFO,
                        __file__,
                        0,
                        "%s %s %s",
                        (method, route, status),
                        None,
                        extra={
                            "method": method,
                            "route": route,
                            "status": status,
                            "ms": round(seconds * 1000, 2),
                        },
                    )
                )
            REQUEST_ID.reset(token)
