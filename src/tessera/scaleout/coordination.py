"""Several processes on one sandbox: a per-sandbox Redis write lock and write epochs.

Every Tessera process keeps per-sandbox state in memory: the identity graph engine (loaded from
the point store at open), compiled schemas, merge policies and segment definitions. Two processes
writing one sandbox with private copies of that state would diverge, so when the point store is
shared (Redis) each sandbox gets a :class:`SandboxCoordinator`, which replaces
``sandbox.write_lock`` and watches every store write:

* **Writers serialise per sandbox.** Entering the write lock (the streaming flow, rule changes,
  re-resolution, deletes all hold it) takes the local lock, then a Redis lock named after the
  sandbox, renewed by a thread while held and released on exit. A holder that dies frees it after
  ``ttl_s``.
* **Write epoch.** Each batch committed under the lock also stores ``epoch + 1`` in the table
  :data:`EPOCH_TABLE`, in the same atomic write as the data, and a change note for that epoch
  (:class:`ChangeNote`: the identity components, history rows and fragment-index entries it
  wrote, or "full" when it wrote other cached state such as linking rules or merge policies). A
  process remembers the epoch its in-memory state reflects; on acquiring the lock it reads the
  stored epoch and, when it differs, applies the notes of the epochs in between (re-reading only
  those components) — or re-opens the sandbox's services from the store when a note says "full"
  or is gone. Because epoch and note are committed atomically with the data, a writer that dies
  after its commit still leaves them, so nobody keeps working from a graph that lacks that commit.
* **Configuration epoch.** Writes made without the lock (creating a dataset, a segment, a merge
  policy, a schema; recording a refused message) increment a Redis counter after they commit;
  both numbers together decide freshness. (A process that dies between such a write and the
  increment leaves the others with stale configuration until the next configuration change:
  configuration writes are rare and come from the API, so this is documented, not fenced.)
* **Readers** (API processes) call :meth:`SandboxCoordinator.refresh_if_stale` before serving a
  request: one round trip when nothing changed, a re-open when something did.
* **Timer lease.** Every process running the sandbox's timers tries a second Redis lock each
  round (:meth:`SandboxCoordinator.timer_round`, installed as ``sandbox.timer_guard``); the one
  that gets it runs the round, so a due schedule runs and a webhook batch is sent once.

The lock serialises writes to one sandbox across all processes. Workers still give failover and
parallel consumption, parsing and envelope checks, and different sandboxes write in parallel.
Taking over the lock after another process wrote costs reading the components it changed (a
full graph load only after a configuration change), see ``docs/scaling.md``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from tessera.errors import StorageError
from tessera.identity.service import COMPONENTS, HISTORY
from tessera.identity.service import META as ID_META
from tessera.profile.service import DATASET_FRAGMENTS
from tessera.store.base import WriteBatch

if TYPE_CHECKING:
    from tessera.platform import Sandbox
    from tessera.store.redis import RedisStore

log = logging.getLogger("tessera.scaleout")

EPOCH_TABLE = "scaleout_epoch"
"""Point-store table holding the sandbox's write epoch under key ``data``."""

CHANGES_TABLE = "scaleout_changes"
"""Per write epoch (key: the epoch, zero-padded), what that commit changed of the state processes
keep in memory: written with the data, read by processes catching up (see :class:`ChangeNote`)."""

KEEP_CHANGES = 10_000
"""Change notes kept; a process further behind than that re-opens the sandbox instead."""

# Tables whose rows no process keeps in memory: every read goes to the store, so another
# process's writes to them need nothing done. Anything written under the lock that is neither
# here nor handled by ChangeNote makes the others re-open the whole sandbox (always correct).
READ_THROUGH = frozenset(
    {
        "events", "event_ids", "batch_events", "fragments", "fragment_versions", "profile_meta",
        "profiles", "profile_sample", "alerts", "profile_memberships", "memberships", "segment_rounds",
        "membership_index", "membership_index_dirty",
        "segment_state", "segment_due", "segment_due_profile", "computed_values", "outbox",
        "outbox_seq", "destination_state", "stream_applied", "stream_seen", "stream_errors",
        "batches", "batch_errors", "segment_jobs", "segment_previews", "exports", "privacy_jobs",
        "profile_system_jobs", "ops_ready", EPOCH_TABLE, CHANGES_TABLE,
    }
)  # fmt: skip


