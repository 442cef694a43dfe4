"""Mounting the UI on the API app: the page, its static assets and the ``/tessera/ui-api`` router."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

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
    threading.Thread(target=_warm, args=(platform,), name="tessera-ui-warm-up", daemon=True).start()


def _warm(platform: Platform) -> None:
    """Compute the whole-graph statistics of the sandboxes already open (``tessera demo`` has just
    loaded one) before the first dashboard visit: they take seconds at a million people. Opening
    sandboxes is left to requests, so an app built in a test never opens one behind its back."""
    for sandbox in list(getattr(platform, "_open", {}).values()):
        try:
            warm_up(sandbox)
        except Exception:  # noqa: BLE001 - warming is an optimisation; a closing platform is fine
            log.debug("UI warm-up of %s skipped", sandbox.name, exc_info=True)
