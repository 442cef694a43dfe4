"""The embedded store folds its write-ahead log into the database file on a thread of its own,
after commits, and still bounds the log itself (a background checkpoint alone never catches up
with a writer that does not stop)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

from tessera.store import WriteBatch
from tessera.store.sqlite import SqliteStore

THREAD = "tessera-sqlite-checkpoint"


def _in_database_file(db: Path, copy: Path, key: str) -> bool:
    """Whether the database file alone (without its log) holds the row: it was checkpointed."""
    shutil.copyfile(db, copy)
    con = sqlite3.connect(copy)
    try:
        return con.execute('SELECT 1 FROM "t_t" WHERE k=?', (key,)).fetchone() is not None
    except sqlite3.OperationalError:  # the table itself is still only in the log
        return False
    finally:
        con.close()


def test_a_small_commit_reaches_the_database_file_soon_after(tmp_path: Path) -> None:
    db = tmp_path / "point.db"
    store = SqliteStore(db)
    try:
        store.write(WriteBatch().put("t", "k1", b"v"))  # a few pages: SQLite itself waits for 1,000
        deadline = time.monotonic() + 5
        while not _in_database_file(db, tmp_path / "copy.db", "k1"):
            assert time.monotonic() < deadline, "the commit never left the write-ahead log"
            time.sleep(0.02)
        assert store.get("t", "k1") == b"v"
    finally:
        store.close()


def test_the_log_stays_bounded_under_constant_writes(tmp_path: Path) -> None:
    db = tmp_path / "point.db"
    store = SqliteStore(db)
    wal = Path(f"{db}-wal")
    largest = 0
    try:
        for n in range(300):  # ~20 scattered pages a commit, 6,000 in all
            wb = WriteBatch()
            for i in range(20):
                wb.put("t", f"{(n * 7919 + i * 104_729) % 1_000_003:07d}", os.urandom(2000))
            store.write(wb)
            largest = max(largest, wal.stat().st_size)
    finally:
        store.close()
    assert largest < 3000 * 16 * 1024  # the writer's own checkpoint restarts it near 1,000 pages


def test_closing_the_store_stops_its_thread(tmp_path: Path) -> None:
    def running() -> int:
        return sum(1 for t in threading.enumerate() if t.name == THREAD)

    before = running()
    store = SqliteStore(tmp_path / "point.db")
    store.write(WriteBatch().put("t", "k", b"v"))
    assert running() == before + 1
    store.close()
    assert running() == before
