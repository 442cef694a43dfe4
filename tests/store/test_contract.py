"""The point-store contract, written once and run against every implementation."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tessera.store import MemoryStore, PointStore, SqliteStore, WriteBatch
from tessera.store.base import scan_arrow, scan_chunks


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PointStore]:
    s: PointStore = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "p.sqlite")
    yield s
    s.close()


def test_put_get_delete(store: PointStore) -> None:
    store.write(WriteBatch().put("docs", "a", b"1").put("docs", "b", b"2"))
    assert store.get("docs", "a") == b"1"
    assert store.get("docs", "missing") is None
    assert store.get("never_created", "a") is None
    store.write(WriteBatch().delete("docs", "a"))
    assert store.get("docs", "a") is None
    assert store.get_many("docs", ["a", "b", "c"]) == {"b": b"2"}


def test_scan_is_ordered_and_prefix_bounded(store: PointStore) -> None:
    batch = WriteBatch()
    for k in ["b\x1f2", "a\x1f1", "b\x1f1", "c", "b\x1f10", "b"]:
        batch.put("t", k, k.encode())
    store.write(batch)
    assert [k for k, _ in store.scan("t", "b\x1f")] == ["b\x1f1", "b\x1f10", "b\x1f2"]
    assert [k for k, _ in store.scan("t")] == sorted(["b\x1f2", "a\x1f1", "b\x1f1", "c", "b\x1f10", "b"])
    assert [k for k, _ in store.scan("t", "b\x1f", start_after="b\x1f1")] == ["b\x1f10", "b\x1f2"]
    assert [k for k, _ in store.scan("t", "b", limit=2)] == ["b", "b\x1f1"]
    assert store.count("t", "b\x1f") == 3


def test_scan_pages_through_many_keys(store: PointStore) -> None:
    batch = WriteBatch()
    for i in range(2500):
        batch.put("many", f"k{i:05d}", b"x")
    store.write(batch)
    keys = [k for k, _ in store.scan("many", "k")]
    assert len(keys) == 2500 and keys == sorted(keys)


def test_whole_table_reads_in_chunks_equal_a_scan(store: PointStore) -> None:
    batch = WriteBatch()
    for i in range(2500):
        batch.put("many", f"k{(i * 7919) % 2500:05d}", str(i).encode())
    store.write(batch)
    chunks = list(scan_chunks(store, "many", size=1000))
    assert [len(keys) for keys, _ in chunks] == [1000, 1000, 500]
    assert [kv for keys, values in chunks for kv in zip(keys, values, strict=True)] == list(
        store.scan("many")
    )
    assert list(scan_chunks(store, "never_created")) == []


def test_whole_table_reads_as_arrow_equal_a_scan(store: PointStore) -> None:
    batch = WriteBatch()
    for i in range(2500):
        batch.put("many", f"k\x1f{(i * 7919) % 2500:05d}", f'{{"n": {i}, "s": "\u00e9"}}'.encode())
    store.write(batch)
    tables = list(scan_arrow(store, "many", size=1000))
    assert sum(t.num_rows for t in tables) == 2500
    assert all(t.num_rows <= 1000 for t in tables)
    assert [str(t.schema.field("key").type) for t in tables] == ["string"] * len(tables)
    rows = [(k, v) for t in tables for k, v in zip(t["key"].to_pylist(), t["value"].to_pylist(), strict=True)]
    assert rows == list(store.scan("many"))
    assert list(scan_arrow(store, "never_created")) == []


def test_sqlite_arrow_reads_see_committed_writes_in_a_folder_with_spaces(tmp_path: Path) -> None:
    # the ADBC reader opens the file by URI of its own: the path must be quoted, and it must
    # see what the store's own connection committed (WAL) without the store closing
    store = SqliteStore(tmp_path / "a folder #1" / "p.sqlite")
    try:
        store.write(WriteBatch().put("t", "a", b"1").put("t", "b", b"2"))
        store.write(WriteBatch().delete("t", "a").put("t", "c", b"3"))
        (table,) = scan_arrow(store, "t")
        assert table["key"].to_pylist() == ["b", "c"]
        assert table["value"].to_pylist() == [b"2", b"3"]
    finally:
        store.close()


def test_last_write_in_a_batch_wins(store: PointStore) -> None:
    store.write(WriteBatch().put("t", "k", b"1").delete("t", "k").put("t", "k", b"3"))
    assert store.get("t", "k") == b"3"


def test_concurrent_writers_lose_nothing(store: PointStore) -> None:
    def writer(n: int) -> None:
        for i in range(200):
            store.write(WriteBatch().put("c", f"{n}-{i:04d}", b"v"))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count("c") == 1200


def test_tables_lists_each_table_holding_keys_once_in_order(store: PointStore) -> None:
    assert store.tables() == []
    batch = WriteBatch().put("zeta", "k", b"1").put("emptied", "k", b"1")
    for i in range(60):  # many partitions: on Redis the table spreads over every bucket
        batch.put("alpha", f"Email\x1fu{i}@x\x1f{i}", b"v")
    store.write(batch)
    store.write(WriteBatch().delete("emptied", "k").delete("only_deleted", "k"))
    # reads never create a table
    assert store.get("read_only", "k") is None and store.count("read_only") == 0
    assert list(store.scan("read_only")) == [] and store.get_many("read_only", ["k"]) == {}
    listed = store.tables()
    assert listed == sorted(set(listed))
    # a table whose keys are all gone may stay listed (SQLite) or not (Redis), both back up alike
    assert {"alpha", "zeta"} <= set(listed) <= {"alpha", "zeta", "emptied", "only_deleted"}


def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "p.sqlite")
    s.write(WriteBatch().put("t", "k", b"v"))
    s.close()
    again = SqliteStore(tmp_path / "p.sqlite")
    assert again.get("t", "k") == b"v"
    again.close()


def test_staged_store_overlays_and_commits(tmp_path: Path) -> None:
    from tessera.store.staged import StagedStore

    base = SqliteStore(tmp_path / "p.sqlite")
    base.write(WriteBatch().put("t", "a", b"1").put("t", "c", b"3").put("t", "e", b"5"))
    staged = StagedStore(base)
    staged.write(WriteBatch().put("t", "b", b"2").delete("t", "c").put("t", "e", b"50").put("t", "f", b"6"))
    assert [(k, v) for k, v in staged.scan("t")] == [("a", b"1"), ("b", b"2"), ("e", b"50"), ("f", b"6")]
    assert staged.get("t", "c") is None and base.get("t", "c") == b"3"
    assert [k for k, _ in staged.scan("t", limit=2)] == ["a", "b"]
    staged.commit()
    assert [(k, v) for k, v in base.scan("t")] == [("a", b"1"), ("b", b"2"), ("e", b"50"), ("f", b"6")]
    base.close()


def test_a_batch_applies_each_keys_last_operation_across_tables(store: PointStore) -> None:
    store.write(WriteBatch().put("t", "gone", b"1").put("u", "x", b"1"))
    batch = WriteBatch().put("t", "z", b"26").put("t", "gone", b"2").delete("t", "gone").put("t", "a", b"1")
    store.write(batch.delete("u", "x").put("u", "x", b"2").delete("u", "never"))
    assert [(k, v) for k, v in store.scan("t")] == [("a", b"1"), ("z", b"26")]
    assert store.get("u", "x") == b"2" and store.get("u", "never") is None


def test_staged_store_scans_in_order_after_writes_in_any_order(tmp_path: Path) -> None:
    from tessera.store.staged import StagedStore

    base = SqliteStore(tmp_path / "p.sqlite")
    base.write(WriteBatch().put("t", "k05", b"base"))
    staged = StagedStore(base)
    staged.write(WriteBatch().put("t", "k09", b"9").put("t", "k01", b"1").put("t", "k07", b"7"))
    assert [k for k, _ in staged.scan("t")] == ["k01", "k05", "k07", "k09"]
    staged.write(WriteBatch().put("t", "k03", b"3").delete("t", "k07"))  # after a scan: sorted again
    assert [k for k, _ in staged.scan("t", "k0")] == ["k01", "k03", "k05", "k09"]
    base.close()


def test_staged_store_lists_base_tables_and_staged_puts(tmp_path: Path) -> None:
    from tessera.store.staged import StagedStore

    base = SqliteStore(tmp_path / "p.sqlite")
    base.write(WriteBatch().put("b", "k", b"1"))
    staged = StagedStore(base)
    staged.write(WriteBatch().put("c", "k", b"1").put("a", "k", b"1").delete("only_deleted", "k"))
    staged.write(WriteBatch().put("undone", "k", b"1").delete("undone", "k"))
    assert staged.tables() == ["a", "b", "c"]
    staged.rollback()
    assert staged.tables() == ["b"]
    base.close()
