"""Scale-out benchmark: RedisStore next to SqliteStore, stream workers 1/2/4, Spark CC next to scipy.

Every figure is printed next to a reference measured in the same run:

* (a) point store: batched writes, ``get_many`` and single ``get`` of profile-sized documents in
  SqliteStore (embedded reference), RedisStore on one server and on a 3-node cluster (loopback);
* (b) streaming: N messages published (acknowledged) to the Kafka-protocol broker, then consumed
  by 1, 2 and 4 worker processes writing idempotently into the Redis cluster (scaling curve);
* (c) bulk identity resolution: Spark connected components (local[2]) next to scipy on the same links;
* (d) the real platform streaming end to end: demo people published (acknowledged) to the topic and
  applied through the streaming flow (validation, identity stitching, merge, streaming segments)
  by 1, 2 and 4 ``tessera worker`` processes on Redis, next to the embedded in-process flow on the
  same records;
* (e) Spark next to the embedded engines on the same rows: batch segmentation of N events (the
  embedded batch query on DuckDB vs the same PQL AST as Spark SQL, one Parquet relation, answers
  compared row by row) and identity resolution over N links (scipy vs Spark connected components).

(d) and (e) append a dated section to ``benchmarks/results/scale.md``.

Usage: ``python benchmarks/scale.py [--scale 1.0] [--skip-spark] [--skip-stream] [--only-platform
[--workers 1,2,4]] [--only-spark-rows N]``; scale 1 means 20k documents, 10k stream messages,
200k links and 400 demo people.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
# This folder's profile.py would shadow the standard library's (cProfile, which pyspark imports).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT / "src"))

from tessera.store.base import PointStore, WriteBatch, key  # noqa: E402
from tessera.store.sqlite import SqliteStore  # noqa: E402


def _doc(i: int) -> bytes:
    return orjson.dumps(
        {
            "identityMap": {"Email": [{"id": f"user{i}@example.com", "primary": True}]},
            "person": {
                "name": {"firstName": f"First{i}", "lastName": f"Last{i}"},
                "birthYear": 1950 + i % 50,
            },
            "homeAddress": {"city": "Lyon", "postalCode": f"{69000 + i % 100}", "country": "FR"},
            "loyalty": {"tier": ["gold", "silver", "bronze"][i % 3], "points": i * 7 % 10000},
            "_tessera": {"score": (i * 37) % 1000 / 10, "segments": ["a", "b"] if i % 2 else ["c"]},
        }
    )


def bench_store(name: str, store: PointStore, n: int, batch: int) -> dict[str, float]:
    keys = [key("Email", f"user{i}@example.com") for i in range(n)]
    docs = [_doc(i) for i in range(n)]
    t = time.perf_counter()
    for start in range(0, n, batch):
        wb = WriteBatch()
        for i in range(start, min(n, start + batch)):
            wb.put("profiles", keys[i], docs[i])
        store.write(wb)
    write_s = time.perf_counter() - t
    rng = np.random.default_rng(0)
    sample = [keys[i] for i in rng.integers(0, n, min(n, 20_000))]
    t = time.perf_counter()
    for start in range(0, len(sample), 500):
        store.get_many("profiles", sample[start : start + 500])
    many_s = time.perf_counter() - t
    lat = []
    for k in sample[:2000]:
        t0 = time.perf_counter()
        store.get("profiles", k)
        lat.append(time.perf_counter() - t0)
    row = {
        "writes/s": n / write_s,
        "get_many keys/s": len(sample) / many_s,
        "get median us": float(np.median(lat) * 1e6),
        "get p99 us": float(np.percentile(lat, 99) * 1e6),
    }
    print(f"  {name:<28} " + "  ".join(f"{k} {v:>10,.0f}" for k, v in row.items()), flush=True)
    return row


def part_a(n: int, batch: int, tmp: Path) -> list[tuple[str, dict[str, float]]]:
    import redis
    from redis.cluster import RedisCluster

    from tessera.scaleout.servers import start_redis, start_redis_cluster
    from tessera.store.redis import RedisStore

    print(f"(a) point store: {n:,} profile documents ({len(_doc(1))} B), write batches of {batch}")
    rows = []
    sq = SqliteStore(tmp / "bench.sqlite")
    rows.append(("SqliteStore (embedded, ref)", bench_store("SqliteStore (embedded, ref)", sq, n, batch)))
    sq.close()
    server = start_redis(tmp / "r1", fsync="everysec")
    cluster = start_redis_cluster(tmp / "rc", nodes=3, fsync="everysec")
    try:
        r = RedisStore(redis.Redis.from_url(server.url), namespace="bench", buckets=256)
        rows.append(("RedisStore standalone", bench_store("RedisStore standalone", r, n, batch)))
        r.close()
        c = RedisStore(RedisCluster.from_url(cluster.url), namespace="bench", buckets=256)
        rows.append(("RedisStore cluster x3", bench_store("RedisStore cluster x3", c, n, batch)))
        one = RedisStore(RedisCluster.from_url(cluster.url), namespace="bench1", buckets=256)
        # One identity per batch: the per-profile write path of a worker (one slot, one script).
        t = time.perf_counter()
        m = min(n, 5000)
        for i in range(m):
            one.write(
                WriteBatch()
                .put("profiles", key("Email", f"u{i}"), _doc(i))
                .put("events", key("Email", f"u{i}", "e"), b"{}")
            )
        rows.append(("cluster 1-profile batches", {"writes/s": m / (time.perf_counter() - t)}))
        print(f"  {'cluster 1-profile batches':<28} writes/s {rows[-1][1]['writes/s']:>10,.0f}")
        one.close()
        c.close()
    finally:
        server.stop()
        cluster.stop()
    base = rows[0][1]
    for name, row in rows[1:3]:
        print(
            f"  ratio {name} / SqliteStore: writes {row['writes/s'] / base['writes/s']:.2f}x, "
            f"get_many {row['get_many keys/s'] / base['get_many keys/s']:.2f}x, "
            f"get latency {row['get median us'] / base['get median us']:.1f}x"
        )
    return rows


def part_b(n: int, tmp: Path) -> list[tuple[int, float, float]]:
    from redis.cluster import RedisCluster

    from tessera.scaleout.broker import start_broker
    from tessera.scaleout.servers import start_redis_cluster
    from tessera.scaleout.stream import EventPublisher, ensure_topic

    print(f"(b) streaming: {n:,} messages -> broker -> N worker processes -> RedisStore cluster x3")
    broker = start_broker()
    cluster = start_redis_cluster(tmp / "rcs", nodes=3)
    results = []
    try:
        for workers in (1, 2, 4):
            topic = f"bench-{uuid.uuid4().hex[:6]}"
            ensure_topic(broker.bootstrap, topic, 4)
            ns = f"s{workers}"
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tessera.scaleout.worker",
                        "--bootstrap",
                        broker.bootstrap,
                        "--topic",
                        topic,
                        "--group",
                        ns,
                        "--partitions",
                        "4",
                        "--worker",
                        str(w),
                        "--workers",
                        str(workers),
                        "--store",
                        f"redis+cluster://127.0.0.1:{cluster.nodes[0].port}/0",
                        "--idle-exit",
                        "3",
                        "--namespace",
                        ns,
                    ],
                    cwd=ROOT,
                    env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                    stdout=subprocess.PIPE,
                )
                for w in range(workers)
            ]
            for p in procs:  # wait until every worker is assigned and positioned
                assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
            pub = EventPublisher(broker.bootstrap, topic)
            t0 = time.perf_counter()
            for start in range(0, n, 500):
                pub.publish_many(
                    (f"user{i % 997}", _doc(i), f"{ns}-{i}") for i in range(start, min(n, start + 500))
                )
            publish_s = time.perf_counter() - t0
            pub.close()
            from tessera.store.redis import RedisStore

            store = RedisStore(RedisCluster.from_url(cluster.url), namespace=ns)
            while store.count("stream_seen", f"{ns}-") < n:
                time.sleep(0.02)
            total_s = time.perf_counter() - t0
            store.close()
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(30)
            results.append((workers, n / publish_s, n / total_s))
            print(
                f"  workers {workers}: publish (acked) {n / publish_s:>8,.0f} msg/s   "
                f"end-to-end {n / total_s:>8,.0f} msg/s",
                flush=True,
            )
    finally:
        cluster.stop()
        broker.stop()
    return results


def part_c(links: int) -> tuple[float, float, int, int]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as scipy_cc

    from tessera.scaleout import spark as tspark

    print(f"(c) identity resolution: connected components over {links:,} random links ({links:,} nodes)")
    rng = np.random.default_rng(7)
    src = rng.integers(0, links, links)
    dst = rng.integers(0, links, links)
    t = time.perf_counter()
    graph = coo_matrix((np.ones(links), (src, dst)), shape=(links, links))
    ncomp, _ = scipy_cc(graph, directed=False)
    scipy_s = time.perf_counter() - t
    session = tspark.spark_session("local[2]")
    try:
        path = tempfile.mkdtemp(prefix="tessera-links-")
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"src": src, "dst": dst}), f"{path}/links.parquet")
        df = session.read.parquet(path)
        t = time.perf_counter()
        out = tspark.connected_components(df)
        spark_components = out.select("component").distinct().count()
        spark_s = time.perf_counter() - t
    finally:
        session.stop()
    # Nodes that never occur in a link are singleton components for scipy but absent for Spark.
    present = np.unique(np.concatenate([src, dst])).size
    print(
        f"  scipy (ref) {scipy_s:.2f} s   Spark local[2] {spark_s:.1f} s   ratio {spark_s / scipy_s:,.0f}x   "
        f"components equal: {spark_components == ncomp - (links - present)}"
    )
    return scipy_s, spark_s, ncomp - (links - present), spark_components


def _platform_records(people: int) -> list[tuple[str, dict[str, object]]]:
    from tessera.demo.generator import generate

    out: list[tuple[str, dict[str, object]]] = []
    for ds in generate(people, seed=5).datasets:
        records = list(ds.records())
        if ds.name == "web_events":
            records = records[: people * 3]  # bounded: anonymous browsing dominates otherwise
        out.extend((ds.name, r) for r in records)
    return [r for _, r in sorted(enumerate(out), key=lambda p: (p[0] * 7919) % len(out))]


def _provision(sandbox: object) -> dict[str, str]:
    from tessera.demo.generator import generate
    from tessera.demo.load import DATASET_NAMES, LINKING_RULES

    sb: Any = sandbox
    schemas = sb.schemas.ensure_standard_schemas()
    sb.identity.create_namespace("LOYALTYID", "Loyalty ID", "CROSS_DEVICE", "loyalty ids")
    sb.identity.set_rules(**LINKING_RULES)
    sb.segments.create({"name": "Gold", "evaluationInfo": {"continuous": {"enabled": True}},
                        "expression": {"type": "PQL", "format": "pql/text",
                                       "value": '_tessera.loyalty.tier in ["gold", "platinum"]'}})  # fmt: skip
    out = {}
    for ds in generate(1).datasets:
        kind = "profile" if ds.xdm_class == "profile" else "event"
        out[ds.name] = sb.datasets.create(DATASET_NAMES[ds.name], schemas[kind])["id"]
    return out


def part_d(
    people: int, tmp: Path, worker_counts: tuple[int, ...] = (1, 2, 4)
) -> list[tuple[str, float, float]]:
    """End-to-end platform streaming with 1, 2 and 4 workers next to the embedded flow."""
    from tessera.platform import Platform
    from tessera.scaleout.broker import start_broker
    from tessera.scaleout.distributed import DistributedPlatform, encode_message
    from tessera.scaleout.platform_worker import APPLIED_TABLE
    from tessera.scaleout.servers import start_redis
    from tessera.scaleout.stream import EventPublisher, ensure_topic
    from tessera.settings import Settings

    records = _platform_records(people)
    n = len(records)
    print(
        f"(d) platform streaming: {people} demo people, {n:,} messages -> broker -> tessera worker x N -> Redis"
    )
    # The reference gets the chunking a worker gets from a poll of 200: records grouped by dataset.
    chunks: list[tuple[str, list[dict[str, object]]]] = []
    for start in range(0, n, 200):
        by_dataset: dict[str, list[dict[str, object]]] = {}
        for name, record in records[start : start + 200]:
            by_dataset.setdefault(name, []).append(record)
        chunks.extend(by_dataset.items())
    with Platform(Settings(home=str(tmp / "embedded"))) as embedded:
        sb = embedded.sandbox()
        ids = _provision(sb)
        t0 = time.perf_counter()
        for name, batch in chunks:
            sb.ingest.stream(batch, dataset_id=ids[name])
        ref = n / (time.perf_counter() - t0)
    print(f"  embedded, one process, same chunks: {ref:>8,.0f} msg/s", flush=True)
    results: list[tuple[str, float, float]] = [("embedded (SQLite, in process)", ref, 1.0)]
    redis_server = start_redis(tmp / "redis-d")
    broker = start_broker()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    try:
        for workers in worker_counts:
            tag = f"d{workers}-{uuid.uuid4().hex[:6]}"
            settings_file = tmp / f"{tag}.toml"
            settings_file.write_text(
                f'point_store = "redis"\nredis_url = "{redis_server.url}"\nredis_namespace = "{tag}"\n'
                f'kafka_bootstrap = "{broker.bootstrap}"\nstream_topic = "{tag}"\nstream_partitions = 4\n'
                f'stream_group = "{tag}"\n'
            )
            settings = Settings.from_env({}, settings_file=settings_file, home=str(tmp / tag))
            with DistributedPlatform(settings, role="worker") as control:
                ids = _provision(control.sandbox())
                ensure_topic(broker.bootstrap, tag, 4)
                procs = [
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-c",
                            "from tessera.cli.main import app; app()",
                            "worker",
                            "--settings",
                            str(settings_file),
                            "--home",
                            str(tmp / f"{tag}-w{w}"),
                            "--index",
                            str(w),
                            "--workers",
                            str(workers),
                            "--max-batch",
                            "200",
                        ],
                        cwd=ROOT,
                        env=env,
                        stdout=subprocess.PIPE,
                    )  # fmt: skip
                    for w in range(workers)
                ]
                for p in procs:
                    assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
                pub = EventPublisher(broker.bootstrap, tag)
                t0 = time.perf_counter()
                for start in range(0, n, 200):
                    items = []
                    for i in range(start, min(n, start + 200)):
                        name, record = records[i]
                        msg_id = f"{tag}-{i}"
                        items.append((None, encode_message("prod", ids[name], record, msg_id), msg_id))  # type: ignore[arg-type]
                    pub.publish_many(items)
                publish_s = time.perf_counter() - t0
                pub.close()
                store = control.sandbox().store
                while store.count(APPLIED_TABLE) < n:
                    time.sleep(0.05)
                total_s = time.perf_counter() - t0
                refreshes = []
                for p in procs:
                    p.terminate()
                for p in procs:
                    out, _ = p.communicate(timeout=60)
                    said = out.decode()
                    refreshes.append(
                        said.split("refreshes=")[-1].split()[0]
                        + "/"
                        + said.split("catch_ups=")[-1].split()[0]
                    )
            label = f"{workers} worker{'s' if workers > 1 else ''} (Redis, publish -> applied)"
            results.append((label, n / total_s, (n / total_s) / ref))
            print(
                f"  workers {workers}: publish (acked) {n / publish_s:>8,.0f} msg/s   end-to-end "
                f"{n / total_s:>8,.0f} msg/s   ({(n / total_s) / ref:.2f}x embedded; "
                f"re-opens/catch-ups after the other worker wrote: {', '.join(refreshes)})",
                flush=True,
            )
    finally:
        broker.stop()
        redis_server.stop()
    _write_platform_result(people, n, results)
    return results


def _machine_line() -> str:
    load = os.getloadavg()
    return (
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"{platform.platform()}, Python {platform.python_version()}; load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end (shared with other jobs)."
    )


def _append_result(lines: list[str]) -> None:
    """Append a dated section to ``benchmarks/results/scale.md`` (earlier runs stay)."""
    out = ROOT / "benchmarks" / "results" / "scale.md"
    with out.open("a") as fh:
        fh.write("\n" + "\n".join(lines) + "\n")
    print(f"  appended to {out.relative_to(ROOT)}")


def _write_platform_result(people: int, n: int, results: list[tuple[str, float, float]]) -> None:
    counts = ", ".join(label.split()[0] for label, _, _ in results[1:])
    _append_result(
        [
            f"## Scale-out (d): the real platform streaming on Redis with {counts} workers",
            "",
            _machine_line(),
            f"Command: `python benchmarks/scale.py --only-platform --scale {people / 400:g}`.",
            "",
            f"{people} demo people, {n:,} streaming messages (profiles, logins, mobile, offline, calls, web), "
            "validated, stitched (linking rules: unique CRMID), merged, one streaming segment. Workers apply "
            "through `tessera.flow.process_chunk` under the per-sandbox Redis write lock "
            "(`docs/scaling.md`), timers on; the reference is the embedded flow in one process on the same "
            "chunks. Topic of 4 partitions.",
            "",
            "| run | msg/s | ratio to embedded |",
            "|---|---|---|",
            *[f"| {label} | {rate:,.0f} | {ratio:.2f} |" for label, rate, ratio in results],
        ]
    )


# -- (e) Spark next to the embedded engines on the same rows ----------------------------------------------

E_NOW = "2026-03-01 00:00:00"
E_SEGMENTS = {
    "us": 'homeAddress.countryCode = "US"',
    "born_before_1980": "person.birthYear < 1980",
    "bought": 'xEvent[eventType = "purchase"].count() > 0',
    "active_7d": "xEvent[timestamp occurs < 7 days before now].count() >= 2",
    "spent_30d": "xEvent[timestamp occurs < 30 days before now].sum(commerce.order.priceTotal) >= 500",
    "cart_then_buy": 'chain(xEvent, timestamp, [A: WHAT(eventType = "addToCart"), B: WHAT(eventType = "purchase")])',
}
"""Attribute filters, event counts and sums in windows, and a sequence: the shapes of real audiences."""


def _standard_unions() -> tuple[dict[str, Any], dict[str, Any]]:
    from tessera.platform import Platform
    from tessera.xdm.standard import EXPERIENCE_EVENT, PROFILE

    with Platform.open(tempfile.mkdtemp(prefix="tessera-unions-")) as plat:
        sandbox = plat.sandbox()
        sandbox.schemas.ensure_standard_schemas()
        return sandbox.schemas.union(PROFILE), sandbox.schemas.union(EXPERIENCE_EVENT)


def _relation_parquet(events: int, path: Path, batch: Any) -> int:
    """Write the segmentation relation (``tessera.pql.relation``: profile_id, profile, events) of
    ``events`` generated events over ``events // 10`` profiles to ``path``; returns the profiles.

    Generated inside DuckDB (hash-based, deterministic) and parsed with the cut-down schemas of the
    query, exactly the columns the embedded batch path loads.
    """
    import duckdb

    from tessera.pql.relation import _json_structure

    profiles = max(1, events // 10)
    p_struct = orjson.dumps(_json_structure(batch.profile_schema)).decode()
    e_struct = orjson.dumps([_json_structure(batch.event_schema)]).decode()
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("CREATE MACRO h(x, n) AS (hash(x) % n)::BIGINT")  # deterministic pseudo-random
    con.execute(f"""
        CREATE TEMP TABLE ev AS
        SELECT h(i, {profiles}) AS p,
               TIMESTAMP '{E_NOW}' - to_seconds(h(i * 7 + 1, 60 * 86400)) AS ts,
               ['view', 'view', 'addToCart', 'purchase', 'emailClick'][1 + h(i * 13 + 2, 5)] AS type,
               h(i * 17 + 3, 30000) / 100.0 AS price,
               'e' || i AS id
        FROM range({events}) t(i)
    """)  # fmt: skip
    con.execute(f"""
        COPY (
          SELECT 'p' || p.p AS profile_id,
                 from_json(json_object('person', json_object('birthYear', 1950 + h(p.p * 3, 55)),
                                       'homeAddress', json_object('countryCode',
                                           ['US', 'FR', 'DE', 'GB', 'IN', 'BR'][1 + h(p.p * 5, 6)])),
                           '{p_struct}') AS profile,
                 from_json(coalesce(e.j, '[]'), '{e_struct}') AS events
          FROM range({profiles}) p(p)
          LEFT JOIN (
            SELECT p, to_json(list({{'_id': id, 'timestamp': strftime(ts, '%Y-%m-%dT%H:%M:%SZ'),
                                     'eventType': type, 'commerce': {{'order': {{'priceTotal': price}}}}}}
                                   ORDER BY ts))::VARCHAR AS j
            FROM ev GROUP BY p
          ) e ON e.p = p.p
        ) TO '{path}' (FORMAT parquet)
    """)  # fmt: skip
    con.close()
    return profiles


def part_e(rows: int, tmp: Path) -> dict[str, float]:
    """Spark batch segmentation and identity resolution next to the embedded engines on ``rows``."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as scipy_cc

    from tessera import pql
    from tessera.model import parse_time
    from tessera.scaleout import spark as tspark

    now = parse_time(E_NOW.replace(" ", "T") + "Z")
    print(f"(e) Spark local[2] next to the embedded engines: {rows:,} events / {rows:,} identity links")
    profile_schema, event_schema = _standard_unions()
    checked = {sid: pql.check(text, profile_schema, event_schema) for sid, text in E_SEGMENTS.items()}
    batch = pql.compile_batch(checked, "profiles", now)
    rel = tmp / "relation.parquet"
    t = time.perf_counter()
    profiles = _relation_parquet(rows, rel, batch)
    print(f"  relation: {profiles:,} profiles, {rows:,} events, {rel.stat().st_size / 2**20:,.0f} MiB Parquet "
          f"(generated in {time.perf_counter() - t:.0f} s)", flush=True)  # fmt: skip
    out: dict[str, float] = {"rows": rows, "profiles": profiles}

    # Embedded: DuckDB runs the compiled query over the relation (2 threads, like Spark's 2 cores).
    con = duckdb.connect()
    con.execute("SET threads = 2")
    t = time.perf_counter()
    con.execute(f"CREATE VIEW profiles AS SELECT * FROM read_parquet('{rel}')")
    con.execute(f"COPY ({batch.sql}) TO '{tmp / 'duck.parquet'}' (FORMAT parquet)")
    out["duckdb_s"] = time.perf_counter() - t
    print(
        f"  segmentation, {len(checked)} segments: DuckDB (embedded, ref) {out['duckdb_s']:.2f} s", flush=True
    )

    session = tspark.spark_session("local[2]", shuffle_partitions=8, conf={"spark.driver.memory": "4g"})
    try:
        t = time.perf_counter()
        frame = tspark.segment_batch(session, checked, str(rel), now)
        frame.write.mode("overwrite").parquet(str(tmp / "spark-seg"))
        out["spark_seg_s"] = time.perf_counter() - t
        diff = con.execute(
            f"SELECT count(*) FROM ((SELECT * FROM read_parquet('{tmp / 'duck.parquet'}') EXCEPT ALL "
            f"SELECT * FROM read_parquet('{tmp / 'spark-seg'}/*.parquet')) UNION ALL "
            f"(SELECT * FROM read_parquet('{tmp / 'spark-seg'}/*.parquet') EXCEPT ALL "
            f"SELECT * FROM read_parquet('{tmp / 'duck.parquet'}')))"
        ).fetchone()
        members = con.execute(
            "SELECT " + ", ".join(f'count(*) FILTER (WHERE "{s}")' for s in checked)
            + f" FROM read_parquet('{tmp / 'duck.parquet'}')"
        ).fetchone()  # fmt: skip
        out["seg_differences"] = float(diff[0]) if diff else -1.0
        print(
            f"  segmentation: Spark SQL {out['spark_seg_s']:.1f} s   ratio {out['spark_seg_s'] / out['duckdb_s']:.1f}x   "
            f"rows differing: {out['seg_differences']:.0f}   members per segment: "
            + ", ".join(f"{s} {m:,}" for s, m in zip(checked, members or (), strict=False)),
            flush=True,
        )  # fmt: skip

        rng = np.random.default_rng(7)
        src = rng.integers(0, rows, rows)
        dst = rng.integers(0, rows, rows)
        t = time.perf_counter()
        ncomp, _ = scipy_cc(coo_matrix((np.ones(rows), (src, dst)), shape=(rows, rows)), directed=False)
        out["scipy_s"] = time.perf_counter() - t
        links = tmp / "links"
        links.mkdir()
        pq.write_table(pa.table({"src": src, "dst": dst}), links / "links.parquet")
        t = time.perf_counter()
        labels = tspark.connected_components(session.read.parquet(str(links)))
        spark_components = labels.select("component").distinct().count()
        out["spark_cc_s"] = time.perf_counter() - t
    finally:
        session.stop()
        con.close()
    present = np.unique(np.concatenate([src, dst])).size
    equal = spark_components == ncomp - (rows - present)
    print(
        f"  identity CC: scipy (embedded bulk core, ref) {out['scipy_s']:.2f} s   Spark {out['spark_cc_s']:.1f} s   "
        f"ratio {out['spark_cc_s'] / out['scipy_s']:,.0f}x   components equal: {equal}",
        flush=True,
    )  # fmt: skip
    _append_result(
        [
            f"## Spark next to the embedded engines at {rows:,} rows",
            "",
            _machine_line(),
            f"Command: `nice -n 10 python benchmarks/scale.py --only-spark-rows {rows}`.",
            "",
            f"Segmentation: {len(checked)} segments ({', '.join(E_SEGMENTS)}) over {profiles:,} profiles "
            f"and {rows:,} events in one Parquet relation, evaluated by the query the embedded batch path "
            "runs (DuckDB, 2 threads) and by the same PQL AST rendered to Spark SQL (`segment_batch`, "
            "local[2]); each writes its memberships to Parquet. Identity: connected components over "
            f"{rows:,} random links (scipy, the core of the embedded bulk path, vs Spark large-star/small-star).",
            "",
            "| job | embedded | Spark local[2] | ratio | same answer |",
            "|---|---|---|---|---|",
            f"| batch segmentation | DuckDB {out['duckdb_s']:.2f} s | {out['spark_seg_s']:.1f} s | "
            f"{out['spark_seg_s'] / out['duckdb_s']:.1f}x | {out['seg_differences']:.0f} rows differ |",
            f"| identity resolution (CC) | scipy {out['scipy_s']:.2f} s | {out['spark_cc_s']:.1f} s | "
            f"{out['spark_cc_s'] / out['scipy_s']:,.0f}x | components equal: {equal} |",
        ]
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--skip-spark", action="store_true")
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument("--only-platform", action="store_true", help="run (d) only")
    parser.add_argument("--workers", default="1,2,4", help="worker counts of (d), comma-separated")
    parser.add_argument(
        "--only-spark-rows", type=int, default=0, help="run (e) only: Spark vs embedded on this many rows"
    )
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}")
    counts = tuple(int(w) for w in args.workers.split(","))
    if args.only_platform:
        with tempfile.TemporaryDirectory(prefix="tessera-bench-") as tmp:
            part_d(int(400 * args.scale), Path(tmp), counts)
        return
    if args.only_spark_rows:
        with tempfile.TemporaryDirectory(prefix="tessera-bench-") as tmp:
            part_e(args.only_spark_rows, Path(tmp))
        return
    with tempfile.TemporaryDirectory(prefix="tessera-bench-") as tmp:
        part_a(int(20_000 * args.scale), 500, Path(tmp))
        if not args.skip_stream:
            part_b(int(10_000 * args.scale), Path(tmp))
            part_d(int(400 * args.scale), Path(tmp), counts)
    if not args.skip_spark:
        part_c(int(200_000 * args.scale))


if __name__ == "__main__":
    main()
