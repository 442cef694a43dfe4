"""Ingestion throughput: batch files (JSONL, Parquet) and streaming messages, next to raw reads.

For each file the reference is DuckDB reading the same file into a table (``read_json`` /
``read_parquet``) in the same run; the figure is Tessera's full pipeline (parse, validate,
extract and check identities, link the graph, store fragments/events, refresh merged profiles,
commit) on the same rows. Streaming sends one message at a time through the public Python API.

    python benchmarks/ingest.py --people 2000            # quick
    python benchmarks/ingest.py --people 40000           # ~1M records in all
"""

from __future__ import annotations

import argparse
import platform as host
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from tessera import Platform
from tessera.demo import generate, write


def duck_read(path: Path) -> float:
    con = duckdb.connect()
    reader = "read_parquet" if path.suffix == ".parquet" else "read_json_auto"
    t = time.perf_counter()
    con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}(?)", [str(path)])
    elapsed = time.perf_counter() - t
    con.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=2000, help="generated people (CRM records = people)")
    parser.add_argument("--stream", type=int, default=5000, help="streaming messages to send one by one")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tessera-bench-"))
    write(work / "files", args.people, seed=3, datasets=["crm_profiles", "web_events"])
    rows: list[tuple[str, int, float, float]] = []
    for fmt in ("jsonl", "parquet"):
        with Platform.open(work / f"home-{fmt}") as platform:
            sb = platform.sandbox()
            schemas = sb.schemas.ensure_standard_schemas()
            sb.identity.set_rules(
                unique=["CRMID"], priority=["CRMID", "Email", "Phone", "IDFA", "GAID", "ECID"]
            )
            for name, kind in (("crm_profiles", "profile"), ("web_events", "event")):
                sb.datasets.create(name, schemas[kind])
                path = work / "files" / f"{name}.{fmt}"
                reference = duck_read(path)
                t = time.perf_counter()
                batch = sb.ingest.ingest_file(name, path)
                elapsed = time.perf_counter() - t
                n = batch["metrics"]["inputRecordCount"]
                assert batch["metrics"]["failedRecordCount"] == 0, batch
                rows.append((f"{name}.{fmt}", n, elapsed, reference))
    with Platform.open(work / "home-stream") as platform:
        sb = platform.sandbox()
        schemas = sb.schemas.ensure_standard_schemas()
        ds = sb.datasets.create("web", schemas["event"])
        events = list(generate(max(200, args.stream // 15), seed=5).dataset("web_events").records())[
            : args.stream
        ]
        t = time.perf_counter()
        for event in events:
            result = sb.ingest.stream([event], dataset_id=ds["id"])
            assert "xactionId" in result[0], result
        stream_elapsed = time.perf_counter() - t
        t = time.perf_counter()
        for start in range(0, len(events), 500):
            sb.ingest.stream(events[start : start + 500], dataset_id=ds["id"])  # replays: idempotent
        batched_elapsed = time.perf_counter() - t
    print(
        f"# ingest benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {host.machine()}, Python {host.python_version()}"
    )
    print(f"{'file':<24}{'records':>10}{'tessera rec/s':>16}{'duckdb rec/s':>16}{'ratio':>8}")
    for name, n, elapsed, reference in rows:
        print(f"{name:<24}{n:>10}{n / elapsed:>16,.0f}{n / reference:>16,.0f}{elapsed / reference:>8.1f}x")
    print(
        f"streaming, one message per call: {len(events) / stream_elapsed:,.0f} msg/s ({len(events)} messages)"
    )
    print(f"streaming, 500 messages per call (replay): {len(events) / batched_elapsed:,.0f} msg/s")


if __name__ == "__main__":
    main()
