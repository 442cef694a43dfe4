"""The facade: one :class:`Platform` per installation, one :class:`Sandbox` per partition.

This module only wires stages together; behaviour lives in the stage packages. API, CLI and
UI all go through it.

>>> import tempfile
>>> with Platform.open(tempfile.mkdtemp()) as platform:
...     prod = platform.sandbox()
...     [s["name"] for s in platform.sandboxes.list()]
['prod']
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from tessera.catalog import DEFAULT_SANDBOX, Batches, Datasets, SandboxRegistry
from tessera.errors import InvalidInput
from tessera.ops.migrations import open_format
from tessera.settings import Settings
from tessera.store import PointStore, SqliteStore
from tessera.store.base import clear_store
from tessera.store.sqlite import set_memory_budget
from tessera.store.staged import StagedStore


def open_point_store(settings: Settings, sandbox: str, folder: Path) -> PointStore:
    """The point store the settings ask for: embedded SQLite, or Redis (standalone or cluster)."""
    if settings.point_store == "sqlite":
        return SqliteStore(folder / "point.sqlite", group_commit_ms=settings.group_commit_ms)
    if settings.point_store == "redis":
        from tessera.store.redis import RedisStore, RedisStoreConfig

        folder.mkdir(parents=True, exist_ok=True)  # staging files and exports still live on disk
        return RedisStore.from_config(
            RedisStoreConfig(
                url=settings.redis_url,
                cluster=settings.redis_cluster,
                namespace=f"{settings.redis_namespace}:{sandbox}",
            )
        )
    raise InvalidInput(
        f"Unknown point_store {settings.point_store!r}; use sqlite or redis", path="point_store"
    )


class Sandbox:
    """Everything of one sandbox: its store and the services built on it, in flow order.

    Attributes:
        datasets, batches: the catalog.
        schemas: XDM classes, field groups, schemas and union schemas.
        ingest: batch files and streaming messages.
        identity: the identity graph with its linking rules.
        merge_policies: how fragments combine.
        profiles: fragments, events and merged profiles.
        segments: PQL segment definitions, memberships, jobs.
    """

    def __init__(self, name: str, folder: Path, settings: Settings) -> None:
        from tessera.identity.service import IdentityService
        from tessera.ingest.service import IngestService
        from tessera.profile.policy_store import MergePolicyService
        from tessera.profile.privacy import PrivacyService
        from tessera.profile.service import ProfileService
        from tessera.xdm.service import SchemaService

        self.name = name
        self.folder = folder
        self.settings = settings
        self.store: PointStore = open_point_store(settings, name, folder)
        try:
            open_format(self.store, f"sandbox {name!r}")  # migrate an older format, refuse a newer one
        except BaseException:
            self.store.close()
            raise
        self.write_lock = threading.RLock()
        """Serialises the ingestion flow of this sandbox (one logical writer)."""
        self.timer_guard: Callable[[], AbstractContextManager[bool]] | None = None
        """With several processes on the sandbox: whether this one runs the current timer round
        (a cross-process lease); ``None`` when this process is the only one."""
        self.catch_up: Callable[[], object] = lambda: None
        """Bring this process's in-memory state (graph, definitions) up to date with other
        processes' writes, before work that reads it outside the write lock; a no-op alone."""
        self.datasets = Datasets(self.store, schema_exists=lambda ref: self.schemas.exists(ref))
        self.batches = Batches(self.store)
        self.schemas = SchemaService(self)
        self.identity = IdentityService(self)
        self.merge_policies = MergePolicyService(self)
        self.profiles = ProfileService(self)
        self.ingest = IngestService(self)
        self.privacy = PrivacyService(self)
        self.segments: Any = None
        try:
            from tessera.segments import SegmentService
        except ImportError:  # pragma: no cover - shipped together; guards partial installs
            pass
        else:
            self.segments = SegmentService(self)

    def begin(self) -> StagedStore:
        """A staged view of the store for one atomic unit of work (hold ``write_lock``)."""
        return StagedStore(self.store)

    def segments_on_change(self, store: PointStore, profile_ids: set[str], now: datetime) -> None:
        """Re-evaluate streaming segments of changed profiles inside the ingesting chunk."""
        if self.segments is not None:
            self.segments.on_change(store, profile_ids, now)

    def memberships_of(self, profile_id: str, store: PointStore) -> dict[str, Any]:
        """``segmentMembership.ups`` of a profile."""
        if self.segments is None:
            return {}
        result: dict[str, Any] = self.segments.memberships_of(profile_id, store)
        return result

    def recover(self) -> dict[str, int]:
        """Settle the work a stopped process left half-done: batches still ``processing`` resume
        from their staged files (or fail with the reason), segment and export jobs that were
        running are marked failed with the reason. Returns how many of each were settled."""
        with self.write_lock:
            counts = {"batches": len(self.ingest.recover())}
        if self.segments is not None and hasattr(self.segments, "recover"):
            counts["segmentJobs"] = len(self.segments.recover())
            counts["exportJobs"] = len(self.segments.activation.exports.recover())
        return counts

    def start_background(self) -> None:
        """Settle interrupted work (:meth:`recover`), then :meth:`start_timers`."""
        self.recover()
        self.start_timers()

    def start_timers(self) -> None:
        """Start this sandbox's timer thread (segment windows, schedules, destinations), one
        round every ``timer_interval_s``."""
        if self.segments is not None and hasattr(self.segments, "start"):
            self.segments.start(interval=self.settings.timer_interval_s)

    def record_stream_rejection(self, dataset_id: str, rejection: Any) -> None:
        """Keep a refused streaming message in the dataset's streaming diagnostics."""
        self.batches.record_stream_error(dataset_id, rejection.to_json())

    def close(self) -> None:
        if self.segments is not None and hasattr(self.segments, "close"):
            self.segments.close()
        self.store.close()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "folder": str(self.folder)}


