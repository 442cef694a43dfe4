"""Sandboxes: isolated partitions of one installation, each with its own folder of data.

The list of sandboxes (and API keys, which name the sandboxes they may see) lives in the
installation's system store at ``<home>/system.sqlite``; each sandbox's data lives under
``<home>/sandboxes/<name>/``. Nothing of one sandbox is reachable from another.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from tessera.catalog.ids import epoch_ms
from tessera.errors import Conflict, InvalidInput, NotFound, SemanticError
from tessera.store import PointStore, WriteBatch, get_json, scan_json

SANDBOXES = "sandboxes"
DEFAULT_SANDBOX = "prod"
SANDBOX_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class SandboxRegistry:
    """Create, list and delete sandboxes. ``prod`` always exists and cannot be deleted."""

    def __init__(self, system: PointStore, home: Path) -> None:
        self._store = system
        self._home = home
        if get_json(system, SANDBOXES, DEFAULT_SANDBOX) is None:
            self._put(DEFAULT_SANDBOX, "Production", "production", is_default=True)

    def _put(self, name: str, title: str, kind: str, *, is_default: bool = False) -> dict[str, Any]:
        now = epoch_ms()
        doc = {
            "name": name,
            "title": title,
            "state": "active",
            "type": kind,
            "region": "local",
            "isDefault": is_default,
            "eTag": 1,
            "createdDate": now,
            "lastModifiedDate": now,
        }
        self._store.write(WriteBatch().put_json(SANDBOXES, name, doc))
        return doc

    def create(self, name: str, title: str | None = None, kind: str = "development") -> dict[str, Any]:
        """Create a sandbox.

        Args:
            name: lowercase letters, digits and dashes, at most 63 characters.
            title: display title (defaults to the name).
            kind: ``development`` or ``production``.
        """
        if not SANDBOX_NAME.match(name or ""):
            raise InvalidInput(
                "Sandbox names use lowercase letters, digits and dashes (1-63 characters, not starting with a dash)",
                path="name",
            )
        if kind not in {"development", "production"}:
            raise InvalidInput("Sandbox type must be 'development' or 'production'", path="type")
        if get_json(self._store, SANDBOXES, name) is not None:
            raise Conflict(f"Sandbox {name!r} already exists", path="name")
        return self._put(name, title or name, kind)

    def get(self, name: str) -> dict[str, Any]:
        doc = get_json(self._store, SANDBOXES, name)
        if doc is None:
            raise NotFound(f"Sandbox {name!r} does not exist", path="x-sandbox-name")
        return dict(doc)

    def exists(self, name: str) -> bool:
        return get_json(self._store, SANDBOXES, name) is not None

    def list(self) -> list[dict[str, Any]]:
        return [doc for _, doc in scan_json(self._store, SANDBOXES)]

    def delete(self, name: str) -> None:
        """Delete a sandbox and all of its data. The default sandbox cannot be deleted."""
        self.check_deletable(name)
        self._store.write(WriteBatch().delete(SANDBOXES, name))
        shutil.rmtree(self.folder(name), ignore_errors=True)

    def check_deletable(self, name: str) -> None:
        """Raise unless ``name`` is a sandbox that may be deleted (it exists and is not ``prod``)."""
        if name == DEFAULT_SANDBOX:
            raise SemanticError("The default sandbox 'prod' cannot be deleted", path="name")
        self.get(name)

    def folder(self, name: str) -> Path:
        if not SANDBOX_NAME.match(name):
            raise InvalidInput(f"invalid sandbox name {name!r}", path="x-sandbox-name")
        return self._home / "sandboxes" / name
