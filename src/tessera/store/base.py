"""The point-state interface every stage stores through.

Tessera keeps point state (catalog objects, identity links, profile fragments, materialised
profiles, memberships, jobs) as documents in named tables of one ordered key-value space per
sandbox. That shape is deliberately small: an embedded SQLite file, a dict, or a Redis cluster
can all provide it, and nothing above this module knows which one it is talking to.

Contract (every implementation, checked by ``tests/store/test_contract.py``):

* ``write(batch)`` applies every put and delete of the batch atomically and returns only once
  the batch is durable: a process killed after ``write`` returned loses nothing of it.
* Reads after ``write`` returned, in any thread, see the batch (read-your-writes).
* Keys are ordered as Python ``str`` ordering (code points); ``scan`` walks a prefix in order.
* Table names are code identifiers (``[a-z][a-z0-9_]*``), never user input.
* ``tables()`` names, in order, every table holding at least one key and no table that no batch
  ever named; a table whose keys were all deleted may be listed or not (SQLite keeps the empty
  table, Redis drops it). Backups walk these names, so a table missing from it is lost.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import orjson

from tessera.errors import TesseraError

if TYPE_CHECKING:
    import pyarrow as pa

TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Capabilities:
    """What a point store can do; core code branches on these, never on the backend's name."""

    durable: bool
    """Writes survive a process crash once ``write`` has returned."""
    shared_between_processes: bool
    """Several processes may open the same store at once."""
    ordered_scans: bool = True
    """``scan`` returns keys in order."""


def dump_json(doc: Any) -> bytes:
    """``doc`` as JSON bytes, in a buffer of its own length.

    orjson (3.12 and later) returns its whole working buffer — 4 KB for a 300-byte document,
    16 KB for a 1.5 KB one — and a write batch holds tens of thousands of values until it
    commits. Kept untrimmed they cost ten times their size in fresh memory, and on a VM the page
    faults dominate: a 200k-profile segment job spent most of its write phase there. The copy
    costs ~0.2 µs."""
    return bytes(memoryview(orjson.dumps(doc)))


@dataclass
class WriteBatch:
    """Puts and deletes to apply atomically. Values are bytes; use :meth:`put_json` for documents."""

    ops: list[tuple[str, str, bytes | None]] = field(default_factory=list)

    def put(self, table: str, key: str, value: bytes) -> WriteBatch:
        self.ops.append((table, key, value))
        return self

    def put_json(self, table: str, key: str, doc: Any) -> WriteBatch:
        self.ops.append((table, key, dump_json(doc)))
        return self

    def delete(self, table: str, key: str) -> WriteBatch:
        self.ops.append((table, key, None))
        return self

    def extend(self, other: WriteBatch) -> WriteBatch:
        self.ops.extend(other.ops)
        return self

    def __len__(self) -> int:
        return len(self.ops)


@runtime_checkable
class PointStore(Protocol):
    """Ordered key → bytes tables with atomic, durable batch writes."""

    capabilities: Capabilities

    def get(self, table: str, key: str) -> bytes | None:
        """The value under ``key`` or ``None``."""
        ...

    def get_many(self, table: str, keys: Sequence[str]) -> dict[str, bytes]:
        """The values of those ``keys`` that exist."""
        ...

    def scan(
        self, table: str, prefix: str = "", *, start_after: str | None = None, limit: int | None = None
    ) -> Iterator[tuple[str, bytes]]:
        """Keys starting with ``prefix`` in ascending order, after ``start_after`` if given."""
        ...

    def count(self, table: str, prefix: str = "") -> int:
        """How many keys start with ``prefix``."""
        ...

    def tables(self) -> list[str]:
        """Names of the tables holding keys, sorted (see the contract for emptied tables)."""
        ...

    def write(self, batch: WriteBatch) -> None:
        """Apply ``batch`` atomically; return once durable. Raises ``StorageError`` on failure."""
        ...

    def close(self) -> None:
        """Release files and connections; further calls are errors."""
        ...


def check_table(name: str) -> str:
    if not TABLE_NAME.match(name):
        raise TesseraError(f"invalid table name {name!r}")
    return name


def prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``.

    >>> prefix_end("ab")
    'ac'
    """
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else "\U0010ffff"


def get_json(store: PointStore, table: str, key: str) -> Any:
    """Decode a JSON document, or ``None`` when absent."""
    raw = store.get(table, key)
    return None if raw is None else orjson.loads(raw)


def may_have_rows(store: PointStore, table: str) -> bool:
    """``False`` only when ``table`` certainly holds no row ("skip reading it for every profile").

    A store may answer it its own way (``may_have_rows``): on Redis, one ``EXISTS`` over the
    table's buckets instead of a first page from each of them.
    """
    own = getattr(store, "may_have_rows", None)
    if own is not None:
        return bool(own(table))
    return next(iter(store.scan(table, limit=1)), None) is not None


def scan_chunks(store: PointStore, table: str, size: int = 50_000) -> Iterator[tuple[list[str], list[bytes]]]:
    """Every key and value of ``table`` in key order, in chunks of up to ``size`` (for whole-table
    reads: a store may answer them with one query rather than a page per thousand keys)."""
    bulk = getattr(store, "scan_chunks", None)
    if bulk is not None:
        yield from bulk(table, size)
        return
    keys: list[str] = []
    values: list[bytes] = []
    for k, v in store.scan(table):
        keys.append(k)
        values.append(v)
        if len(keys) >= size:
            yield keys, values
            keys, values = [], []
    if keys:
        yield keys, values


def scan_arrow(store: PointStore, table: str, size: int = 100_000) -> Iterator[pa.Table]:
    """Every key and value of ``table`` as Arrow tables of up to ``size`` rows, columns ``key``
    (string) and ``value`` (binary), for batch jobs that hand stored documents to DuckDB: a
    store that can (SQLite, through ADBC) builds the columns without a Python object per row."""
    import pyarrow as pa

    _prefer_jemalloc(pa)
    native = getattr(store, "scan_arrow", None)
    if native is not None:
        yield from native(table, size)
        return
    yield from arrow_chunks(scan_chunks(store, table, size))


def arrow_chunks(chunks: Iterable[tuple[list[str], list[bytes]]]) -> Iterator[pa.Table]:
    """:func:`scan_chunks`' ``(keys, values)`` pairs as the tables of :func:`scan_arrow`."""
    import pyarrow as pa

    for keys, values in chunks:
        yield pa.table({"key": pa.array(keys, pa.string()), "value": pa.array(values, pa.binary())})


def _prefer_jemalloc(pa: Any) -> None:
    """Make jemalloc Arrow's allocator for this process, unless the user chose one
    (``ARROW_DEFAULT_MEMORY_POOL``) or this build of Arrow has none. With pyarrow's default
    (mimalloc) the first batch job of a process spent a third more time splitting and parsing
    events (fresh memory taken from the system chunk by chunk: 2.47 s against 1.48 s for the
    events of 200k profiles); with jemalloc or the system allocator the first job runs like the
    next ones."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL") or pa.default_memory_pool().backend_name == "jemalloc":
        return
    with contextlib.suppress(NotImplementedError):  # built without jemalloc (e.g. Windows wheels)
        pa.set_memory_pool(pa.jemalloc_memory_pool())


def scan_json(store: PointStore, table: str, prefix: str = "", **kw: Any) -> Iterator[tuple[str, Any]]:
    for key, raw in store.scan(table, prefix, **kw):
        yield key, orjson.loads(raw)


KEY_SEP = "\x1f"
"""Separator for composite keys; a control character no identifier or name may contain."""


def key(*parts: str) -> str:
    """Join key parts with :data:`KEY_SEP`.

    >>> key("Email", "a@b.c") == "Email\\x1fa@b.c"
    True
    """
    return KEY_SEP.join(parts)


def clear_store(store: PointStore, *, chunk: int = 1000) -> int:
    """Delete every key of every table (a deleted sandbox whose store lives outside its folder).

    Deletes in chunks of ``chunk`` keys so that a large store never needs one huge batch; each
    chunk's scan restarts from the beginning of the table, as the chunk before it is gone.
    Returns the number of keys deleted.
    """
    deleted = 0
    for table in store.tables():
        while keys := [k for k, _ in store.scan(table, limit=chunk)]:
            batch = WriteBatch()
            for k in keys:
                batch.delete(table, k)
            store.write(batch)
            deleted += len(keys)
    return deleted
