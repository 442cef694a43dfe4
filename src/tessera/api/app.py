"""The FastAPI application: :func:`create_app` builds it from a :class:`~tessera.platform.Platform`."""

from __future__ import annotations

import importlib
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from tessera import __version__
from tessera.api import docs
from tessera.api.collection_lane import collection_lane, lane_route
from tessera.api.errors import JsonResponse, crash_response, error_response
from tessera.api.gateway import Gateway
from tessera.api.observe import Observe
from tessera.api.routes import (
    catalog,
    health,
    identity,
    ingest,
    ops,
    privacy,
    profiles,
    sandboxes,
    schemas,
    segments,
    system_jobs,
)
from tessera.api.stream_batcher import batcher_of
from tessera.errors import InvalidInput, NotFound, TesseraError
from tessera.platform import Platform

ROUTERS = (
    health.router,
    # hot paths early: route matching walks the routers in this order
    profiles.router,
    ingest.router,
    identity.router,
    catalog.router,
    sandboxes.router,
    schemas.router,
    privacy.router,
    segments.router,
    segments.ca_router,
    segments.extra_router,
    ops.router,
    system_jobs.router,
)


class HttpProblem(TesseraError):
    """A framework-level HTTP error (405, ...) rendered in the problem shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.http_status = status

    def to_json(self) -> dict[str, Any]:
        body = super().to_json()
        phrase = HTTPStatus(self.http_status).phrase
        body.update(
            status=self.http_status,
            title=phrase,
            type=f"https://tessera.dev/errors/HTTP{self.http_status}",
            error_code=f"TESSERA-1{self.http_status}-{self.http_status}",
        )
        return body


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        where, rest = parts[0], parts[1:]
        if where == "body" and not rest:
            return "body"
        return ".".join(rest) if where == "body" else f"{where}:{'.'.join(rest)}"
    return ".".join(parts)


def validation_to_error(exc: RequestValidationError) -> InvalidInput:
    """The first validation problem as ``InvalidInput`` with its field path; the rest in the report."""
    problems = list(exc.errors())
    first: dict[str, Any] = dict(problems[0]) if problems else {"loc": ("body",), "msg": "Invalid request"}
    loc = tuple(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        position = f"body:{loc[1]}" if len(loc) > 1 else "body"
        detail = first.get("ctx", {}).get("error", first.get("msg", ""))
        return InvalidInput(
            f"Malformed JSON at character {loc[1] if len(loc) > 1 else 0}: {detail}", path=position
        )
    if first.get("type") == "missing" and loc == ("body",):
        return InvalidInput("A JSON body is required", path="body")
    others = [{"path": _field_path(tuple(p.get("loc", ()))), "message": p.get("msg", "")} for p in problems]
    return InvalidInput(
        f"{_field_path(loc)}: {first.get('msg', 'invalid value')}", path=_field_path(loc), errors=others
    )


class TesseraApp(FastAPI):
    """The application, plus the lane that answers streaming collection without the framework
    (see :mod:`tessera.api.collection_lane`)."""

    collection: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (route := lane_route(scope)) is not None:
            # what the framework and its router set for a matched route
            scope["app"] = self
            scope["route"], scope["path_params"] = route[0], {"inletId": route[1]}
            await self.collection(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(platform: Platform) -> FastAPI:
    """Build the REST API for ``platform``.

    Every error is JSON: :class:`~tessera.errors.TesseraError` renders as its status and
    ``to_json()`` body, bad requests as 400 naming the field, unknown routes as 404, anything
    unexpected as 500 without a trace. The gateway middleware does auth, rate limits and body
    checks first (see :mod:`tessera.api.gateway`).

    Routes (``x-sandbox-name`` picks the sandbox, default ``prod``):

    * Tessera: ``GET /tessera/health`` (no key needed), ``GET /tessera/ready``,
      ``GET /tessera/settings``, ``GET /tessera/stats``, ``POST /tessera/identity/simulate``,
      ``GET /tessera/identity/explain``
    * Sandboxes: ``GET|POST /data/foundation/sandbox-management/sandboxes``,
      ``GET|DELETE /data/foundation/sandbox-management/sandboxes/{sandboxName}``
    * Catalog: ``GET|POST /data/foundation/catalog/dataSets``,
      ``GET|PATCH|DELETE /data/foundation/catalog/dataSets/{dataSetId}``,
      ``GET /data/foundation/catalog/batches``, ``GET /data/foundation/catalog/batches/{batchId}``
    * Batch ingestion: ``POST /data/foundation/import/batches``,
      ``PUT|POST|PATCH /data/foundation/import/batches/{batchId}/datasets/{datasetId}/files/{fileName}``,
      ``POST /data/foundation/import/batches/{batchId}?action=COMPLETE|ABORT|REVERT``
    * Streaming: ``GET|POST /data/foundation/flowservice/connections``,
      ``GET /data/foundation/flowservice/connections/{connectionId}``, ``POST /collection/{inletId}``,
      ``POST /collection/batch/{inletId}``
    * Profile: ``GET|POST|DELETE /data/core/ups/access/entities``,
      ``GET|POST /data/core/ups/config/mergePolicies``, ``POST /data/core/ups/config/mergePolicies/bulk-get``,
      ``GET|PUT|PATCH|DELETE /data/core/ups/config/mergePolicies/{mergePolicyId}``,
      ``GET|POST /data/core/ups/system/jobs``, ``GET|DELETE /data/core/ups/system/jobs/{id}``
    * Identity: ``GET /data/core/identity/identity``, ``GET /data/core/identity/cluster/members``,
      ``POST /data/core/identity/clusters/members``, ``GET /data/core/identity/cluster/history``,
      ``POST /data/core/identity/clusters/history``, ``GET /data/core/identity/mapping``,
      ``POST /data/core/identity/mappings``, ``GET|POST /data/core/idnamespace/identities``,
      ``GET /data/core/idnamespace/identities/{namespaceId}``
    * Schema registry: ``GET /data/foundation/schemaregistry/{container}/classes``,
      ``GET /data/foundation/schemaregistry/{container}/classes/{classId}``,
      ``GET /data/foundation/schemaregistry/{container}/fieldgroups``,
      ``GET /data/foundation/schemaregistry/{container}/fieldgroups/{fieldGroupId}``,
      ``POST /data/foundation/schemaregistry/tenant/fieldgroups``,
      ``PUT|DELETE /data/foundation/schemaregistry/tenant/fieldgroups/{fieldGroupId}``,
      ``GET|POST /data/foundation/schemaregistry/tenant/schemas``,
      ``GET|PATCH|DELETE /data/foundation/schemaregistry/tenant/schemas/{schemaId}``,
      ``POST /data/foundation/schemaregistry/tenant/descriptors``,
      ``GET /data/foundation/schemaregistry/tenant/unions``,
      ``GET /data/foundation/schemaregistry/tenant/unions/{unionId}``
    * Segmentation: ``GET|POST /data/core/ups/segment/definitions``,
      ``POST /data/core/ups/segment/definitions/bulk-get``, ``POST /data/core/ups/segment/conversion``,
      ``GET|PATCH|DELETE /data/core/ups/segment/definitions/{segmentId}``,
      ``GET|POST /data/core/ups/segment/jobs``, ``GET|DELETE /data/core/ups/segment/jobs/{jobId}``,
      ``POST /data/core/ups/preview``, ``GET|DELETE /data/core/ups/preview/{previewId}``,
      ``GET /data/core/ups/estimate/{previewId}``, ``GET|POST /data/core/ups/config/schedules``,
      ``GET|PATCH|DELETE /data/core/ups/config/schedules/{scheduleId}``,
      ``GET|POST /data/core/ups/export/jobs``, ``GET|DELETE /data/core/ups/export/jobs/{exportJobId}``,
      ``GET|POST /data/core/ups/audiences``, ``POST /data/core/ups/audiences/bulk-get``,
      ``GET|PUT|PATCH|DELETE /data/core/ups/audiences/{audienceId}``,
      ``GET|POST /data/core/ca/attributes``, ``GET|PATCH|DELETE /data/core/ca/attributes/{attributeId}``,
      ``GET /tessera/segments/{segmentId}/explain``, ``POST /tessera/edge/evaluate``
    * Privacy: ``GET|POST /data/core/privacy/jobs``, ``GET /data/core/privacy/jobs/{jobId}``
    * Operations: ``GET /metrics`` (Prometheus), ``GET /tessera/alerts`` (graph health)
    * Pages: ``GET /docs`` (offline HTML reference), ``GET /openapi.json``, ``GET /`` (landing page or the UI)

    Args:
        platform: the open installation the routes act on (not closed by the app).
    """
    app = TesseraApp(
        title="Tessera API",
        version=__version__,
        description="Real-time customer profiles behind the reference platform's REST shapes.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        default_response_class=JsonResponse,
    )
    app.state.platform = platform
    for router in ROUTERS:
        app.include_router(router)
    _install_error_handlers(app)
    _install_pages(app, platform)
    app.add_middleware(Gateway, platform=platform)
    _complete_openapi(app)
    app.add_middleware(Observe)  # outermost: gateway refusals get a request id and a latency too
    app.collection = collection_lane(platform, batcher_of(app.state))
    return app


def _complete_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = docs.complete(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TesseraError)
    async def tessera_error(request: Request, exc: TesseraError) -> JsonResponse:
        headers = {"Retry-After": "1"} if exc.status == 429 else None
        return error_response(exc, headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JsonResponse:
        return error_response(validation_to_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JsonResponse:
        if exc.status_code == 404:
            err: TesseraError = NotFound(
                f"No route {request.method} {request.url.path}", path=request.url.path
            )
        else:
            err = HttpProblem(exc.status_code, str(exc.detail))
        return error_response(err, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JsonResponse:
        return crash_response(request.method, request.url.path, exc)


def _install_pages(app: FastAPI, platform: Platform) -> None:
    @app.get("/docs", include_in_schema=False)
    async def docs_page() -> HTMLResponse:
        return HTMLResponse(docs.render(app.openapi()))

    try:
        ui = importlib.import_module("tessera.ui")
    except ImportError:
        ui = None
    if ui is not None and hasattr(ui, "mount"):
        ui.mount(app, platform)
        return

    @app.get("/", include_in_schema=False)
    async def landing() -> HTMLResponse:
        return HTMLResponse(
            "<!doctype html><html><head><meta charset='utf-8'><title>Tessera</title></head><body>"
            "<h1>Tessera</h1><p>Real-time customer profiles. API reference: <a href='/docs'>/docs</a>, "
            "OpenAPI document: <a href='/openapi.json'>/openapi.json</a>, health: "
            "<a href='/tessera/health'>/tessera/health</a>.</p></body></html>"
        )