class Platform:
    """An installation: settings, the sandbox registry and the open sandboxes."""

    def __init__(self, settings: Settings) -> None:
        from tessera.pql.limits import configure as configure_pql

        self.settings = settings
        configure_pql(settings)
        set_memory_budget(settings.store_memory_mib)
        self.home = settings.home_path
        self.home.mkdir(parents=True, exist_ok=True)
        self.system: PointStore = SqliteStore(self.home / "system.sqlite")
        try:
            open_format(self.system, f"system store {self.home / 'system.sqlite'}")
        except BaseException:
            self.system.close()
            raise
        self.sandboxes = SandboxRegistry(self.system, self.home)
        self._open: dict[str, Sandbox] = {}
        self._lock = threading.Lock()
        self._background = False

    @classmethod
    def open(cls, home: str | Path | None = None, settings: Settings | None = None) -> Platform:
        """Open (creating when missing) the installation at ``home``.

        Args:
            home: data directory; defaults to ``TESSERA_HOME`` or ``./tessera-data``.
            settings: full settings; ``home`` overrides its ``home`` when both are given.
        """
        base = settings or Settings.from_env()
        if home is not None:
            base = Settings(**{**base.to_json(), "home": str(home)})
        return cls(base)

    def sandbox(self, name: str = DEFAULT_SANDBOX) -> Sandbox:
        """The sandbox called ``name`` (raises ``NotFound`` when it does not exist)."""
        with self._lock:
            opened = self._open.get(name)
            if opened is None:
                self.sandboxes.get(name)
                opened = self._open[name] = self._new_sandbox(name)
                if self._background:
                    self._start_sandbox(opened)
            return opened

    def _new_sandbox(self, name: str) -> Sandbox:
        """Open a sandbox (called with ``_lock`` held, before its timers start)."""
        return Sandbox(name, self.sandboxes.folder(name), self.settings)

    def _start_sandbox(self, sandbox: Sandbox) -> None:
        """What :meth:`start_background` does for each sandbox."""
        sandbox.start_background()

    def opened(self) -> list[Sandbox]:
        """The sandboxes opened so far (metrics and readiness look at these, never open more)."""
        with self._lock:
            return list(self._open.values())

    def start_background(self) -> None:
        """Run each sandbox's timers (closing time windows, schedules, deliveries) in threads.

        Servers call this; library use and tests drive time explicitly instead (``segments.tick``).
        """
        with self._lock:
            self._background = True
            # every sandbox opens now, so work a stopped server left half-done is settled before
            # the first request rather than whenever someone next touches that sandbox
            for name in [s["name"] for s in self.sandboxes.list()]:
                if name not in self._open:
                    self._open[name] = self._new_sandbox(name)
            for sandbox in self._open.values():
                self._start_sandbox(sandbox)

    def delete_sandbox(self, name: str) -> None:
        """Delete a sandbox and all of its data, wherever its point store keeps it."""
        with self._lock:
            self.sandboxes.check_deletable(name)
            opened = self._open.pop(name, None)
            if opened is not None:
                opened.close()
            if self.settings.point_store != "sqlite":
                # An embedded store is a file in the sandbox's folder, removed with it; a Redis
                # namespace outlives the folder, and personal data must not outlive the sandbox.
                store = open_point_store(self.settings, name, self.sandboxes.folder(name))
                try:
                    clear_store(store)
                finally:
                    store.close()
        self.sandboxes.delete(name)

    def close(self) -> None:
        with self._lock:
            for sandbox in self._open.values():
                sandbox.close()
            self._open.clear()
        self.system.close()

    def __enter__(self) -> Platform:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
