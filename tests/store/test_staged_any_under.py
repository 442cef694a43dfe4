"""A staged store tells whether anything is under a prefix from its own writes when it can, and
never counts a row that a staged delete hides."""

from __future__ import annotations

from collections.abc import Iterator

from tessera.store import MemoryStore, WriteBatch
from tessera.store.staged import StagedStore


class Counting(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.scans = 0

    def scan(self, *args: object, **kwargs: object) -> Iterator[tuple[str, bytes]]:  # type: ignore[override]
        self.scans += 1
        return super().scan(*args, **kwargs)  # type: ignore[arg-type]


def test_staged_rows_answer_and_staged_deletes_hide_stored_ones() -> None:
    base = Counting()
    base.write(WriteBatch().put("ev", "a/1", b"").put("ev", "a/2", b"").put("ev", "b/1", b""))
    staged = StagedStore(base)
    assert staged.any_under("ev", "a/") and not staged.any_under("ev", "c/")
    staged.write(WriteBatch().put("ev", "c/1", b"new"))
    scans = base.scans
    assert staged.any_under("ev", "c/") and base.scans == scans  # the staged row answered
    staged.write(WriteBatch().delete("ev", "a/1"))
    assert staged.any_under("ev", "a/")  # a/2 is still there
    staged.write(WriteBatch().delete("ev", "a/2").delete("ev", "b/1"))
    assert not staged.any_under("ev", "a/") and not staged.any_under("ev", "b/")
    staged.write(WriteBatch().put("ev", "a/3", b""))
    assert staged.any_under("ev", "a/")
    staged.commit()
    assert [k for k, _ in base.scan("ev")] == ["a/3", "c/1"]
