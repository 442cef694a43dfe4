"""The distributed point store: the :class:`~tessera.store.base.PointStore` contract on Redis.

Works against one standalone server and against Redis Cluster (redis-py's ``RedisCluster``), so
several API and worker processes on several machines share one identity graph and profile store.

Key layout
----------
Every key of a table is assigned to a **partition**, and every partition to one of ``buckets``
**buckets** (``crc32(partition) % buckets``). A bucket is a Redis hash tag, so everything in a
bucket lives in one hash slot, on one node, whatever the table:

* ``{<ns>|<bucket>}:z:<table>`` sorted set: the bucket's keys of that table, all with score 0,
  so ``ZRANGEBYLEX`` walks them in byte order (UTF-8 byte order is code-point order, which is
  Python ``str`` order: the contract's ordering).
* ``{<ns>|<bucket>}:h:<table>`` hash: key → value bytes.
* ``{<ns>|<bucket>}:lock`` / ``:intent`` / ``:done:<batch>`` / ``:wal:<batch>``: the cross-slot
  write protocol below.
* ``<ns>:meta``: the bucket count, checked at open so every process agrees on the layout.

A namespace's table names are stored nowhere but in these keys: :meth:`RedisStore.tables` finds
them with ``SCAN`` for ``{<ns>|*}:z:*`` on every primary (Redis drops a sorted set with its last
member, so a table whose keys were all deleted is no longer listed).

**Partition rule** (:class:`KeyPartitioner`): the partition of a key is its first ``parts``
components split on the ``0x1f`` separator (:data:`~tessera.store.base.KEY_SEP`); a key with fewer
components is its own partition. The default ``parts=2`` makes every key that starts with
``key(namespace, id)`` (an identity's fragments, versions and events) share one bucket, so all
writes for one identity are a single atomic script on one node. Pass ``tables={"t": 1}`` to
partition a table on its first component instead, or ``tables={"t": (1, 3)}`` to partition on
components 1-2 (an index keyed ``dataset, namespace, id`` then lives with the identity's data;
:data:`TESSERA_TABLES` does this for Tessera's own index tables).

A ``scan`` whose prefix already fixes the partition (it contains ``parts`` separators) reads one
bucket; any other scan merges the ordered streams of all buckets (``heapq.merge``), one page of
1000 keys per bucket at a time.

Atomicity and ordering
----------------------
* **Standalone server:** every batch is one Lua script over all its keys: fully atomic and
  isolated, for writers and readers alike.
* **Cluster, batch within one bucket** (the common case: one identity's data): one Lua script on
  one node: fully atomic and isolated.
* **Cluster, batch across buckets:** *atomic for writers, all-or-nothing for durability, not
  isolated for readers.* The writer (1) stores the whole batch as a write-ahead record in its
  lowest bucket, (2) locks every bucket in ascending order (lock with a TTL plus a persistent
  *intent* naming the batch; ascending order rules out deadlocks), (3) applies each bucket with
  a script that also writes a ``done`` marker and releases that bucket, (4) deletes the record.
  Writers touching a locked bucket wait; one that finds an intent whose lock expired (its writer
  died) **rolls that batch forward** from its write-ahead record before writing, and the
  ``done`` markers make re-application idempotent. So writers see cross-slot batches in one
  serial order, and a batch whose writer died after step 2 began is completed by the next writer
  of any of its buckets. Readers, which never wait, may see such a batch half-applied for the
  milliseconds of step 3 (or until the roll-forward if its writer crashed); a read of a single
  partition is always consistent.

Durability
----------
``write`` returns after every script has replied. With ``appendonly yes`` and ``appendfsync
always`` Redis fsyncs before replying, so an acknowledged batch survives a server crash; with
``appendfsync everysec`` it survives a crash of any client process but the server may lose up to
one second. ``require_durable=True`` (the default) checks every primary's configuration at open
and refuses to run without ``appendonly yes`` and ``appendfsync`` ``always`` or ``everysec``;
the capabilities record names the level. Replication to replicas is asynchronous (Redis ``WAIT``
is not used): a failover may lose the last writes acknowledged by a primary.
"""

from __future__ import annotations

import base64
import heapq
import random
import re
import threading
import time
import uuid
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict

from tessera.errors import StorageError
from tessera.store.base import KEY_SEP, Capabilities, WriteBatch, check_table, prefix_end