def refresh_sandbox(sandbox: Sandbox) -> None:
    """Re-open every in-memory service of ``sandbox`` from its store (graph, caches, definitions)."""
    from tessera.identity.service import IdentityService
    from tessera.profile.policy_store import MergePolicyService
    from tessera.profile.privacy import PrivacyService
    from tessera.profile.service import ProfileService
    from tessera.xdm.service import SchemaService

    sandbox.schemas = SchemaService(sandbox)
    sandbox.identity = IdentityService(sandbox)
    sandbox.merge_policies = MergePolicyService(sandbox)
    sandbox.profiles = ProfileService(sandbox)
    sandbox.privacy = PrivacyService(sandbox)
    if sandbox.segments is not None:
        # Reloaded in place, not replaced: the refresh may run on the segment service's own
        # timer thread (a tick entering the write lock), which must neither join itself nor go
        # on evaluating with a discarded service's definitions.
        sandbox.segments.reload()


class ChangeNote:
    """What one commit changed of the in-memory state (graph and fragment index), or ``full``.

    Built from the commit's own batch, so it cannot miss a write: identity components written or
    deleted (``id_components``), history rows appended (``id_history``), fragment index entries
    (``dataset_fragments``); ``id_meta`` is re-read on every catch-up. Any other table outside
    :data:`READ_THROUGH` sets ``full``.
    """

    HANDLED = frozenset({COMPONENTS, HISTORY, ID_META, DATASET_FRAGMENTS})

    def __init__(self) -> None:
        self.components: set[str] = set()
        self.history: set[str] = set()
        self.fragments: set[str] = set()
        self.full = False

    @classmethod
    def of(cls, batch: WriteBatch) -> ChangeNote:
        note = cls()
        for table, key_, _ in batch.ops:
            if table == COMPONENTS:
                note.components.add(key_)
            elif table == HISTORY:
                note.history.add(key_)
            elif table == DATASET_FRAGMENTS:
                note.fragments.add(key_)
            elif table not in READ_THROUGH and table not in cls.HANDLED:
                note.full = True
        return note

    def add(self, other: ChangeNote) -> None:
        self.components |= other.components
        self.history |= other.history
        self.fragments |= other.fragments
        self.full = self.full or other.full

    def to_json(self) -> bytes:
        if self.full:
            return orjson.dumps({"full": True})
        return orjson.dumps(
            {"c": sorted(self.components), "h": sorted(self.history), "f": sorted(self.fragments)}
        )

    @classmethod
    def from_json(cls, raw: bytes) -> ChangeNote:
        doc = orjson.loads(raw)
        note = cls()
        note.full = bool(doc.get("full"))
        note.components, note.history, note.fragments = (
            set(doc.get("c", ())),
            set(doc.get("h", ())),
            set(doc.get("f", ())),
        )
        return note


def catch_up(sandbox: Sandbox, note: ChangeNote) -> None:
    """Apply another process's commits (their merged note) to this process's in-memory state."""
    sandbox.identity.catch_up(note.components, note.history)
    sandbox.profiles.note_fragments(note.fragments)


