"""Mounting the UI on the API app: the page, its static assets and the ``/tessera/ui-api`` router."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from tessera.platform import Platform
from tessera.ui.routes import router, warm_up

log = logging.getLogger("tessera.ui")

STATIC_DIR = Path(__file__).parent / "static"
"""The UI's assets: ``index.html``, ES modules under ``js/`` and ``app.css`` (all local)."""


def mount(app: FastAPI, platform: Platform) -> None:
    """Serve the UI at ``/`` from ``app`` (the API process), next to the REST routes.

    Adds ``GET /`` (the single-page app; pages are ``/#/<page>``), ``/ui/static/*`` and the
    ``/tessera/ui-api/*`` helper routes (read models the reference API has no shape for).

    Args:
        app: the app built by :func:`tessera.api.create_app`.
        platform: the installation the app serves (the routes reach it through ``app.state``).
    """
    # the routes read app.state.platform, like the REST routes; here only the caches are warmed

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    app.include_router(router)
    app.state.ui_warm = threading.Event()

    async def warm_before_serving() -> None:
        await run_in_threadpool(_warm, platform, app.state.ui_warm)

    # At start-up, once `tessera serve` / `tessera demo` have opened every sandbox, and before the
    # server accepts connections: the first visit is then as fast as the next (at a million
    # people the caches take seconds to fill, next to a minute or two of loading the graph). An
    # app used without its lifespan (most tests) never warms anything behind their back.
    app.router.on_startup.append(warm_before_serving)


def _warm(platform: Platform, done: threading.Event) -> None:
    """Fill the UI's caches for every open sandbox, then set ``done``."""
    started = time.perf_counter()
    try:
        for sandbox in platform.opened():
            try:
                warm_up(sandbox)
            except Exception:  # noqa: BLE001 - warming is an optimisation; a closing platform is fine
                log.warning("UI warm-up of sandbox %s failed; pages compute on first visit", sandbox.name,
                            exc_info=True)  # fmt: skip
    finally:
        done.set()
    log.info("UI caches warm in %.1f s", time.perf_counter() - started)
