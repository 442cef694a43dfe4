"""Reader connections of the embedded store stay bounded however many threads come and go.

A server's worker threads are retired when idle and new ones started under load; each used to
open its own SQLite connection that outlived it, so a long-running server slowly accumulated
file handles and page caches (found by the soak benchmark).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tessera.settings import Settings
from tessera.store import WriteBatch
from tessera.store.sqlite import SqliteStore, set_memory_budget

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").exists(), reason="needs /proc to count file handles"
)


def open_handles(db: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(db)):
            count += 1
    return count


def test_short_lived_threads_do_not_leave_connections_behind(tmp_path: Path) -> None:
    db = tmp_path / "point.db"
    store = SqliteStore(db)
    store.write(WriteBatch().put("t", "k", b"v"))
    try:
        for _ in range(50):
            reader = threading.Thread(target=lambda: [store.get("t", "k"), list(store.scan("t"))])
            reader.start()
            reader.join()
        # the writer's handles plus at most the idle pool's, not one set per thread that ever read
        assert open_handles(db) <= 3 * (1 + SqliteStore.IDLE_READERS)
    finally:
        store.close()
    assert open_handles(db) == 0


def test_concurrent_readers_all_see_the_data(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "point.db")
    wb = WriteBatch()
    for i in range(300):
        wb.put("t", f"k{i:04d}", str(i).encode())
    store.write(wb)
    errors: list[str] = []

    def read() -> None:
        for i in range(0, 300, 7):
            if store.get("t", f"k{i:04d}") != str(i).encode():
                errors.append(f"k{i:04d}")
        if len(list(store.scan("t", "k01"))) != 100 or store.count("t") != 300:
            errors.append("scan/count")

    threads = [threading.Thread(target=read) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    assert errors == []


def test_abandoned_scan_holds_no_connection(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "point.db")
    wb = WriteBatch()
    for i in range(5000):
        wb.put("t", f"k{i:05d}", b"x")
    store.write(wb)
    scans = [iter(store.scan("t")) for _ in range(20)]
    for scan in scans:
        next(scan)  # first page read, then abandoned mid-way
    assert open_handles(tmp_path / "point.db") <= 3 * (1 + SqliteStore.IDLE_READERS)
    store.close()


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_memory_budget_bounds_the_caches_of_every_reader_together(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "point.db")
    for start in range(0, 48_000, 8_000):  # ~48 MB of rows, more than the budget
        wb = WriteBatch()
        for i in range(start, start + 8_000):
            wb.put("t", f"k{i:06d}", os.urandom(1000))
        store.write(wb)
    set_memory_budget(8)
    try:
        before = rss_mib()
        # eight threads alive at once, each reading everything: without the budget each
        # connection's own 16 MiB cache would fill (~128 MiB together)
        barrier = threading.Barrier(8)

        def read_all() -> None:
            barrier.wait()
            assert sum(1 for _ in store.scan("t")) == 48_000
            barrier.wait()

        readers = [threading.Thread(target=read_all) for _ in range(8)]
        for t in readers:
            t.start()
        for t in readers:
            t.join()
        assert rss_mib() - before < 64
    finally:
        set_memory_budget(Settings().store_memory_mib)
        store.close()


def test_reads_between_commits_go_through_the_writers_warm_connection(tmp_path: Path) -> None:
    """SQLite empties a connection's page cache when another connection commits, so a reader's
    first read after every write would start cold: with no commit in progress, reads use the
    writer's connection and no reader connection is opened at all."""
    store = SqliteStore(tmp_path / "point.db")
    try:
        for i in range(20):
            store.write(WriteBatch().put("t", f"k{i}", b"v"))
            assert store.get("t", f"k{i}") == b"v"
            assert store.get_many("t", [f"k{i}", "missing"]) == {f"k{i}": b"v"}
            assert [k for k, _ in store.scan("t", f"k{i}", limit=1)] == [f"k{i}"]
        assert not store._leased and not store._idle
    finally:
        store.close()


def test_reads_never_wait_for_a_commit_in_progress(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "point.db")
    store.write(WriteBatch().put("t", "a", b"1").put("t", "b", b"2"))
    answers: list[object] = []

    def read() -> None:
        answers.extend(
            [store.get("t", "a"), store.get_many("t", ["b"]), store.count("t"), list(store.scan("t"))]
        )

    try:
        with store._commit_lock:  # a commit holding the writer for as long as this block lasts
            reader = threading.Thread(target=read)
            reader.start()
            reader.join(timeout=10)
            assert not reader.is_alive(), "a read waited for the commit"
        assert answers == [b"1", {"b": b"2"}, 2, [("a", b"1"), ("b", b"2")]]
    finally:
        store.close()