class SandboxCoordinator:
    """The write lock and freshness check of one sandbox on a shared Redis store.

    Use it as a context manager (re-entrant within a thread), exactly like the ``RLock`` it
    replaces. Install with :func:`coordinate`.

    Args:
        sandbox: the sandbox whose state this process keeps in memory.
        store: its Redis point store.
        ttl_s: lock lifetime; renewed every third of it while held.
        wait_s: longest wait for the lock before :class:`StorageError`.
    """

    def __init__(
        self, sandbox: Sandbox, store: RedisStore, *, ttl_s: float = 10.0, wait_s: float = 120.0
    ) -> None:
        self._sandbox = sandbox
        self._store = store
        self._client: Any = store.client
        self._ttl_s = ttl_s
        self._wait_s = wait_s
        self._local = threading.RLock()
        self._depth = 0
        self._owner: int | None = None
        self._held = False
        self._lock: Any = self._client.lock(
            f"{store.namespace}:writer", timeout=ttl_s, sleep=0.01, thread_local=False
        )
        self._waiting_key = f"{store.namespace}:writer-waiting"
        self._released_at = 0.0
        self._config_key = f"{store.namespace}:config-epoch"
        self._state = threading.Lock()
        # What this process's memory reflects; None = unknown (re-open at the next check). The
        # two are separate so a configuration write never disturbs the data epoch a holder counts on.
        self._data: int | None = None
        self._config: int | None = None
        self._pending: int | None = None
        self._renewer: _Renewer | None = None
        self._timers_key = f"{store.namespace}:timers"
        self.refreshes = 0
        """How many times this process re-opened the sandbox because another process wrote."""
        self.catch_ups = 0
        """How many times it applied other processes' change notes instead of re-opening."""
        self.lost_lock = 0
        """Times the lock had expired before release (a pause longer than ``ttl_s``; logged)."""
        self.timer_rounds = 0
        """Timer rounds this process ran holding the sandbox's timer lease."""
        with self._local:
            self._data, self._config = self._current()

    # -- the lock ----------------------------------------------------------------------------------

    def __enter__(self) -> SandboxCoordinator:
        self._local.acquire()
        self._depth += 1
        if self._depth == 1:
            try:
                self._yield_to_waiters()
                if not self._acquire():
                    raise StorageError(
                        f"sandbox {self._sandbox.name!r} write lock not free after {self._wait_s} s",
                        path="lock",
                    )
                self._held = True
                self._owner = threading.get_ident()
                self._start_renewer()
                self._refresh_locked()
            except BaseException:
                self._release_distributed()
                self._depth -= 1
                self._local.release()
                raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._depth -= 1
        try:
            if self._depth == 0:
                self._release_distributed()
        finally:
            self._local.release()

    def _acquire(self) -> bool:
        if self._lock.acquire(blocking=False):
            return True
        # Announce the wait, so a holder that just released steps back and lets us in (a Redis
        # lock is not fair: a busy worker would otherwise take it again at once, every time).
        pipe = self._client.pipeline(transaction=False)
        pipe.incr(self._waiting_key).expire(self._waiting_key, 60).execute()
        try:
            return bool(self._lock.acquire(blocking=True, blocking_timeout=self._wait_s))
        finally:
            self._client.decr(self._waiting_key)

    def _yield_to_waiters(self) -> None:
        if time.monotonic() - self._released_at < 0.05 and int(self._client.get(self._waiting_key) or 0) > 0:
            time.sleep(0.05)

    def _release_distributed(self) -> None:
        self._owner = None
        if self._renewer is not None:
            self._renewer.stop()
            self._renewer = None
        if not self._held:
            return
        self._held = False
        self._released_at = time.monotonic()
        try:
            self._lock.release()
        except Exception:  # LockNotOwnedError: it expired while we worked (a long pause)
            self.lost_lock += 1
            log.warning("sandbox %s: write lock had expired before release", self._sandbox.name)

    def _start_renewer(self) -> None:
        # If renewal fails the lock is lost; the holder's commit epochs still keep others correct.
        self._renewer = _Renewer(self._lock, self._ttl_s / 3, f"write lock of sandbox {self._sandbox.name}")

    # -- timers ------------------------------------------------------------------------------------

    @contextmanager
    def timer_round(self) -> Iterator[bool]:
        """The sandbox's timer lease for one round: yields ``True`` when this process got it.

        Every process with timers tries each round; the one that gets the lease runs the round
        (windows, due schedules, webhook deliveries) and the rest skip it. The lease is separate
        from the write lock so that a slow webhook or a scheduled batch job does not hold up
        ingestion: the parts of a round that write memberships still take the write lock inside.
        It is renewed while held and frees after ``ttl_s`` when its holder dies mid-round.
        """
        lease = self._client.lock(self._timers_key, timeout=self._ttl_s, thread_local=False)
        if not lease.acquire(blocking=False):
            yield False
            return
        renewer = _Renewer(lease, self._ttl_s / 3, f"timer lease of sandbox {self._sandbox.name}")
        try:
            self.timer_rounds += 1
            yield True
        finally:
            renewer.stop()
            try:
                lease.release()
            except Exception:  # LockNotOwnedError: it expired during a pause longer than ttl_s
                log.warning("sandbox %s: timer lease had expired before release", self._sandbox.name)

    # -- freshness ---------------------------------------------------------------------------------

    def _current(self) -> tuple[int, int]:
        raw = self._store.get(EPOCH_TABLE, "data")
        config = self._client.get(self._config_key)
        return int(raw or 0), int(config or 0)

    def _refresh_locked(self, *, config_only: bool = False) -> None:
        data, config = self._current()
        stale = config != self._config or (not config_only and data != self._data)
        if not stale:
            return
        note = self._changes_since(data) if config == self._config else None
        if note is not None:
            catch_up(self._sandbox, note)
            self.catch_ups += 1
        else:
            refresh_sandbox(self._sandbox)
            self.refreshes += 1
        with self._state:
            self._data, self._config = data, config

    def _changes_since(self, data: int) -> ChangeNote | None:
        """The merged notes of the epochs after ours up to ``data``; ``None`` when a re-open is
        needed (a note missing or marked full, or our epoch unknown)."""
        if self._data is None or not 0 <= data - self._data <= KEEP_CHANGES:
            return None
        epochs = [f"{e:015d}" for e in range(self._data + 1, data + 1)]
        raw = self._store.get_many(CHANGES_TABLE, epochs)
        if len(raw) != len(epochs):
            return None
        merged = ChangeNote()
        for epoch in epochs:
            merged.add(ChangeNote.from_json(raw[epoch]))
            if merged.full:
                return None
        return merged

    def refresh_if_stale(self, *, config_only: bool = False) -> bool:
        """Re-open the sandbox's in-memory state if any process wrote since it was loaded.

        Readers call this; writers get it on entering the lock. ``config_only``: only when the
        configuration changed (what streaming collection's checks read). Returns whether it
        re-opened.
        """
        with self._local:
            before = self.refreshes
            self._refresh_locked(config_only=config_only)
            return self.refreshes != before

    @property
    def epoch(self) -> tuple[int, int]:
        """``(data epoch, configuration epoch)`` this process's state reflects (-1: unknown)."""
        return (
            -1 if self._data is None else self._data,
            -1 if self._config is None else self._config,
        )

    # -- write observer (RedisStore.write_observer) ------------------------------------------------

    def before_write(self, batch: WriteBatch) -> WriteBatch:
        if self._owner == threading.get_ident():
            # Entering the lock re-read the stored epoch (and re-opened if it had moved), and
            # only the holder changes it, so ours is the stored one.
            assert self._data is not None
            self._pending = self._data + 1
            batch.put(EPOCH_TABLE, "data", str(self._pending).encode())
            batch.put(CHANGES_TABLE, f"{self._pending:015d}", ChangeNote.of(batch).to_json())
            if self._pending > KEEP_CHANGES:
                batch.delete(CHANGES_TABLE, f"{self._pending - KEEP_CHANGES:015d}")
        return batch

    def after_write(self, batch: WriteBatch) -> None:
        if self._owner == threading.get_ident() and self._pending is not None:
            with self._state:
                self._data, self._pending = self._pending, None
            return
        config = int(self._client.incr(self._config_key))
        with self._state:
            # Our own change is in our state; anyone else's in between is not, so go stale.
            self._config = config if self._config is not None and config == self._config + 1 else None