try:  # the ``distributed`` extra
    import redis
    from redis.cluster import RedisCluster
except ImportError:  # pragma: no cover - exercised only without the extra
    redis = None  # type: ignore[assignment]
    RedisCluster = None  # type: ignore[assignment,misc]

INSTALL_HINT = 'pip install "tessera-cdp[distributed]"'
_PAGE = 1000
_SCAN_COUNT = 1000


@dataclass(frozen=True)
class RedisCapabilities(Capabilities):
    """:class:`Capabilities` plus what the Redis deployment guarantees."""

    fsync: str = "none"
    """The servers' ``appendfsync`` policy (``always``, ``everysec``) or ``none`` when unchecked."""
    cross_partition_isolation: bool = True
    """Readers never see half of a batch that spans partitions (false in cluster mode)."""


class RedisStoreConfig(BaseModel):
    """Settings of :class:`RedisStore` (``point_store: {type: redis, ...}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["redis"] = "redis"
    url: str = "redis://127.0.0.1:6379/0"
    """Server URL; in cluster mode, any node of the cluster."""
    cluster: bool = False
    """Talk Redis Cluster protocol (``RedisCluster``) instead of one standalone server."""
    namespace: str = "tessera"
    """Prefix of every key; one per sandbox when several share a cluster."""
    buckets: int = 256
    """Hash-tag buckets per namespace; fixed at first open (recorded in ``<ns>:meta``)."""
    partition_parts: int = 2
    """Key components (split on 0x1f) forming a key's partition."""
    require_durable: bool = True
    """Refuse servers without ``appendonly yes`` + ``appendfsync always|everysec``."""


@dataclass(frozen=True)
class KeyPartitioner:
    r"""Maps keys to partitions: components ``[start:stop]`` of the key split on 0x1f.

    Args:
        parts: for tables not in ``tables``: the first ``parts`` components.
        tables: per-table rule: an ``int`` n (first n components) or a ``(start, stop)`` slice,
            e.g. ``(1, 3)`` for an index keyed ``dataset, namespace, id`` that should live with
            the identity's own data.

    >>> p = KeyPartitioner(parts=2, tables={"by_dataset": (1, 3)})
    >>> p.of_key("events", "Email\x1fa@b.c\x1f000123")
    'Email\x1fa@b.c'
    >>> p.of_key("by_dataset", "ds1\x1fEmail\x1fa@b.c") == p.of_key("events", "Email\x1fa@b.c\x1f9")
    True
    >>> p.of_prefix("events", "Email\x1fa@b.c\x1f"), p.of_prefix("events", "Email\x1f")
    ('Email\x1fa@b.c', None)
    """

    parts: int = 2
    tables: Mapping[str, int | tuple[int, int]] = field(default_factory=dict)

    def _slice(self, table: str) -> tuple[int, int]:
        rule = self.tables.get(table, self.parts)
        return (0, rule) if isinstance(rule, int) else rule

    def of_key(self, table: str, key: str) -> str:
        """The partition of ``key`` in ``table``."""
        start, stop = self._slice(table)
        return KEY_SEP.join(key.split(KEY_SEP, stop)[start:stop])

    def of_prefix(self, table: str, prefix: str) -> str | None:
        """The one partition every key starting with ``prefix`` is in, or ``None`` if several."""
        start, stop = self._slice(table)
        pieces = prefix.split(KEY_SEP, stop)
        if len(pieces) <= stop:
            return None
        return KEY_SEP.join(pieces[start:stop])


TESSERA_TABLES: dict[str, int | tuple[int, int]] = {
    "dataset_fragments": (1, 3),
    "batch_events": (1, 3),
    "memberships": 1,
    "profile_memberships": 1,
    "profile_sample": (1, 2),
}
"""Partition rules for Tessera's own tables. Index tables keyed ``<dataset|batch>, namespace, id,
...`` follow the identity, so ingesting a fragment or event stays a one-bucket (one-script) write;
``memberships`` (``profile id, segment id``, store formats up to 3) is partitioned on the
profile, so reading one profile's memberships (done for every profile a chunk touches) reads one
bucket, not all; ``profile_memberships`` (format 4: one document per profile id) likewise;
``profile_sample`` (``hash, profile id``) lives with its profile's row, written with it."""


# -- server-side scripts ---------------------------------------------------------------------
# Ops arrive in ARGV as triples: table slot (1-based index of the table's zset in KEYS, negated
# for a delete), key, value. KEYS[k] is a zset and KEYS[k+1] its hash.

