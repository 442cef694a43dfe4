"""Dataset documents are read from the store at most once a second per process (every streaming
call reads its dataset), yet this process's changes show at once and another's within that time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera.catalog.datasets import DATASETS, Datasets
from tessera.errors import NotFound
from tessera.store import MemoryStore, SqliteStore


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, table: str, key: str) -> bytes | None:
        self.reads += table == DATASETS
        return super().get(table, key)


def test_repeated_reads_of_a_dataset_do_not_go_to_the_store() -> None:
    store = CountingStore()
    datasets = Datasets(store)
    ds = datasets.create("Web", "schema-1")
    for _ in range(100):
        assert datasets.get(ds["id"])["name"] == "Web"
    assert store.reads == 0


def test_own_changes_show_at_once_and_copies_are_independent() -> None:
    datasets = Datasets(MemoryStore())
    ds = datasets.create("Web", "schema-1")
    datasets.get(ds["id"])["tags"]["unifiedProfile"] = ["enabled:false"]  # the caller's copy only
    assert datasets.get(ds["id"])["tags"]["unifiedProfile"] == ["enabled:true"]
    datasets.patch(ds["id"], {"tags": {"unifiedProfile": ["enabled:false"]}})
    assert datasets.get(ds["id"])["tags"]["unifiedProfile"] == ["enabled:false"]
    datasets.delete(ds["id"])
    with pytest.raises(NotFound):
        datasets.get(ds["id"])


def test_another_process_change_arrives_within_the_cache_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two catalogs over one database file stand for two processes."""
    clock = [1000.0]
    monkeypatch.setattr("tessera.catalog.datasets.time.monotonic", lambda: clock[0])
    db = tmp_path / "point.sqlite"
    one, two = SqliteStore(db), SqliteStore(db)
    try:
        mine, theirs = Datasets(one), Datasets(two)
        ds = mine.create("Web", "schema-1")
        assert theirs.get(ds["id"])["name"] == "Web"
        mine.patch(ds["id"], {"name": "Web events"})
        assert theirs.get(ds["id"])["name"] == "Web"  # read 0 s ago: still the copy
        clock[0] += Datasets.CACHE_SECONDS
        assert theirs.get(ds["id"])["name"] == "Web events"
        # a patch starts from the stored document, never from a copy that may be old
        theirs.patch(ds["id"], {"description": "clicks"})
        mine.patch(ds["id"], {"name": "Clicks"})
        fresh = Datasets(two).get(ds["id"])
        assert {k: fresh[k] for k in ("name", "description")} == {
            "name": "Clicks",
            "description": "clicks",
        }
    finally:
        one.close()
        two.close()
