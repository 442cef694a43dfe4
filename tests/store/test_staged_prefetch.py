"""A staged store reads prefixes ahead from a base that batches them, and still shows its own writes."""

from __future__ import annotations

from collections.abc import Sequence

from tessera.store import MemoryStore, WriteBatch
from tessera.store.staged import StagedStore


class Batching(MemoryStore):
    """A memory store that answers several prefix scans at once, counting how it is asked."""

    def __init__(self) -> None:
        super().__init__()
        self.batched: list[list[str]] = []
        self.scans = 0

    def scan_prefixes(self, table: str, prefixes: Sequence[str]) -> dict[str, list[tuple[str, bytes]]]:
        self.batched.append(list(prefixes))
        return {p: list(super(Batching, self).scan(table, p)) for p in prefixes}

    def scan(self, table: str, prefix: str = "", **kwargs: object):  # type: ignore[no-untyped-def,override]
        self.scans += 1
        return super().scan(table, prefix, **kwargs)  # type: ignore[arg-type]


def test_prefetched_prefixes_are_read_once_and_overlaid_with_staged_writes() -> None:
    base = Batching()
    base.write(WriteBatch().put("ev", "a/1", b"a1").put("ev", "a/2", b"a2").put("ev", "b/1", b"b1"))
    staged = StagedStore(base)
    staged.prefetch("ev", ["a/", "b/", "a/"])
    assert base.batched == [["a/", "b/"]]
    staged.write(WriteBatch().put("ev", "a/3", b"a3").delete("ev", "a/1"))
    assert list(staged.scan("ev", "a/")) == [("a/2", b"a2"), ("a/3", b"a3")]
    assert list(staged.scan("ev", "b/", limit=1)) == [("b/1", b"b1")]
    assert list(staged.scan("ev", "a/", start_after="a/2")) == [("a/3", b"a3")]
    assert base.scans == 0  # everything above came from the prefetched rows
    staged.prefetch("ev", ["a/", "c/"])
    assert base.batched[-1] == ["c/"]  # only what is not held yet
    staged.commit()  # the base changed: what was read ahead is dropped
    base.write(WriteBatch().put("ev", "b/2", b"b2"))
    assert [k for k, _ in staged.scan("ev", "b/")] == ["b/1", "b/2"] and base.scans == 1


def test_a_base_that_cannot_batch_is_left_alone() -> None:
    base = MemoryStore()
    base.write(WriteBatch().put("ev", "a/1", b"a1"))
    staged = StagedStore(base)
    staged.prefetch("ev", ["a/"])
    assert list(staged.scan("ev", "a/")) == [("a/1", b"a1")]


def test_prefetched_keys_are_read_in_one_go_and_staged_writes_win() -> None:
    base = Batching()
    base.write(WriteBatch().put("p", "k1", b"v1").put("p", "k2", b"v2"))
    reads: list[list[str]] = []
    real = base.get_many

    def get_many(table: str, keys: Sequence[str]) -> dict[str, bytes]:
        reads.append(list(keys))
        return real(table, keys)

    base.get_many = get_many  # type: ignore[method-assign]
    staged = StagedStore(base)
    staged.prefetch_keys("p", ["k1", "k2", "k3"])
    assert reads == [["k1", "k2", "k3"]]
    staged.write(WriteBatch().put("p", "k2", b"new").delete("p", "k1"))
    assert (staged.get("p", "k1"), staged.get("p", "k2"), staged.get("p", "k3")) == (None, b"new", None)
    assert staged.get_many("p", ["k1", "k2", "k3"]) == {"k2": b"new"}
    assert reads == [["k1", "k2", "k3"]]  # the second read did not ask the base
    staged.commit()
    base.write(WriteBatch().put("p", "k3", b"v3"))
    assert staged.get("p", "k3") == b"v3"  # read again after the commit


def test_a_local_base_is_read_ahead_only_for_many_keys() -> None:
    """One batched read costs less than many point reads, more than a few."""
    base = MemoryStore()
    keys = [f"k{i:03d}" for i in range(StagedStore.PREFETCH_KEYS_LOCAL)]
    wb = WriteBatch()
    for k in keys:
        wb.put("p", k, k.encode())
    base.write(wb)
    calls: list[str] = []
    real_get, real_many = base.get, base.get_many

    def get(table: str, key: str) -> bytes | None:
        calls.append("get")
        return real_get(table, key)

    def get_many(table: str, wanted: Sequence[str]) -> dict[str, bytes]:
        calls.append(f"get_many({len(wanted)})")
        return real_many(table, wanted)

    base.get, base.get_many = get, get_many  # type: ignore[method-assign,assignment]
    few = StagedStore(base)
    few.prefetch_keys("p", keys[:3])
    assert calls == [] and few.get("p", "k001") == b"k001" and calls == ["get"]
    calls.clear()
    many = StagedStore(base)
    many.prefetch_keys("p", [*keys, "absent"])
    assert calls == [f"get_many({len(keys) + 1})"]
    assert [many.get("p", k) for k in (keys[5], "absent")] == [keys[5].encode(), None]
    assert calls == [f"get_many({len(keys) + 1})"]  # both answered from what was read ahead
