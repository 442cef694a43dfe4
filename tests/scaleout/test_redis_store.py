"""RedisStore: the shared point-store contract on standalone Redis and on a 3-node cluster, plus the
cross-partition write protocol (serial order for writers, roll-forward of a dead writer's batch)."""

from __future__ import annotations

import importlib.util
import inspect
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("redis", reason='redis-py missing: pip install "tessera-cdp[distributed]"')

import redis
from redis.cluster import RedisCluster

from tessera.errors import StorageError
from tessera.scaleout.servers import RedisClusterServers, RedisServer, start_redis
from tessera.store.base import PointStore, WriteBatch, key, may_have_rows
from tessera.store.redis import KeyPartitioner, RedisCapabilities, RedisStore, RedisStoreConfig
from tessera.store.staged import StagedStore


def _load_contract() -> Any:
    """The shared contract module, loaded by path so this works in any pytest import mode."""
    path = Path(__file__).parents[1] / "store" / "test_contract.py"
    spec = importlib.util.spec_from_file_location("_tessera_store_contract", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


contract = _load_contract()
# Every contract test that takes just a ``store`` runs here too, including ones added later.
CONTRACT = [
    fn
    for name, fn in sorted(vars(contract).items())
    if name.startswith("test_") and callable(fn) and list(inspect.signature(fn).parameters) == ["store"]
]
assert len(CONTRACT) >= 5, "the shared store contract was not found"


def _store(request: pytest.FixtureRequest, mode: str, **kw: Any) -> RedisStore:
    ns = f"t{uuid.uuid4().hex[:10]}"
    if mode == "standalone":
        server: RedisServer = request.getfixturevalue("redis_standalone")
        return RedisStore(redis.Redis.from_url(server.url), namespace=ns, buckets=8, **kw)
    cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
    return RedisStore(RedisCluster.from_url(cluster.url), namespace=ns, buckets=8, **kw)


@pytest.fixture(params=["standalone", "cluster"])
def store(request: pytest.FixtureRequest) -> Iterator[RedisStore]:
    s = _store(request, request.param)
    yield s
    s.close()


@pytest.mark.parametrize("check", CONTRACT, ids=lambda f: f.__name__)
def test_contract(check: Any, store: RedisStore) -> None:
    check(store)


def test_redis_store_is_a_point_store(store: RedisStore) -> None:
    assert isinstance(store, PointStore)
    caps = store.capabilities
    assert isinstance(caps, RedisCapabilities)
    assert caps.durable and caps.fsync == "everysec"
    assert caps.cross_partition_isolation is (not store.cluster)


def test_partition_keys_share_a_bucket_and_prefix_scan_reads_one(store: RedisStore) -> None:
    wb = WriteBatch()
    for i in range(50):
        wb.put("events", key("Email", f"u{i}@x", f"{i:04d}"), b"e")
        wb.put("fragments", key("Email", f"u{i}@x", "ds1"), b"f")
    store.write(wb)
    assert store.bucket_of("events", key("Email", "u7@x", "0001")) == store.bucket_of(
        "fragments", key("Email", "u7@x", "ds")
    )
    assert [k for k, _ in store.scan("events", key("Email", "u7@x", ""))] == [key("Email", "u7@x", "0007")]
    # A prefix shorter than a partition spans buckets and still comes back in order.
    keys = [k for k, _ in store.scan("events", key("Email", ""))]
    assert keys == sorted(keys) and len(keys) == 50
    assert store.count("fragments", "Email") == 50


def test_any_rows_and_small_limits_answer_from_few_rows(store: RedisStore) -> None:
    table = f"t{uuid.uuid4().hex[:8]}"
    assert not may_have_rows(store, table)
    wb = WriteBatch()
    for i in range(30):
        wb.put(table, key("Email", f"u{i:02d}@x"), b"v")
    store.write(wb)
    assert may_have_rows(store, table)
    staged = StagedStore(store)
    assert may_have_rows(staged, table)
    # a limit below the page size returns exactly the first keys, in order, across buckets
    assert [k for k, _ in store.scan(table, limit=3)] == [key("Email", f"u{i:02d}@x") for i in range(3)]
    store.write(WriteBatch(ops=[(table, key("Email", f"u{i:02d}@x"), None) for i in range(30)]))
    assert not may_have_rows(store, table) and not may_have_rows(staged, table)
    staged.write(WriteBatch().put(table, "k", b"v"))
    assert may_have_rows(staged, table)


def test_scan_prefixes_equals_a_scan_per_prefix(store: RedisStore) -> None:
    table = f"t{uuid.uuid4().hex[:8]}"
    wb = WriteBatch()
    for i in range(1_200):  # more than one page under one identity
        wb.put(table, key("Email", "big@x", f"{i:05d}"), b"e")
    for n in range(5):
        wb.put(table, key("Email", f"u{n}@x", "00001"), b"e")
    store.write(wb)
    prefixes = [key("Email", "big@x", ""), key("Email", "u3@x", ""), key("Email", "none@x", "")]
    got = store.scan_prefixes(table, prefixes)
    assert got == {p: list(store.scan(table, p)) for p in prefixes}
    assert len(got[prefixes[0]]) == 1_200 and got[prefixes[2]] == []


def test_non_durable_server_is_refused(tmp_path: Any, redis_standalone: RedisServer) -> None:
    server = start_redis(tmp_path)
    try:
        client = redis.Redis.from_url(server.url)
        client.config_set("appendonly", "no")
        with pytest.raises(StorageError, match="appendonly yes"):
            RedisStore(client, namespace="n")
        relaxed = RedisStore(redis.Redis.from_url(server.url), namespace="n", require_durable=False)
        assert not relaxed.capabilities.durable
        relaxed.close()
    finally:
        server.stop()


def test_bucket_count_is_fixed_per_namespace(request: pytest.FixtureRequest) -> None:
    s = _store(request, "standalone")
    with pytest.raises(StorageError, match="buckets=8"):
        RedisStore(redis.Redis.from_url(_url(s)), namespace=s.namespace, buckets=16)
    s.close()


def _url(s: RedisStore) -> str:
    kw = s._r.connection_pool.connection_kwargs
    return f"redis://{kw['host']}:{kw['port']}/0"


def test_from_config_connects_to_the_cluster(redis_cluster: RedisClusterServers) -> None:
    s = RedisStore.from_config(
        RedisStoreConfig(url=redis_cluster.url, cluster=True, namespace="cfg", buckets=4)
    )
    s.write(WriteBatch().put("t", "a", b"1"))
    assert s.cluster and s.get("t", "a") == b"1"
    s.close()


def test_cross_partition_batches_are_serialized_for_writers(request: pytest.FixtureRequest) -> None:
    """Writers racing with batches over every bucket: each key ends with the same writer's value."""
    s = _store(request, "cluster", partitioner=KeyPartitioner(parts=1))
    keys = [f"k{i}" for i in range(12)]
    assert len({s.bucket_of("t", k) for k in keys}) > 1

    def writer(n: int) -> None:
        for i in range(15):
            wb = WriteBatch()
            for k in keys:
                wb.put("t", k, f"{n}-{i}".encode())
            s.write(wb)
            s.write(WriteBatch().put("t", keys[n % len(keys)], f"{n}-{i}".encode()).put("solo", str(n), b"x"))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # The last cross-partition batch wins everywhere except where a later one-bucket write landed.
    values = s.get_many("t", keys)
    assert len(values) == len(keys)
    assert all(v.endswith(b"-14") for v in values.values())
    assert s.count("solo") == 4
    s.close()


def test_dead_writers_batch_is_rolled_forward_by_the_next_writer(request: pytest.FixtureRequest) -> None:
    dead = _store(request, "cluster", partitioner=KeyPartitioner(parts=1), lock_ttl_ms=300)
    keys = [f"k{i}" for i in range(10)]
    wb = WriteBatch()
    for k in keys:
        wb.put("t", k, b"from-dead")
    groups: dict[int, list[tuple[str, str, bytes | None]]] = {}
    for op in wb.ops:
        groups.setdefault(dead.bucket_of(op[0], op[1]), []).append(op)
    ordered = sorted(groups)
    assert len(ordered) >= 3
    # Replay the writer's protocol by hand and "crash" after applying only the first bucket.
    batch_id = "deadbeef"
    import base64

    import orjson

    record = orjson.dumps(
        [[t, k, base64.b64encode(v or b"").decode()] for b in ordered for t, k, v in groups[b]]
    )
    dead._r.set(f"{dead._tag(ordered[0])}:wal:{batch_id}", record)
    dead._lock_all(batch_id, ordered[0], ordered)
    dead._apply_all(batch_id, {ordered[0]: groups[ordered[0]]})

    other = RedisStore(dead._r, namespace=dead.namespace, buckets=8, partitioner=KeyPartitioner(parts=1))
    # Readers see the half-applied batch (documented), writers wait and then roll it forward.
    assert sum(v == b"from-dead" for v in other.get_many("t", keys).values()) == len(groups[ordered[0]])
    victim = groups[ordered[-1]][0][1]
    other.write(WriteBatch().put("t", victim, b"later"))
    assert other.recovered_batches == 1
    after = other.get_many("t", keys)
    assert after[victim] == b"later"
    assert all(v == b"from-dead" for k, v in after.items() if k != victim)
    dead.close()


def test_tables_lists_only_this_namespaces_tables(store: RedisStore) -> None:
    """Sandboxes share a server under neighbouring namespaces; a backup must take only its own."""
    ns = store.namespace
    siblings = {
        f"{ns}-copy": "copy_table",
        f"{ns}*": "glob_table",  # a glob character: matched literally, not as a wildcard
        f"{ns}:shop": "shop_table",
    }
    for sibling, table in siblings.items():
        RedisStore(store._r, namespace=sibling, buckets=8).write(WriteBatch().put(table, "k", b"1"))
    store.write(WriteBatch().put("own", key("Email", "a"), b"1").put("own", key("ECID", "9"), b"2"))
    # keys under the namespace's hash tags that the store never writes are not tables
    store._r.zadd(f"{{{ns}|x}}:z:stray", {b"k": 0})
    store._r.zadd(f"{{{ns}|1}}:z:Not-A-Table", {b"k": 0})
    store._r.set(f"{{{ns}|1}}:done:z:abc", b"1")
    assert store.tables() == ["own"]
    for sibling, table in siblings.items():
        assert RedisStore(store._r, namespace=sibling, buckets=8).tables() == [table]


def test_staged_overlay_commits_into_redis(store: RedisStore) -> None:
    """Chunked ingestion stages writes over the store and commits them as one batch."""
    from tessera.store.staged import StagedStore

    store.write(WriteBatch().put("t", key("Email", "a"), b"1").put("t", key("Email", "c"), b"3"))
    staged = StagedStore(store)
    staged.write(WriteBatch().put("t", key("Email", "b"), b"2").delete("t", key("Email", "c")))
    assert store.get("t", key("Email", "c")) == b"3"
    staged.commit()
    assert list(store.scan("t")) == [(key("Email", "a"), b"1"), (key("Email", "b"), b"2")]


def test_tessera_index_tables_live_with_their_identity(store: RedisStore) -> None:
    ident = key("Email", "a@b.c")
    assert store.bucket_of("dataset_fragments", key("ds1", ident)) == store.bucket_of(
        "fragments", key(ident, "ds1")
    )
    assert store.bucket_of("batch_events", key("b1", ident, "000001", "ds1", "e1")) == store.bucket_of(
        "events", key(ident, "000001", "ds1", "e1")
    )
    # Scans by dataset still see every identity's index rows, in order.
    store.write(
        WriteBatch()
        .put("dataset_fragments", key("ds1", ident), b"")
        .put("fragments", key(ident, "ds1"), b"{}")
    )
    store.write(WriteBatch().put("dataset_fragments", key("ds1", "Email", "z@z"), b""))
    assert [k for k, _ in store.scan("dataset_fragments", key("ds1", ""))] == [
        key("ds1", ident),
        key("ds1", "Email", "z@z"),
    ]
