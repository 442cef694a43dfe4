"""A commit that fails part-way (disk full, I/O error) leaves the store able to write the same
tables afterwards: the rolled-back transaction also undid the tables it created."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tessera.errors import StorageError
from tessera.store import SqliteStore, WriteBatch


class _FailingInserts:
    """The writer connection, except that the next ``fail`` bulk inserts raise as a full disk would."""

    def __init__(self, con: sqlite3.Connection, fail: int) -> None:
        self._con, self.fail = con, fail

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        if self.fail and sql.startswith("INSERT"):
            self.fail -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return self._con.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def test_new_table_is_writable_after_a_failed_first_commit(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "p.sqlite")
    real = store._writer
    store._writer = _FailingInserts(real, fail=2)  # type: ignore[assignment]  # the group and its retry
    with pytest.raises(StorageError):
        store.write(WriteBatch().put("batches", "b1", b"{}"))
    store._writer = real
    store.write(WriteBatch().put("batches", "b1", b"{}"))
    assert store.get("batches", "b1") == b"{}"
    store.close()
