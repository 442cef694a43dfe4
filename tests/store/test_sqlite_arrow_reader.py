"""Whole-table Arrow reads of a large SQLite store, done by a child process.

The ADBC driver links its own SQLite; used inside the store's process it dropped the writer's
POSIX locks and reset the write-ahead-log index under it, and the next commit died of SIGBUS
(a 100k-people demo load, 2026-12-03). These tests run the child path on small stores by
lowering the size threshold, and check that the writer stays healthy around it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from tessera.errors import StorageError
from tessera.store import SqliteStore, WriteBatch, arrow_reader
from tessera.store.arrow_reader import read_table
from tessera.store.base import scan_arrow


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "a folder #1" / "p.sqlite")
    monkeypatch.setattr(s, "ARROW_CHILD_MIN_BYTES", 0)  # every scan goes through the child
    yield s
    s.close()


def _fill(store: SqliteStore, table: str, n: int, tag: str = "") -> None:
    batch = WriteBatch()
    for i in range(n):
        batch.put(table, f"k{(i * 7919) % n:06d}", f'{{"i": {i}, "tag": "{tag}é"}}'.encode())
    store.write(batch)


def _rows(store: SqliteStore, table: str, size: int = 1000) -> list[tuple[str, bytes]]:
    return [
        (k, v)
        for t in scan_arrow(store, table, size)
        for k, v in zip(t["key"].to_pylist(), t["value"].to_pylist(), strict=True)
    ]


def test_the_child_reads_what_a_scan_reads_in_chunks(store: SqliteStore) -> None:
    _fill(store, "docs", 2500)
    tables = list(scan_arrow(store, "docs", 1000))
    assert [t.num_rows for t in tables] == [1000, 1000, 500]
    assert _rows(store, "docs") == list(store.scan("docs"))
    assert list(scan_arrow(store, "never_created")) == []


def test_the_writer_stays_healthy_around_child_reads(store: SqliteStore) -> None:
    for round_ in range(6):
        _fill(store, "docs", 3000, tag=str(round_))
        assert len(_rows(store, "docs")) == 3000
        store.write(WriteBatch().put("other", f"r{round_}", b"x"))  # commits after each read
    assert store.get("docs", "k000000") is not None
    assert [k for k, _ in store.scan("other")] == [f"r{i}" for i in range(6)]
    check = sqlite3.connect(store.path)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        check.close()


def test_stopping_early_stops_the_child_and_leaves_no_files(store: SqliteStore) -> None:
    _fill(store, "docs", 5000)
    before = set(arrow_reader.SHARED_MEMORY.glob("tessera-scan-*"))
    chunks = scan_arrow(store, "docs", 500)
    first = next(chunks)
    assert first.num_rows == 500
    chunks.close()  # type: ignore[attr-defined]
    assert set(arrow_reader.SHARED_MEMORY.glob("tessera-scan-*")) <= before


def test_a_file_the_child_cannot_read_is_a_storage_error(tmp_path: Path) -> None:
    broken = tmp_path / "not-a-database.sqlite"
    broken.write_bytes(b"this is not SQLite" * 1000)
    with pytest.raises(StorageError, match="not-a-database"):
        list(read_table(broken, "docs", 100))


def test_chunks_go_to_the_temporary_folder_when_shared_memory_is_small(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # containers often mount a 64 MB /dev/shm: a 250k-event chunk would not fit
    monkeypatch.setattr(arrow_reader, "SHARED_MEMORY_MIN_FREE", 1 << 62)
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill))
    _fill(store, "docs", 3000)
    chunks = scan_arrow(store, "docs", 1000)
    assert next(chunks).num_rows == 1000
    assert [p.name.startswith("tessera-scan-") for p in spill.iterdir()] == [True]
    assert sum(t.num_rows for t in chunks) == 2000
    assert list(spill.iterdir()) == []


def test_a_child_read_is_one_snapshot_while_the_writer_commits(store: SqliteStore) -> None:
    # writes land in whole batches of 100 keys: a snapshot holds a multiple of 100 of them
    _fill(store, "docs", 2000)
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        while not stop.is_set():
            batch = WriteBatch()
            for i in range(100):
                batch.put("docs", f"w{written[0]:06d}-{i:03d}", b"{}")
            store.write(batch)
            written[0] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        counts = [len(_rows(store, "docs", 700)) for _ in range(5)]
    finally:
        stop.set()
        thread.join()
    assert written[0] > 0 and all(n % 100 == 0 and n >= 2000 for n in counts)
    assert counts == sorted(counts)  # each read sees at least what the one before it saw
    assert len(_rows(store, "docs")) == 2000 + 100 * written[0]


@pytest.mark.parametrize(("chosen", "expected"), [(None, "jemalloc"), ("system", "system")])
def test_arrow_reads_use_jemalloc_unless_the_user_chose_an_allocator(
    chosen: str | None, expected: str
) -> None:
    # pyarrow's default (mimalloc) made the first job of a process a third slower here
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        pytest.skip("this build of Arrow has no jemalloc")
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    script = (
        "import pyarrow as pa\n"
        "from tessera.store import MemoryStore\n"
        "from tessera.store.base import scan_arrow\n"
        "list(scan_arrow(MemoryStore(), 't'))\n"
        "print(pa.default_memory_pool().backend_name)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected
