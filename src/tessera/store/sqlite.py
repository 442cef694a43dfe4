"""The embedded point store: one SQLite file in WAL mode per sandbox.

Why SQLite: a primary-key read costs about 5 µs (DuckDB: 300-400 µs), and the real-time path
does several per event (``spec/deps.md`` §2c).

Writes use *leader-based group commit*: every writer appends its batch to a queue; whichever
writer finds no commit in progress becomes the leader, commits every queued batch in one
transaction and wakes the others. A lone writer therefore commits immediately with no thread
hand-off, and concurrent writers share one commit. ``write`` returns only after the commit, so
an acknowledged write survives SIGKILL (WAL with ``synchronous=NORMAL`` is durable against
process crashes; set ``synchronous_full`` for power-loss durability).

Point reads and short range reads go through the writer's connection whenever no commit holds
it: SQLite empties a connection's page cache whenever *another* connection has committed, so a
reader's first read after each write finds every page cold (~17 µs for a point read that costs
~3 µs warm), while the writer's cache survives its own commits. The ingestion flow alternates
one commit and a few reads per call, so this is where its reads land. When the writer is busy a
read takes a reader connection instead and never waits for a commit.

Each reading thread leases a connection from a small pool and hands it back when the thread ends.
A server's worker threads come and go (anyio retires idle ones); connections that outlived their
threads kept file handles and page caches, so memory grew for as long as the server ran (the soak
benchmark showed it; ``tests/store/test_sqlite_readers.py`` guards it).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.errors import StorageError, StorageFull
from tessera.store.base import Capabilities, WriteBatch, arrow_chunks, check_table, prefix_end

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

FULL_CODES = frozenset({"SQLITE_FULL", "SQLITE_IOERR_WRITE", "SQLITE_IOERR_TRUNCATE", "SQLITE_IOERR_FSYNC"})
"""SQLite's answers when the file system refuses to grow a file (ENOSPC is SQLITE_FULL; a
file-size limit or quota surfaces as a write error)."""


def _write_error(exc: BaseException) -> StorageError:
    name = getattr(exc, "sqlite_errorname", "")
    if name in FULL_CODES:
        return StorageFull(
            f"The store has no space left to write ({name}); nothing of this request was stored"
        )
    return StorageError(f"write failed: {exc}")


def set_memory_budget(mib: int) -> None:
    """Cap the memory SQLite holds in this process (page caches of every connection together).

    Per-connection cache sizes multiply with the number of reading threads; this is the one bound
    that holds however many there are. SQLite's limit is process-wide and soft: it evicts cached
    pages to stay under it. ``0`` removes the limit.
    """
    con = sqlite3.connect(":memory:")
    try:
        con.execute(f"PRAGMA soft_heap_limit={max(0, int(mib)) * 1024 * 1024}")
    finally:
        con.close()


class _Checkpointer:
    """Copies committed pages from the write-ahead log into the database on a thread of its own.

    SQLite checkpoints inside the commit that takes the log past 1,000 pages: that commit copies
    them all and waits for two fsyncs (~10 ms here, the streaming p99). This thread copies them
    as they come, a little after each burst of commits (passive: it never blocks the writer), so
    the writer's own checkpoint, which stays as it was, finds little left to copy. The writer's
    is still the one that lets the log restart from its beginning: a background checkpoint
    alone never catches up with a busy writer, and the log would grow without end. ``lock`` is
    held while a checkpoint runs here (a truncating checkpoint by the store takes it too)."""

    PAUSE_S = 0.05

    def __init__(self, con: sqlite3.Connection) -> None:
        self.lock = threading.Lock()
        self._con = con
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._warned = False
        self._thread = threading.Thread(target=self._run, name="tessera-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def wrote(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._wake.wait()
                self._wake.clear()
                with self.lock:
                    if self._stopping.is_set():
                        break
                    self._checkpoint()
                self._stopping.wait(self.PAUSE_S)  # one checkpoint for a burst of commits
        finally:
            with contextlib.suppress(sqlite3.Error):
                self._con.close()

    def _checkpoint(self) -> None:
        try:
            self._con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            if not self._warned:  # the writer's own checkpoint still runs; say it once
                self._warned = True
                log.warning("background checkpoint failed (commits checkpoint instead): %s", exc)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=30)


class _Lease:
    """Lives in a thread's locals; its finaliser returns the thread's reader to the pool."""

    __slots__ = ("__weakref__",)


@dataclass
class _Pending:
    batch: WriteBatch
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class SqliteStore:
    """Point store over one SQLite database file.

    Args:
        path: database file (created with its folder when missing).
        group_commit_ms: how long a leader lingers for more batches while writes are arriving
            from several threads at once (the last commit took more than one batch).
        synchronous_full: fsync every commit (survives power loss, slower).
    """

    capabilities = Capabilities(durable=True, shared_between_processes=True)

    IDLE_READERS = 4
    """Idle reader connections kept open; more are opened under concurrency and closed after."""

    def __init__(
        self, path: str | Path, *, group_commit_ms: float = 0.0, synchronous_full: bool = False
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._sync = "FULL" if synchronous_full else "NORMAL"
        self._group_commit_s = group_commit_ms / 1000.0
        self._concurrent = False  # did the last commit carry batches of several writers?
        self._writer = self._connect(cache_mib=64)
        self._tables: set[str] = {
            row[0][2:]
            for row in self._writer.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 't\\_%' ESCAPE '\\'"
            )
        }
        self._missing: dict[str, float] = {}
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._local = threading.local()
        self._idle: list[sqlite3.Connection] = []
        self._leased: set[sqlite3.Connection] = set()
        self._idle_lock = threading.Lock()
        self._closed = False
        self._checkpoints = _Checkpointer(self._connect(cache_mib=1))
        # a store dropped without close() must not leave its thread (and connection) behind
        weakref.finalize(self, self._checkpoints.stop)

    def _connect(self, cache_mib: int = 16) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
            # Documents (events, fragments, profiles) are 0.5-2 KB: with the default 4 KB pages a
            # WITHOUT ROWID table spills them onto overflow pages and ingestion writes ~35% more
            # CPU per row; 16 KB pages keep them inline at the same point-read cost. Only a new
            # database takes it (an existing one keeps its page size).
            con.execute("PRAGMA page_size=16384")
            con.execute("PRAGMA journal_mode=WAL")
            # deleted rows are overwritten, not left in free pages: a privacy delete must leave
            # nothing of the person in the files either
            con.execute("PRAGMA secure_delete=ON")
            con.execute(f"PRAGMA synchronous={self._sync}")
            con.execute("PRAGMA busy_timeout=30000")
            # Readers keep a smaller cache than the writer: the OS page cache is shared by all of
            # them, a connection's own cache is not.
            con.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open store {self.path}: {exc}") from exc
        return con

    def _reader(self) -> sqlite3.Connection:
        """This thread's reader connection, leased from the pool until the thread ends."""
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            with self._idle_lock:
                if self._closed:
                    raise StorageError("store is closed")
                con = self._idle.pop() if self._idle else None
                if con is None:
                    con = self._connect()
                self._leased.add(con)
            lease = _Lease()
            # A thread's locals die with the thread: the finaliser hands the connection back
            # then, so connections never outlive the threads that used them.
            weakref.finalize(lease, self._give_back, con)
            self._local.lease = lease
            self._local.con = con
        return con

    def _give_back(self, con: sqlite3.Connection) -> None:
        with self._idle_lock:
            self._leased.discard(con)
            if not self._closed and len(self._idle) < self.IDLE_READERS:
                self._idle.append(con)
                return
        with contextlib.suppress(sqlite3.ProgrammingError):
            con.close()

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """The writer's connection when no commit holds it (its page cache is warm), else this
        thread's reader; for short statements read to the end at once (no cursor outlives it)."""
        if self._commit_lock.acquire(blocking=False):
            try:
                if self._closed:
                    raise StorageError("store is closed")
                yield self._writer
            finally:
                self._commit_lock.release()
        else:
            yield self._reader()

    def _read_one(self, sql: str, params: Sequence[object]) -> Any:
        with self._connection() as con:
            return con.execute(sql, params).fetchone()

    def _read_all(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        with self._connection() as con:
            return con.execute(sql, params).fetchall()

    def _ensure_table(self, name: str) -> None:
        if name not in self._tables:
            check_table(name)
            self._writer.execute(
                f'CREATE TABLE IF NOT EXISTS "t_{name}" (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID'
            )
            self._tables.add(name)

    def _known(self, table: str) -> bool:
        if table in self._tables:
            return True
        check_table(table)
        # Another process (or our writer) may have created it since we last looked; recheck at
        # most every 50 ms so that reads of tables that do not exist yet stay cheap.
        now = time.monotonic()
        if now - self._missing.get(table, -1.0) < 0.05:
            return False
        row = self._read_one("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (f"t_{table}",))
        if row:
            self._tables.add(table)
            self._missing.pop(table, None)
        else:
            self._missing[table] = now
        return row is not None

    # -- reads ---------------------------------------------------------------------------------

    def get(self, table: str, key: str) -> bytes | None:
        if table not in self._tables and not self._known(table):
            return None
        row = self._read_one(f'SELECT v FROM "t_{table}" WHERE k=?', (key,))
        return None if row is None else bytes(row[0])

    def get_many(self, table: str, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys or not self._known(table):
            return {}
        result: dict[str, bytes] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            with self._connection() as con:
                rows = con.execute(f'SELECT k, v FROM "t_{table}" WHERE k IN ({marks})', chunk).fetchall()
            for k, v in rows:
                result[k] = bytes(v)
        return result

    def purge_log(self) -> None:
        """Fold the write-ahead log into the database and empty it, so that deleted rows (a
        privacy delete) survive in no file. Waits for readers in the middle of a read."""
        with self._commit_lock:
            busy = self._truncate_log()
        if busy:
            raise StorageError(f"could not empty the write-ahead log of {self.path}: readers kept it busy")

    def _truncate_log(self) -> bool:
        """Checkpoint the write-ahead log and truncate it (the caller holds the commit lock);
        true when a reader kept part of it."""
        with self._checkpoints.lock:
            busy, _, _ = self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return bool(busy)

    def scan_chunks(self, table: str, size: int = 50_000) -> Iterator[tuple[list[str], list[bytes]]]:
        """The whole table in key order, one query (one snapshot) read in chunks of ``size``."""
        if not self._known(table):
            return
        cur = self._reader().execute(f'SELECT k, v FROM "t_{table}" ORDER BY k')
        try:
            while rows := cur.fetchmany(size):
                keys, values = zip(*rows, strict=True)
                yield list(keys), list(values)
        finally:
            cur.close()

    ARROW_CHILD_MIN_BYTES = 64 << 20
    """From this database size on, :meth:`scan_arrow` reads in a child process; below it the
    ~0.3 s of starting one costs more than reading the rows here."""

    def scan_arrow(self, table: str, size: int = 100_000) -> Iterator[pa.Table]:
        """:meth:`scan_chunks` as Arrow tables (``key`` string, ``value`` binary). A large store is
        read by the ADBC SQLite driver in a child process (:mod:`tessera.store.arrow_reader` says
        why not here): ~1.3 µs per row instead of ~4 µs, on the other core. One snapshot."""
        # imported here: the child runs that module as __main__, which must not find it loaded
        from tessera.store.arrow_reader import read_table

        if not self._known(table):
            return
        try:
            large = self.path.stat().st_size >= self.ARROW_CHILD_MIN_BYTES
        except OSError:
            large = False
        if large:
            yield from read_table(self.path, table, size)
        else:
            yield from arrow_chunks(self.scan_chunks(table, size))

    def scan(
        self, table: str, prefix: str = "", *, start_after: str | None = None, limit: int | None = None
    ) -> Iterator[tuple[str, bytes]]:
        if not self._known(table):
            return
        lower = prefix
        op = ">="
        if start_after is not None and start_after >= prefix:
            lower, op = start_after, ">"
        page = 1000 if limit is None else min(limit, 1000)
        remaining = limit
        while True:
            size = page if remaining is None else min(page, remaining)
            if size <= 0:
                return
            if prefix:
                rows = self._read_all(
                    f'SELECT k, v FROM "t_{table}" WHERE k {op} ? AND k < ? ORDER BY k LIMIT ?',
                    (lower, prefix_end(prefix), size),
                )
            else:
                rows = self._read_all(
                    f'SELECT k, v FROM "t_{table}" WHERE k {op} ? ORDER BY k LIMIT ?', (lower, size)
                )
            for k, v in rows:
                yield k, bytes(v)
            if len(rows) < size:
                return
            if remaining is not None:
                remaining -= len(rows)
            lower, op = rows[-1][0], ">"

    def count(self, table: str, prefix: str = "") -> int:
        if not self._known(table):
            return 0
        # a count walks a whole range (a million profiles: ~0.1 s): on a reader, so that no
        # commit waits for it
        con = self._reader()
        if prefix:
            row = con.execute(
                f'SELECT count(*) FROM "t_{table}" WHERE k >= ? AND k < ?', (prefix, prefix_end(prefix))
            ).fetchone()
        else:
            row = con.execute(f'SELECT count(*) FROM "t_{table}"').fetchone()
        return int(row[0])

    def tables(self) -> list[str]:
        """Names of the tables that exist (backups walk them all)."""
        rows = self._read_all(
            "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 't\\_%' ESCAPE '\\' ORDER BY name"
        )
        return [row[0][2:] for row in rows]

    # -- writes --------------------------------------------------------------------------------

    def write(self, batch: WriteBatch) -> None:
        if self._closed:
            raise StorageError("store is closed")
        if not batch.ops:
            return
        pending = _Pending(batch)
        with self._queue_lock:
            self._queue.append(pending)
        while not pending.done.is_set():
            if self._commit_lock.acquire(timeout=0.05):
                try:
                    if not pending.done.is_set():
                        self._lead()
                finally:
                    self._commit_lock.release()
            else:
                pending.done.wait(0.05)
        if pending.error is not None:
            raise _write_error(pending.error) from pending.error

    def _lead(self) -> None:
        # Linger for company only while writers are actually concurrent: a lone writer (the
        # ingestion flow commits under the sandbox's write lock, so its writes never overlap)
        # would otherwise pay the whole window on every commit.
        if self._group_commit_s > 0 and self._concurrent:
            with self._queue_lock:
                waiting = len(self._queue)
            if waiting == 1:
                time.sleep(self._group_commit_s)
        with self._queue_lock:
            group, self._queue = self._queue, []
        if not group:
            return
        self._concurrent = len(group) > 1
        try:
            self._commit(group)
        except sqlite3.Error as exc:
            # One bad batch must not fail the others: retry them one by one.
            for item in group:
                try:
                    self._commit([item])
                except sqlite3.Error as inner:
                    item.error = inner if isinstance(inner, sqlite3.Error) else exc
                item.done.set()
            self._checkpoints.wrote()
            return
        self._checkpoints.wrote()
        for item in group:
            item.done.set()

    def _commit(self, group: list[_Pending]) -> None:
        # Only the last operation on a key matters inside one transaction, so the group collapses
        # to one upsert list and one delete list per table, each applied with one executemany in
        # key order (sorted keys keep B-tree page writes local).
        last: dict[str, dict[str, bytes | None]] = {}
        for item in group:
            for table, key, value in item.batch.ops:
                ops = last.get(table)
                if ops is None:
                    ops = last[table] = {}
                ops[key] = value
        con = self._writer
        created: list[str] = []
        try:
            con.execute("BEGIN IMMEDIATE")
            for table, ops in last.items():
                if table not in self._tables:
                    created.append(table)
                self._ensure_table(table)
                keys = sorted(ops)
                puts = [(k, v) for k in keys if (v := ops[k]) is not None]
                if len(puts) < len(keys):
                    con.executemany(
                        f'DELETE FROM "t_{table}" WHERE k=?', [(k,) for k in keys if ops[k] is None]
                    )
                if puts:
                    con.executemany(f'INSERT OR REPLACE INTO "t_{table}" (k, v) VALUES (?, ?)', puts)
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            # a rolled-back transaction takes its CREATE TABLEs with it: forget them, or the retry
            # (and every later write) would find "no such table"
            self._tables.difference_update(created)
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._checkpoints.stop()
        # The calling thread is not inside a query: its own connection closes now, with the idle
        # ones. One leased by another live thread may be mid-query, and closing it from here
        # crashes the process (seen: a UI warm-up thread reading while the platform closed); it
        # closes when its thread hands it back.
        own: sqlite3.Connection | None = getattr(self._local, "con", None)
        with self._idle_lock:
            idle, self._idle = self._idle, []
            if own is not None:
                self._leased.discard(own)
                idle.append(own)
                self._local.con = None
        for con in idle:
            with contextlib.suppress(sqlite3.ProgrammingError):
                con.close()
        with self._commit_lock:
            # Fold the log into the database and empty it even if a reader is still open
            # elsewhere: deleted rows (a privacy delete) must not survive in the -wal file.
            with contextlib.suppress(sqlite3.Error):
                self._truncate_log()
            self._writer.close()
