"""Storage behind small interfaces: the point store (SQLite embedded, dict for tests)."""

from tessera.store.base import Capabilities, PointStore, WriteBatch, dump_json, get_json, key, scan_json
from tessera.store.memory import MemoryStore
from tessera.store.sqlite import SqliteStore

__all__ = [
    "Capabilities",
    "MemoryStore",
    "PointStore",
    "SqliteStore",
    "WriteBatch",
    "dump_json",
    "get_json",
    "key",
    "scan_json",
]
