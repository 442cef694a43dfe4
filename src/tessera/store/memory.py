"""A dict-backed point store: the executable specification of the contract, used in unit tests."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence

from tessera.store.base import Capabilities, WriteBatch, check_table, prefix_end


class MemoryStore:
    """Keeps every table as a sorted key list plus a dict. Not durable."""

    capabilities = Capabilities(durable=False, shared_between_processes=False)

    def __init__(self) -> None:
        self._tables: dict[str, tuple[list[str], dict[str, bytes]]] = {}
        self._lock = threading.RLock()
        self._closed = False

    def _table(self, name: str) -> tuple[list[str], dict[str, bytes]]:
        if self._closed:
            raise RuntimeError("store is closed")
        table = self._tables.get(name)
        if table is None:
            table = self._tables[check_table(name)] = ([], {})
        return table

    def get(self, table: str, key: str) -> bytes | None:
        with self._lock:
            return self._table(table)[1].get(key)

    def get_many(self, table: str, keys: Sequence[str]) -> dict[str, bytes]:
        with self._lock:
            values = self._table(table)[1]
            return {k: values[k] for k in keys if k in values}

    def scan(
        self, table: str, prefix: str = "", *, start_after: str | None = None, limit: int | None = None
    ) -> Iterator[tuple[str, bytes]]:
        with self._lock:
            keys, values = self._table(table)
            lo = bisect.bisect_left(keys, prefix)
            if start_after is not None and start_after >= prefix:
                lo = bisect.bisect_right(keys, start_after)
            hi = bisect.bisect_left(keys, prefix_end(prefix)) if prefix else len(keys)
            chosen = keys[lo:hi]
            if limit is not None:
                chosen = chosen[:limit]
            result = [(k, values[k]) for k in chosen]
        yield from result

    def count(self, table: str, prefix: str = "") -> int:
        return sum(1 for _ in self.scan(table, prefix))

    def tables(self) -> list[str]:
        # reads create an entry too (see ``_table``), so list only the tables holding keys
        with self._lock:
            if self._closed:
                raise RuntimeError("store is closed")
            return sorted(name for name, (keys, _) in self._tables.items() if keys)

    def write(self, batch: WriteBatch) -> None:
        with self._lock:
            for table, key, value in batch.ops:
                keys, values = self._table(table)
                if value is None:
                    if key in values:
                        del values[key]
                        keys.pop(bisect.bisect_left(keys, key))
                else:
                    if key not in values:
                        bisect.insort(keys, key)
                    values[key] = value

    def close(self) -> None:
        self._closed = True
