"""Streaming collection served straight off ASGI, next to the FastAPI application.

``POST /collection/{inletId}`` and ``POST /collection/batch/{inletId}`` carry the busiest traffic
the server gets: one small message per request, thousands per second. Through the framework a
request crossed about a dozen layers (proxy headers, error and telemetry middlewares, the router
matching every route, dependency solving, the response class) that cost more than storing the
message: a trivial route answered 5.8k requests/s here, bare uvicorn 33k. This lane answers those
two paths itself, with the same request id, access log and latency metrics (:class:`Observe`),
the same authentication, rate limits and body checks (:class:`Gateway`), the same handlers
(:func:`~tessera.api.routes.ingest.store_one`, :func:`~tessera.api.routes.ingest.store_many`) and
the same error bodies as the routes. Everything else (other methods, other paths, odd spellings
such as a trailing slash) goes to the application unchanged, which also keeps documenting both
operations in OpenAPI.
"""

from __future__ import annotations

import orjson
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from tessera.api.errors import crash_response, error_response
from tessera.api.gateway import COLLECTION, COLLECTION_BATCH, Gateway
from tessera.api.observe import Observe, header_value
from tessera.api.routes.ingest import store_many, store_one, sync_validation_flag
from tessera.api.stream_batcher import StreamBatcher
from tessera.catalog import DEFAULT_SANDBOX
from tessera.errors import TesseraError
from tessera.platform import Platform

SINGLE_TEMPLATE = "/collection/{inletId}"
BATCH_TEMPLATE = "/collection/batch/{inletId}"
_JSON_HEADERS = [(b"content-type", b"application/json")]


class _Template:
    """What :func:`~tessera.api.observe.route_template` reads from ``scope["route"]``."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


_SINGLE = _Template(SINGLE_TEMPLATE)
_BATCH = _Template(BATCH_TEMPLATE)


def lane_route(scope: Scope) -> tuple[_Template, str] | None:
    """The collection operation and inlet id a request is for, or ``None`` for anything else.

    >>> lane_route({"method": "POST", "path": "/collection/batch/abc"})[1]
    'abc'
    >>> lane_route({"method": "POST", "path": "/collection/abc"})[0].path
    '/collection/{inletId}'
    >>> lane_route({"method": "GET", "path": "/collection/abc"}) is None
    True
    """
    if scope["method"] != "POST":
        return None
    path: str = scope["path"]
    if path.startswith(COLLECTION_BATCH):
        inlet_id = path[len(COLLECTION_BATCH) :]
        template = _BATCH
    elif path.startswith(COLLECTION):
        inlet_id = path[len(COLLECTION) :]
        template = _SINGLE
    else:
        return None
    if not inlet_id or "/" in inlet_id:
        return None
    return template, inlet_id


class CollectionLane:
    """The two collection operations as one ASGI app (behind :class:`Observe` and :class:`Gateway`,
    see :func:`collection_lane`), for requests whose ``scope["route"]`` and
    ``scope["path_params"]`` were set from :func:`lane_route`."""

    def __init__(self, platform: Platform, batcher: StreamBatcher) -> None:
        self.platform = platform
        self.batcher = batcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # set by the application from lane_route, as the framework's router would set them (the
        # access log and latency metrics name the route template)
        template, inlet_id = scope["route"], scope["path_params"]["inletId"]
        try:
            sandbox = self.platform.sandbox(header_value(scope, b"x-sandbox-name") or DEFAULT_SANDBOX)
            raw = await _body(receive)
            if template is _SINGLE:
                body = await store_one(
                    sandbox, inlet_id, raw, sync_validation=_sync_validation(scope), batcher=self.batcher
                )
                status = 200
            else:
                body = await store_many(sandbox, inlet_id, raw, self.batcher)
                status = 207
        except TesseraError as err:
            await error_response(err)(scope, receive, send)
            return
        except Exception as exc:  # noqa: BLE001 - rendered like the application's crash handler
            await crash_response(scope["method"], scope["path"], exc)(scope, receive, send)
            return
        payload = orjson.dumps(body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def collection_lane(platform: Platform, batcher: StreamBatcher) -> ASGIApp:
    """The lane with the request id, access log, metrics and gateway checks every request gets."""
    return Observe(Gateway(CollectionLane(platform, batcher), platform=platform))


def _sync_validation(scope: Scope) -> bool:
    """The route's reading of ``?syncValidation=`` (the framework's query parsing: the last value
    wins); no parsing at all for the usual request without a query."""
    query: bytes = scope.get("query_string", b"")
    return bool(query) and sync_validation_flag(QueryParams(query).get("syncValidation"))


async def _body(receive: Receive) -> bytes:
    """The request body, read as Starlette's ``Request.body`` does but without building a request
    (a client that hangs up leaves what it sent, and the answer goes nowhere)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
