"""Ingestion throughput: batch files (JSONL, Parquet) and streaming messages, next to raw reads.

Issue 2's acceptance: batch ingestion of generated profile records and events, as JSON lines and
as Parquet, in records/s next to DuckDB reading the same file into a table (``read_json`` /
``read_parquet``) in the same run; goal >= 100k records/s and <= 5x the raw read. Streaming one
message at a time through the public Python API; goal >= 20k messages/s.

Tessera's figure is the whole pipeline (parse, normalise, validate, extract and check
identities, link the graph, store fragments/events, refresh merged profiles, commit durably).
The CPU figure (process time) is printed next to the wall-clock one because the machine is
shared: it shows what the pipeline costs when it is not waiting for a core.

    python benchmarks/ingest.py --profiles 2000 --events 10000       # quick
    python benchmarks/ingest.py --profiles 1000000 --events 5000000  # the issue's scale
"""

from __future__ import annotations

import argparse
import os
import platform as host
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from tessera import Platform
from tessera.demo import generate, write
from tessera.demo.load import LINKING_RULES

RULES_PRIORITY = [ns for ns in LINKING_RULES["priority"] if ns != "LOYALTYID"]  # a custom namespace

WEB_EVENTS_PER_PERSON = 16.6  # what the generator produces on average
RESULTS = Path(__file__).parent / "results" / "ingest.md"


def duck_read(path: Path) -> float:
    """Seconds DuckDB takes to read the file into a table (best of two)."""
    best = float("inf")
    for _ in range(2):
        con = duckdb.connect()
        reader = "read_parquet" if path.suffix == ".parquet" else "read_json"
        t = time.perf_counter()
        con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}(?)", [str(path)])
        best = min(best, time.perf_counter() - t)
        con.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profiles", type=int, default=20_000, help="CRM profile records")
    parser.add_argument("--events", type=int, default=100_000, help="web events (approximate)")
    parser.add_argument("--stream", type=int, default=5000, help="streaming messages sent one by one")
    parser.add_argument("--formats", default="jsonl,parquet")
    parser.add_argument("--no-write", action="store_true", help="print only; leave results/ingest.md alone")
    args = parser.parse_args()
    formats = args.formats.split(",")
    load_start = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="tessera-bench-"))
    t = time.perf_counter()
    write(work / "crm", args.profiles, seed=3, datasets=["crm_profiles"], formats=formats)
    write(
        work / "web",
        max(1, round(args.events / WEB_EVENTS_PER_PERSON)),
        seed=3,
        datasets=["web_events"],
        formats=formats,
    )
    print(f"generated files in {time.perf_counter() - t:.0f} s")
    rows: list[tuple[str, int, float, float, float]] = []
    for fmt in formats:
        home = work / f"home-{fmt}"
        with Platform.open(home) as platform:
            sb = platform.sandbox()
            schemas = sb.schemas.ensure_standard_schemas()
            sb.identity.set_rules(unique=["CRMID"], priority=RULES_PRIORITY)
            for name, kind, folder in (("crm_profiles", "profile", "crm"), ("web_events", "event", "web")):
                sb.datasets.create(name, schemas[kind])
                path = work / folder / f"{name}.{fmt}"
                reference = duck_read(path)
                t, c = time.perf_counter(), time.process_time()
                batch = sb.ingest.ingest_file(name, path)
                elapsed, cpu = time.perf_counter() - t, time.process_time() - c
                n = batch["metrics"]["inputRecordCount"]
                assert batch["metrics"]["failedRecordCount"] == 0, batch
                rows.append((f"{name}.{fmt}", n, elapsed, cpu, reference))
                print(f"  {name}.{fmt}: {n} records in {elapsed:.1f} s ({n / elapsed:,.0f}/s)", flush=True)
        shutil.rmtree(home, ignore_errors=True)

    with Platform.open(work / "home-stream") as platform:
        sb = platform.sandbox()
        schemas = sb.schemas.ensure_standard_schemas()
        sb.identity.set_rules(unique=["CRMID"], priority=RULES_PRIORITY)
        ds = sb.datasets.create("web", schemas["event"])
        people = max(200, round(args.stream / WEB_EVENTS_PER_PERSON) + 1)
        events = list(generate(people, seed=5).dataset("web_events").records())[: args.stream]
        t, c = time.perf_counter(), time.process_time()
        for event in events:
            result = sb.ingest.stream([event], dataset_id=ds["id"])
            assert "xactionId" in result[0], result
        stream_elapsed, stream_cpu = time.perf_counter() - t, time.process_time() - c
        t = time.perf_counter()
        for start in range(0, len(events), 500):
            sb.ingest.stream(events[start : start + 500], dataset_id=ds["id"])  # replays: idempotent
        batched_elapsed = time.perf_counter() - t
    shutil.rmtree(work, ignore_errors=True)

    load_end = os.getloadavg()[0]
    lines = [
        "# Ingestion",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; 2 cores, 24 GiB, Debian 12, Python {host.python_version()}; "
        f"load average {load_start:.1f} at start, {load_end:.1f} at end (the cores were shared).",
        f"`python benchmarks/ingest.py --profiles {args.profiles} --events {args.events} --stream {args.stream}`",
        "",
        "Batch files through `ingest_file` (the whole pipeline, durable commit), next to DuckDB reading the",
        "same file into a table. Goal (issue 2): >= 100k records/s and <= 5x the raw read.",
        "",
        "| file | records | Tessera records/s (wall) | Tessera records/s (CPU) | DuckDB read records/s | Tessera / DuckDB time |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, n, elapsed, cpu, reference in rows:
        lines.append(
            f"| {name} | {n:,} | {n / elapsed:,.0f} | {n / cpu:,.0f} | {n / reference:,.0f} | {elapsed / reference:,.0f}x |"
        )
    lines += [
        "",
        f"Streaming, one message per call through `Sandbox.ingest.stream` (durable before it returns): "
        f"**{len(events) / stream_elapsed:,.0f} messages/s** wall, {len(events) / stream_cpu:,.0f}/s CPU "
        f"({len(events):,} messages; goal >= 20k/s). 500 messages per call (replays): "
        f"{len(events) / batched_elapsed:,.0f} messages/s.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(text)


if __name__ == "__main__":
    main()
