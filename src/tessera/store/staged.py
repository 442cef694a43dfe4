"""A write-staging view over a point store: reads see the staged writes, ``commit`` applies them.

Ingestion processes a chunk of rows against a :class:`StagedStore`, so later rows of the chunk
see what earlier rows wrote, and the whole chunk becomes durable in one atomic write. Nothing is
acknowledged before that commit returns.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence

from tessera.store.base import Capabilities, PointStore, WriteBatch, may_have_rows, prefix_end


class StagedStore:
    """Overlay of pending puts/deletes on top of ``base``."""

    def __init__(self, base: PointStore) -> None:
        self.base = base
        self.capabilities: Capabilities = base.capabilities
        self._staged: dict[str, dict[str, bytes | None]] = {}
        self._sorted: dict[str, list[str]] = {}
        # Tables whose key list gained keys since it was last sorted: sorting happens on the next
        # scan, so a bulk write of n keys costs one sort instead of n insertions.
        self._unsorted: set[str] = set()
        self._batch = WriteBatch()
        # base rows under (table, prefix) read ahead by prefetch(): a snapshot of the base, which
        # only this object's commit changes while the sandbox's write lock is held
        self._prefetched: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
        self._points: dict[tuple[str, str], bytes | None] = {}  # the same, for single keys

    @property
    def pending(self) -> int:
        return len(self._batch)

    def get(self, table: str, key: str) -> bytes | None:
        staged = self._staged.get(table)
        if staged is not None and key in staged:
            return staged[key]
        if self._points and (table, key) in self._points:
            return self._points[(table, key)]
        return self.base.get(table, key)

    def get_many(self, table: str, keys: Sequence[str]) -> dict[str, bytes]:
        staged = self._staged.get(table, {})
        wanted = [k for k in keys if k not in staged]
        result: dict[str, bytes] = {}
        if self._points:
            held = [k for k in wanted if (table, k) in self._points]
            for k in held:
                value = self._points[(table, k)]
                if value is not None:
                    result[k] = value
            wanted = [k for k in wanted if (table, k) not in self._points]
        if wanted:
            result.update(self.base.get_many(table, wanted))
        for k in keys:
            if k in staged:
                value = staged[k]
                if value is not None:
                    result[k] = value
        return result

    def prefetch(self, table: str, prefixes: Iterable[str]) -> None:
        """Read the base's rows under these prefixes ahead, in as few round trips as the base
        allows (``scan_prefixes``); later full scans of exactly those prefixes use them. Only
        for a base where that saves round trips (Redis): elsewhere nothing happens."""
        batch_scan = getattr(self.base, "scan_prefixes", None)
        if batch_scan is None:  # the mark of a base where each read is a round trip
            return
        todo = [p for p in dict.fromkeys(prefixes) if (table, p) not in self._prefetched]
        if todo:
            for prefix, rows in batch_scan(table, todo).items():
                self._prefetched[(table, prefix)] = rows

    PREFETCH_KEYS_LOCAL = 32
    """From this many keys on, :meth:`prefetch_keys` reads ahead from a local base too: one
    ``get_many`` costs less than that many point reads (a SQLite point read ~2.3 µs, ~1 µs a
    key batched); below it the extra query costs more than it saves."""

    def prefetch_keys(self, table: str, keys: Iterable[str]) -> None:
        """Read these keys of the base ahead in one ``get_many`` (always where each read is a
        round trip, as for :meth:`prefetch`; from a local base for many keys); later reads of
        them are answered from memory."""
        wanted = list(dict.fromkeys(keys))
        if getattr(self.base, "scan_prefixes", None) is None and len(wanted) < self.PREFETCH_KEYS_LOCAL:
            return
        todo = [k for k in wanted if (table, k) not in self._points]
        if todo:
            found = self.base.get_many(table, todo)
            for k in todo:
                self._points[(table, k)] = found.get(k)

    def _sorted_keys(self, table: str) -> list[str]:
        """The staged keys of ``table`` in order (sorted here, once after a run of writes)."""
        keys = self._sorted[table]
        if table in self._unsorted:
            keys.sort()
            self._unsorted.discard(table)
        return keys

    def any_under(self, table: str, prefix: str) -> bool:
        """Whether any row, staged or stored, has a key under ``prefix``. A staged row answers
        without a read of the base (a chunk's new profiles all have their new events staged)."""
        staged = self._staged.get(table)
        if not staged:
            return next(iter(self._base_scan(table, prefix, None, 1)), None) is not None
        keys = self._sorted_keys(table)
        under = keys[bisect.bisect_left(keys, prefix) : bisect.bisect_left(keys, prefix_end(prefix))]
        if any(staged[k] is not None for k in under):
            return True
        # every staged key under the prefix deletes a stored row: one more than they can hide
        return any(k not in staged for k, _ in self._base_scan(table, prefix, None, len(under) + 1))

    def _base_scan(
        self, table: str, prefix: str, start_after: str | None, limit: int | None
    ) -> Iterator[tuple[str, bytes]]:
        rows = self._prefetched.get((table, prefix))
        if rows is None:
            return self.base.scan(table, prefix, start_after=start_after, limit=limit)
        if start_after is not None and start_after >= prefix:
            rows = [r for r in rows if r[0] > start_after]
        return iter(rows if limit is None else rows[:limit])

    def may_have_rows(self, table: str) -> bool:
        """See :func:`tessera.store.base.may_have_rows` (a staged put counts)."""
        staged = self._staged.get(table)
        if staged and any(v is not None for v in staged.values()):
            return True
        return may_have_rows(self.base, table)

    def scan(
        self, table: str, prefix: str = "", *, start_after: str | None = None, limit: int | None = None
    ) -> Iterator[tuple[str, bytes]]:
        staged = self._staged.get(table)
        if not staged:
            yield from self._base_scan(table, prefix, start_after, limit)
            return
        keys = self._sorted_keys(table)
        lo = bisect.bisect_left(keys, prefix)
        if start_after is not None and start_after >= prefix:
            lo = bisect.bisect_right(keys, start_after)
        hi = bisect.bisect_left(keys, prefix_end(prefix)) if prefix else len(keys)
        overlay = keys[lo:hi]
        base_iter = self._base_scan(table, prefix, start_after, None)
        emitted = 0
        pos = 0
        for k, v in base_iter:
            while pos < len(overlay) and overlay[pos] < k:
                value = staged[overlay[pos]]
                pos += 1
                if value is not None:
                    yield overlay[pos - 1], value
                    emitted += 1
                    if limit is not None and emitted >= limit:
                        return
            if k in staged:
                if pos < len(overlay) and overlay[pos] == k:
                    pos += 1
                value = staged[k]
                if value is None:
                    continue
                v = value
            yield k, v
            emitted += 1
            if limit is not None and emitted >= limit:
                return
        for k in overlay[pos:]:
            value = staged[k]
            if value is not None:
                yield k, value
                emitted += 1
                if limit is not None and emitted >= limit:
                    return

    def count(self, table: str, prefix: str = "") -> int:
        return sum(1 for _ in self.scan(table, prefix))

    def tables(self) -> list[str]:
        # a table only staged deletes touch holds no key the base does not already list
        staged = {t for t, ops in self._staged.items() if any(v is not None for v in ops.values())}
        return sorted(staged.union(self.base.tables()))

    def write(self, batch: WriteBatch) -> None:
        """Stage ``batch`` (not durable until :meth:`commit`)."""
        for table, key, value in batch.ops:
            staged = self._staged.get(table)
            if staged is None:
                staged = self._staged[table] = {}
                self._sorted[table] = []
            if key not in staged:
                self._sorted[table].append(key)
                self._unsorted.add(table)
            staged[key] = value
        self._batch.extend(batch)

    def commit(self) -> None:
        """Apply every staged write atomically to the base store (durable on return)."""
        if self._batch.ops:
            self.base.write(self._batch)
        self._forget()

    def rollback(self) -> None:
        self._forget()

    def _forget(self) -> None:
        """Drop the staged writes and what was read ahead (the base may change from now on)."""
        self._batch = WriteBatch()
        self._staged.clear()
        self._sorted.clear()
        self._unsorted.clear()
        self._prefetched.clear()
        self._points.clear()

    def close(self) -> None:
        self.rollback()


__all__ = ["StagedStore"]
