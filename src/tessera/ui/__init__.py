"""The marketer web UI: static pages served by the API process, plus the few read helpers they need.

:func:`mount` adds ``GET /`` (the single-page app), ``/ui/static/*`` (its local assets: no CDN, no
build step) and the ``/tessera/ui-api/*`` router. The pages call the same Sandbox services as the
REST API and show its error bodies (``detail`` and ``report``) as they come.
"""

from __future__ import annotations

from tessera.ui.app import STATIC_DIR, mount

__all__ = ["STATIC_DIR", "mount"]