_APPLY_OPS = """
local function apply(first_arg)
  local i = first_arg
  while i <= #ARGV do
    local t = tonumber(ARGV[i])
    if t > 0 then
      redis.call('ZADD', KEYS[t], 0, ARGV[i + 1])
      redis.call('HSET', KEYS[t + 1], ARGV[i + 1], ARGV[i + 2])
    else
      redis.call('ZREM', KEYS[-t], ARGV[i + 1])
      redis.call('HDEL', KEYS[-t + 1], ARGV[i + 1])
    end
    i = i + 3
  end
end
"""

# Single-bucket (or standalone) write. KEYS[1] lock, KEYS[2] intent (both absent in standalone
# mode: ARGV[1] == '0'), then table pairs. Returns 'ok', 'busy' or the stale intent.
_WRITE = (
    _APPLY_OPS
    + """
if ARGV[1] == '1' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return 'busy' end
  local intent = redis.call('GET', KEYS[2])
  if intent then return 'intent ' .. intent end
end
apply(2)
return 'ok'
"""
)

# Lock one bucket for a cross-bucket batch. KEYS: lock, intent, done marker.
# ARGV: batch id, write-ahead bucket, ttl ms. Returns 'ok', 'done', 'busy' or 'intent <other>'.
_LOCK = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 'done' end
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[3]); return 'ok' end
if holder then return 'busy' end
local intent = redis.call('GET', KEYS[2])
if intent and string.match(intent, '^%S+') ~= ARGV[1] then return 'intent ' .. intent end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[1] .. ' ' .. ARGV[2])
return 'ok'
"""

# Apply one bucket of a cross-bucket batch. KEYS: lock, intent, done marker, table pairs...
# ARGV[1] batch id, ARGV[2] marker ttl ms, ops from ARGV[3]. Returns 'ok', 'done' or 'lost'.
_APPLY = (
    _APPLY_OPS
    + """
if redis.call('EXISTS', KEYS[3]) == 1 then return 'done' end
local intent = redis.call('GET', KEYS[2])
if not intent or string.match(intent, '^%S+') ~= ARGV[1] then return 'lost' end
apply(3)
redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 'ok'
"""
)

# Give up a lock taken optimistically (nothing applied yet). KEYS: lock, intent. ARGV: batch id.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
local intent = redis.call('GET', KEYS[2])
if intent and string.match(intent, '^%S+') == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 'ok'
"""

# One page of a bucket's table: KEYS zset, hash; ARGV min, max, count. Returns k1, v1, k2, v2...
_PAGE_SCRIPT = """
local keys = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
if #keys == 0 then return {} end
local values = redis.call('HMGET', KEYS[2], unpack(keys))
local out = {}
for i = 1, #keys do
  out[2 * i - 1] = keys[i]
  out[2 * i] = values[i] or ''
end
return out
"""