class _Renewer:
    """Keeps a held Redis lock alive: resets its TTL every ``period`` seconds until stopped."""

    def __init__(self, lock: Any, period: float, what: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(lock, period, what), name=f"renew {what}", daemon=True
        )
        self._thread.start()

    def _run(self, lock: Any, period: float, what: str) -> None:
        while not self._stop.wait(period):
            try:
                lock.reacquire()
            except Exception:  # expired or taken over (a long pause): nothing left to renew
                log.warning("cannot renew the %s", what)
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def coordinate(sandbox: Sandbox, *, ttl_s: float = 10.0) -> SandboxCoordinator:
    """Install a :class:`SandboxCoordinator` as ``sandbox.write_lock``, its timer lease as
    ``sandbox.timer_guard`` and its freshness check as ``sandbox.catch_up`` (a Redis point store
    needed).

    Raises:
        StorageError: the sandbox's point store is not shared between processes.
    """
    from tessera.store.redis import RedisStore

    store = sandbox.store
    if not isinstance(store, RedisStore):
        raise StorageError(
            'several processes need a shared point store: set point_store = "redis"', path="point_store"
        )
    coordinator = SandboxCoordinator(sandbox, store, ttl_s=ttl_s)
    store.write_observer = coordinator
    sandbox.write_lock = coordinator  # type: ignore[assignment]
    sandbox.timer_guard = coordinator.timer_round
    sandbox.catch_up = coordinator.refresh_if_stale
    return coordinator