def _enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _dec(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


def _glob_escape(text: str) -> str:
    r"""``text`` as a literal in a Redis ``MATCH`` pattern.

    >>> _glob_escape("a*b[1]")
    'a\\*b\\[1\\]'
    """
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _decode_reply(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class WriteObserver(Protocol):
    """Hooks around :meth:`RedisStore.write`: ``before_write`` may add operations to the batch
    (they commit atomically with it); ``after_write`` runs once the batch is durable."""

    def before_write(self, batch: WriteBatch) -> WriteBatch: ...

    def after_write(self, batch: WriteBatch) -> None: ...


class RedisStore:
    """Point store over Redis (standalone or cluster); see the module docstring for the layout.

    Args:
        client: a ``redis.Redis`` or ``redis.cluster.RedisCluster`` (``decode_responses=False``).
        namespace: key prefix (one per sandbox).
        buckets: hash-tag buckets; must match what the namespace was created with.
        partitioner: key → partition rule (default: first two components, :data:`TESSERA_TABLES`).
        require_durable: check ``appendonly``/``appendfsync`` on every primary at open.
        lock_ttl_ms: how long a cross-bucket writer may hold a bucket before others roll it forward.
        lock_wait_s: how long a writer waits for locked buckets before raising ``StorageError``.

    Raises:
        StorageError: the server is unreachable, not durable, or uses another bucket count.
    """

    def __init__(
        self,
        client: Any,
        *,
        namespace: str = "tessera",
        buckets: int = 256,
        partitioner: KeyPartitioner | None = None,
        require_durable: bool = True,
        lock_ttl_ms: int = 10_000,
        lock_wait_s: float = 30.0,
    ) -> None:
        if redis is None:
            raise StorageError(f"RedisStore needs the redis client: {INSTALL_HINT}")
        if not namespace or any(c in namespace for c in "{}|"):
            raise StorageError(f"invalid Redis namespace {namespace!r}", path="namespace")
        self._r = client
        self.cluster = RedisCluster is not None and isinstance(client, RedisCluster)
        self.namespace = namespace
        self.partitioner = partitioner or KeyPartitioner(tables=TESSERA_TABLES)
        self.lock_ttl_ms = lock_ttl_ms
        self.lock_wait_s = lock_wait_s
        self.marker_ttl_ms = 3_600_000
        self._closed = False
        self._write_script = client.register_script(_WRITE)
        self._lock_script = client.register_script(_LOCK)
        self._apply_script = client.register_script(_APPLY)
        self._page_script = client.register_script(_PAGE_SCRIPT)
        self._unlock_script = client.register_script(_UNLOCK)
        self._known_buckets: set[int] = set()
        self._stats_lock = threading.Lock()
        self.write_observer: WriteObserver | None = None
        """Sees every batch before and after it is written (the scale-out write epochs use it)."""
        self.recovered_batches = 0
        """Cross-bucket batches of dead writers this store rolled forward (for tests and metrics)."""
        try:
            fsync = self._check_durability() if require_durable else "none"
            client.hsetnx(f"{namespace}:meta", "buckets", str(buckets))
            stored = int(client.hget(f"{namespace}:meta", "buckets"))
        except redis.RedisError as exc:
            raise StorageError(f"cannot open Redis store {namespace!r}: {exc}") from exc
        if stored != buckets:
            raise StorageError(
                f"namespace {namespace!r} was created with {stored} buckets, not {buckets}; "
                f"open it with buckets={stored}",
                path="buckets",
            )
        self.buckets = buckets
        self.capabilities: Capabilities = RedisCapabilities(
            durable=fsync in ("always", "everysec"),
            shared_between_processes=True,
            fsync=fsync,
            cross_partition_isolation=not self.cluster,
        )

    @classmethod
    def from_config(cls, config: RedisStoreConfig) -> RedisStore:
        """Connect as ``config`` says.

        Raises:
            StorageError: the extra is missing or the server refuses.
        """
        if redis is None:
            raise StorageError(f"RedisStore needs the redis client: {INSTALL_HINT}")
        try:
            client: Any = (
                RedisCluster.from_url(config.url) if config.cluster else redis.Redis.from_url(config.url)
            )
        except redis.RedisError as exc:
            raise StorageError(f"cannot connect to {config.url}: {exc}", path="url") from exc
        return cls(
            client,
            namespace=config.namespace,
            buckets=config.buckets,
            partitioner=KeyPartitioner(parts=config.partition_parts, tables=TESSERA_TABLES),
            require_durable=config.require_durable,
        )

    def _check_durability(self) -> str:
        if self.cluster:
            replies = self._r.config_get("append*", target_nodes=RedisCluster.PRIMARIES)
            configs = list(replies.values()) if "appendonly" not in replies else [replies]
        else:
            configs = [self._r.config_get("append*")]
        levels = set()
        for conf in configs:
            conf = {_decode_reply(k): _decode_reply(v) for k, v in conf.items()}
            if conf.get("appendonly") != "yes" or conf.get("appendfsync") not in ("always", "everysec"):
                raise StorageError(
                    "Redis is not durable: start it with `--appendonly yes --appendfsync everysec` "
                    "(or always), or pass require_durable=False for a cache-only store",
                    path="appendonly",
                )
            levels.add(conf["appendfsync"])
        return "everysec" if "everysec" in levels else "always"

    # -- keys ----------------------------------------------------------------------------------

    def bucket_of(self, table: str, key: str) -> int:
        """The bucket (hash tag) of ``key`` in ``table``."""
        return zlib.crc32(_enc(self.partitioner.of_key(table, key))) % self.buckets

    @property
    def _tag_prefix(self) -> str:
        return f"{{{self.namespace}|"

    def _tag(self, bucket: int) -> str:
        return f"{self._tag_prefix}{bucket}}}"

    def _zkey(self, bucket: int, table: str) -> str:
        return f"{self._tag(bucket)}:z:{table}"

    def _hkey(self, bucket: int, table: str) -> str:
        return f"{self._tag(bucket)}:h:{table}"

    def _live(self) -> None:
        if self._closed:
            raise StorageError("store is closed")

    # -- reads ---------------------------------------------------------------------------------

    def get(self, table: str, key: str) -> bytes | None:
        self._live()
        check_table(table)
        try:
            value = self._r.hget(self._hkey(self.bucket_of(table, key), table), _enc(key))
        except redis.RedisError as exc:
            raise StorageError(f"Redis read failed: {exc}") from exc
        return None if value is None else bytes(value)

    def get_many(self, table: str, keys: Sequence[str]) -> dict[str, bytes]:
        self._live()
        check_table(table)
        by_bucket: dict[int, list[str]] = {}
        for k in dict.fromkeys(keys):
            by_bucket.setdefault(self.bucket_of(table, k), []).append(k)
        if not by_bucket:
            return {}
        order = list(by_bucket.items())
        try:
            if len(order) == 1:  # one command: a pipeline only adds client-side work
                bucket, ks = order[0]
                replies = [self._r.hmget(self._hkey(bucket, table), [_enc(k) for k in ks])]
            else:
                pipe = self._r.pipeline(transaction=False)
                for bucket, ks in order:
                    pipe.hmget(self._hkey(bucket, table), [_enc(k) for k in ks])
                replies = pipe.execute()
        except redis.RedisError as exc:
            raise StorageError(f"Redis read failed: {exc}") from exc
        result: dict[str, bytes] = {}
        for (_, ks), values in zip(order, replies, strict=True):
            for k, v in zip(ks, values, strict=True):
                if v is not None:
                    result[k] = bytes(v)
        return result

    def _buckets_for(self, table: str, prefix: str) -> list[int]:
        partition = self.partitioner.of_prefix(table, prefix)
        if partition is None:
            return list(range(self.buckets))
        return [zlib.crc32(_enc(partition)) % self.buckets]

    def _bounds(self, prefix: str, start_after: str | None) -> tuple[bytes, bytes]:
        lower = b"[" + _enc(prefix)
        if start_after is not None and start_after >= prefix:
            lower = b"(" + _enc(start_after)
        upper = b"(" + _enc(prefix_end(prefix)) if prefix else b"+"
        return lower, upper

    def _pages(
        self,
        bucket: int,
        table: str,
        prefix: str,
        start_after: str | None,
        first: list[Any] | None = None,
        page: int = _PAGE,
    ) -> Iterator[tuple[str, bytes]]:
        lower, upper = self._bounds(prefix, start_after)
        zkey, hkey = self._zkey(bucket, table), self._hkey(bucket, table)
        while True:
            if first is not None:
                flat, first = first, None
            else:
                try:
                    flat = self._page_script(keys=[zkey, hkey], args=[lower, upper, page])
                except redis.RedisError as exc:
                    raise StorageError(f"Redis scan failed: {exc}") from exc
            for i in range(0, len(flat), 2):
                yield _dec(flat[i]), bytes(flat[i + 1])
            if len(flat) < 2 * page:
                return
            lower = b"(" + bytes(flat[-2])

    def _first_pages(
        self, buckets: Sequence[int], table: str, prefix: str, start_after: str | None, page: int = _PAGE
    ) -> list[list[Any]] | None:
        """The first page of every bucket in one round trip (standalone server only)."""
        if self.cluster or len(buckets) == 1:
            return None
        return self._pipelined_pages(table, [(b, prefix) for b in buckets], start_after, page)

    def _pipelined_pages(
        self, table: str, requests: Sequence[tuple[int, str]], start_after: str | None, page: int
    ) -> list[list[Any]]:
        """The first page of each ``(bucket, prefix)``, all in one round trip (standalone only)."""
        try:
            pipe = self._r.pipeline(transaction=False)
            for bucket, prefix in requests:
                lower, upper = self._bounds(prefix, start_after)
                self._page_script(
                    keys=[self._zkey(bucket, table), self._hkey(bucket, table)],
                    args=[lower, upper, page],
                    client=pipe,
                )
            return [list(flat) for flat in pipe.execute()]
        except redis.RedisError as exc:
            raise StorageError(f"Redis scan failed: {exc}") from exc

    def scan(
        self, table: str, prefix: str = "", *, start_after: str | None = None, limit: int | None = None
    ) -> Iterator[tuple[str, bytes]]:
        self._live()
        check_table(table)
        buckets = self._buckets_for(table, prefix)
        # Pages no longer than the limit: "is there any row?" (limit 1) asks every bucket for one
        # row, not for a thousand rows with their values.
        size = _PAGE if limit is None else max(1, min(_PAGE, limit))
        firsts = self._first_pages(buckets, table, prefix, start_after, size)
        if firsts is None:
            streams = [self._pages(b, table, prefix, start_after, page=size) for b in buckets]
        else:  # empty buckets drop out at once: most of them, for small tables
            streams = [
                self._pages(b, table, prefix, start_after, first, size)
                for b, first in zip(buckets, firsts, strict=True)
                if first
            ]
        if not streams:
            return
        merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda kv: kv[0])
        # islice stops without asking the merge for one row more (which could fetch a page)
        yield from merged if limit is None else islice(merged, limit)

    def scan_prefixes(self, table: str, prefixes: Sequence[str]) -> dict[str, list[tuple[str, bytes]]]:
        """Every row under each prefix, the first page of all of them in one round trip (the
        prefixes of one identity each live in one bucket); a prefix with more rows than a page
        continues on its own. Standalone server: in a cluster, a scan per prefix."""
        self._live()
        check_table(table)
        wanted = list(dict.fromkeys(prefixes))
        buckets = [self._buckets_for(table, prefix) for prefix in wanted]
        if self.cluster or any(len(b) != 1 for b in buckets):
            return {prefix: list(self.scan(table, prefix)) for prefix in wanted}
        requests = [(bucket, prefix) for prefix, (bucket,) in zip(wanted, buckets, strict=True)]
        firsts = self._pipelined_pages(table, requests, None, _PAGE)
        return {
            prefix: list(self._pages(bucket, table, prefix, None, first))
            for (bucket, prefix), first in zip(requests, firsts, strict=True)
        }

    def may_have_rows(self, table: str) -> bool:
        """Whether any bucket of ``table`` holds a key: one ``EXISTS`` (a pipeline in a cluster,
        whose buckets live on several nodes). An emptied bucket's sorted set is gone in Redis."""
        self._live()
        check_table(table)
        keys = [self._zkey(b, table) for b in range(self.buckets)]
        try:
            if not self.cluster:
                return int(self._r.exists(*keys)) > 0
            pipe = self._r.pipeline(transaction=False)
            for k in keys:
                pipe.exists(k)
            return any(int(n) for n in pipe.execute())
        except redis.RedisError as exc:
            raise StorageError(f"Redis exists failed: {exc}") from exc

    def count(self, table: str, prefix: str = "") -> int:
        self._live()
        check_table(table)
        lower = b"[" + _enc(prefix) if prefix else b"-"
        upper = b"(" + _enc(prefix_end(prefix)) if prefix else b"+"
        try:
            pipe = self._r.pipeline(transaction=False)
            for bucket in self._buckets_for(table, prefix):
                pipe.zlexcount(self._zkey(bucket, table), lower, upper)
            return int(sum(pipe.execute()))
        except redis.RedisError as exc:
            raise StorageError(f"Redis count failed: {exc}") from exc

    def tables(self) -> list[str]:
        """Names of the tables holding at least one key, sorted (backups walk them all).

        Walks the namespace's sorted-set keys with ``SCAN`` on every primary: it costs one pass
        over each node's keyspace in pages, so it is for backups and tools, not request paths,
        and unlike ``KEYS`` it never blocks a server holding millions of other keys.
        """
        self._live()
        pattern = _glob_escape(self._tag_prefix) + "*}:z:*"
        # the glob is looser than the layout (any bucket text, any table text): keep only keys
        # this store could have written
        own = re.compile(re.escape(self._tag_prefix) + r"\d+\}:z:([a-z][a-z0-9_]*)")
        found: set[str] = set()
        try:
            if self.cluster:
                nodes = [self._r.get_redis_connection(node) for node in self._r.get_primaries()]
            else:
                nodes = [self._r]
            for node in nodes:
                for raw in node.scan_iter(match=pattern, count=_SCAN_COUNT):
                    matched = own.fullmatch(_dec(raw))
                    if matched is not None:
                        found.add(matched.group(1))
        except redis.RedisError as exc:
            raise StorageError(f"Redis scan failed: {exc}") from exc
        return sorted(found)

    # -- writes --------------------------------------------------------------------------------

    def _script_args(
        self, bucket_of_op: Sequence[int] | None, ops: Sequence[tuple[str, str, bytes | None]], fixed: int
    ) -> tuple[list[str], list[Any]]:
        """KEYS (after ``fixed`` leading keys) and the op triples for a set of ops."""
        keys: list[str] = []
        slot: dict[tuple[int, str], int] = {}
        args: list[Any] = []
        for i, (table, k, value) in enumerate(ops):
            check_table(table)
            bucket = bucket_of_op[i] if bucket_of_op is not None else self.bucket_of(table, k)
            pos = slot.get((bucket, table))
            if pos is None:
                pos = slot[(bucket, table)] = fixed + len(keys) + 1
                keys += [self._zkey(bucket, table), self._hkey(bucket, table)]
            args += [pos if value is not None else -pos, _enc(k), value if value is not None else b""]
        return keys, args

    @property
    def client(self) -> Any:
        """The redis-py client (shared by coordination primitives such as per-sandbox locks)."""
        return self._r

    def write(self, batch: WriteBatch) -> None:
        self._live()
        if not batch.ops:
            return
        observer = self.write_observer
        if observer is not None:
            batch = observer.before_write(batch)
        self._write(batch)
        if observer is not None:
            observer.after_write(batch)

    def _write(self, batch: WriteBatch) -> None:
        try:
            if not self.cluster:
                keys, args = self._script_args(None, batch.ops, 0)
                self._write_script(keys=keys, args=[0, *args])
                return
            groups: dict[int, list[tuple[str, str, bytes | None]]] = {}
            for op in batch.ops:
                check_table(op[0])
                groups.setdefault(self.bucket_of(op[0], op[1]), []).append(op)
            if len(groups) == 1:
                self._write_one_bucket(next(iter(groups)), batch.ops)
            else:
                self._write_cross(groups)
        except redis.RedisError as exc:
            raise StorageError(f"Redis write failed: {exc}") from exc

    def _backoff(self, deadline: float, what: str) -> None:
        if time.monotonic() > deadline:
            raise StorageError(f"timed out after {self.lock_wait_s} s waiting for {what}")
        time.sleep(random.uniform(0.001, 0.01))

    def _write_one_bucket(self, bucket: int, ops: Sequence[tuple[str, str, bytes | None]]) -> None:
        keys, args = self._script_args([bucket] * len(ops), ops, 2)
        lock, intent = f"{self._tag(bucket)}:lock", f"{self._tag(bucket)}:intent"
        deadline = time.monotonic() + self.lock_wait_s
        while True:
            reply = _decode_reply(self._write_script(keys=[lock, intent, *keys], args=[1, *args]))
            if reply == "ok":
                return
            if reply.startswith("intent "):
                self._recover(reply[len("intent ") :])
            else:
                self._backoff(deadline, f"bucket {bucket} locked by a cross-partition batch")

    def _write_cross(self, groups: dict[int, list[tuple[str, str, bytes | None]]]) -> None:
        batch_id = uuid.uuid4().hex
        ordered = sorted(groups)
        wal_bucket = ordered[0]
        record = orjson.dumps(
            [
                [t, k, None if v is None else base64.b64encode(v).decode()]
                for b in ordered
                for t, k, v in groups[b]
            ]
        )
        self._r.set(f"{self._tag(wal_bucket)}:wal:{batch_id}", record, px=86_400_000)
        self._lock_all(batch_id, wal_bucket, ordered)
        self._apply_all(batch_id, groups)
        self._r.delete(f"{self._tag(wal_bucket)}:wal:{batch_id}")

    def _eval_many(self, script: Any, calls: Sequence[tuple[list[Any], list[Any]]]) -> list[str]:
        """Run ``script`` once per ``(keys, args)``, pipelined across nodes; replies in order."""
        if len(calls) == 1:
            return [_decode_reply(script(keys=calls[0][0], args=calls[0][1]))]
        replies: list[Any] = [None] * len(calls)
        if self.cluster:
            # redis-py refuses EVALSHA in cluster pipelines: pipeline per node on its own client.
            by_node: dict[str, tuple[Any, list[int]]] = {}
            for i, (keys, _) in enumerate(calls):
                node = self._r.get_node_from_key(keys[0])
                by_node.setdefault(node.name, (node, []))[1].append(i)
            groups = [(self._r.get_redis_connection(node), idx) for node, idx in by_node.values()]
        else:
            groups = [(self._r, list(range(len(calls))))]
        for conn, idx in groups:
            pipe = conn.pipeline(transaction=False)
            for i in idx:
                keys, args = calls[i]
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            for i, reply in zip(idx, pipe.execute(raise_on_error=False), strict=True):
                replies[i] = reply
        out = []
        for (keys, args), reply in zip(calls, replies, strict=True):
            if isinstance(reply, Exception):
                # NOSCRIPT on a node that has not seen the script, or MOVED during resharding:
                # run it through the routing client, which loads the script and follows redirects.
                reply = script(keys=keys, args=args)
            out.append(_decode_reply(reply))
        return out

    def _lock_calls(
        self, batch_id: str, wal_bucket: int, buckets: Sequence[int]
    ) -> list[tuple[list[Any], list[Any]]]:
        return [
            (
                [f"{self._tag(b)}:lock", f"{self._tag(b)}:intent", f"{self._tag(b)}:done:{batch_id}"],
                [batch_id, wal_bucket, self.lock_ttl_ms],
            )
            for b in buckets
        ]

    def _lock_all(self, batch_id: str, wal_bucket: int, ordered: Sequence[int]) -> None:
        # Fast path: try every lock at once (one round trip per node). On any conflict give the
        # taken ones back before waiting, so this path never waits while holding locks.
        replies = self._eval_many(self._lock_script, self._lock_calls(batch_id, wal_bucket, ordered))
        if all(r in ("ok", "done") for r in replies):
            return
        taken = [b for b, r in zip(ordered, replies, strict=True) if r == "ok"]
        if taken:
            self._eval_many(
                self._unlock_script,
                [([f"{self._tag(b)}:lock", f"{self._tag(b)}:intent"], [batch_id]) for b in taken],
            )
        # Slow path: one bucket at a time in ascending order, waiting where needed (no deadlock).
        deadline = time.monotonic() + self.lock_wait_s
        for bucket in ordered:
            while True:
                reply = self._eval_many(self._lock_script, self._lock_calls(batch_id, wal_bucket, [bucket]))[
                    0
                ]
                if reply in ("ok", "done"):
                    break
                if reply.startswith("intent "):
                    self._recover(reply[len("intent ") :])
                else:
                    self._backoff(deadline, f"bucket {bucket} locked by another cross-partition batch")

    def _apply_all(
        self, batch_id: str, groups: Mapping[int, Sequence[tuple[str, str, bytes | None]]]
    ) -> None:
        calls = []
        buckets = sorted(groups)
        for bucket in buckets:
            ops = groups[bucket]
            tag = self._tag(bucket)
            keys, args = self._script_args([bucket] * len(ops), ops, 3)
            calls.append(
                (
                    [f"{tag}:lock", f"{tag}:intent", f"{tag}:done:{batch_id}", *keys],
                    [batch_id, self.marker_ttl_ms, *args],
                )
            )
        for bucket, reply in zip(buckets, self._eval_many(self._apply_script, calls), strict=True):
            if reply == "lost":
                raise StorageError(f"cross-partition batch {batch_id} lost its intent on bucket {bucket}")

    def _recover(self, intent: str) -> None:
        """Roll forward the batch named by a stale ``intent`` (``"<batch id> <wal bucket>"``)."""
        batch_id, wal_bucket = intent.split(" ")
        tag = self._tag(int(wal_bucket))
        raw = self._r.get(f"{tag}:wal:{batch_id}")
        if raw is None:
            # Finished meanwhile (the record is deleted only after every bucket applied).
            return
        ops: list[tuple[str, str, bytes | None]] = [
            (t, k, None if v is None else base64.b64decode(v)) for t, k, v in orjson.loads(raw)
        ]
        groups: dict[int, list[tuple[str, str, bytes | None]]] = {}
        for op in ops:
            groups.setdefault(self.bucket_of(op[0], op[1]), []).append(op)
        self._lock_all(batch_id, int(wal_bucket), sorted(groups))
        self._apply_all(batch_id, groups)
        self._r.delete(f"{tag}:wal:{batch_id}")
        with self._stats_lock:
            self.recovered_batches += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._r.close()
