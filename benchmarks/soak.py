"""Soak: mixed ingest + lookup + streaming segmentation at a fixed rate, for minutes, over loopback.

A real server (``tessera serve`` code path, one uvicorn process) is seeded with ``--people``
people, a streaming segment (purchases in the last day) and a batch one. A load generator in
this process then sends ``--rate`` operations per second (open loop: latency counts from each
operation's scheduled time, so queueing shows) for ``--seconds``:

* 40 % streaming profile updates (``POST /collection/{inlet}``, a changing loyalty attribute for
  one of the seeded people: the data set stays the same size, so memory should too),
* 20 % streaming purchase events (re-evaluated by the streaming segment as they land),
* 40 % profile lookups (``GET /data/core/ups/access/entities`` by e-mail).

Every ``--sample`` seconds it records the interval's throughput, p50/p99 latency, errors and the
server's resident memory (``VmRSS`` from ``/proc``). The memory verdict fits a least-squares
line through the samples after the warm-up (the first quarter of the run) and calls the growth
bounded when the line's projected growth over one more run is under ``--max-growth`` percent
of the memory at the end of warm-up. The figures sit next to a reference from the same run:
the first sampled interval (throughput and p99 late vs early).

    python benchmarks/soak.py --seconds 600 --out benchmarks/results/soak.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from loopback import Conn, start_server  # noqa: E402  (benchmarks/ is the script's folder)

from tessera.platform import Platform  # noqa: E402
from tessera.settings import Settings  # noqa: E402

PROFILE_SCHEMA_NAME = "_xdm.context.profile"


@dataclass
class Interval:
    start: float
    latencies: dict[str, list[float]] = field(
        default_factory=lambda: {"ingest": [], "event": [], "lookup": []}
    )
    errors: int = 0


@dataclass
class Sample:
    at_s: float
    ops: int
    ops_per_s: float
    p50_ms: float
    p99_ms: float
    p99_lookup_ms: float
    p99_ingest_ms: float
    errors: int
    rss_mb: float


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ``ys`` over ``xs`` (0 with fewer than two points).

    >>> round(slope([0, 1, 2], [1, 3, 5]), 6)
    2.0
    """
    if len(xs) < 2:
        return 0.0
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def seed(home: Path, people: int) -> dict[str, str]:
    with Platform(Settings(home=str(home))) as plat:
        sb = plat.sandbox()
        ids = sb.schemas.ensure_standard_schemas()
        crm = sb.datasets.create("crm", ids["profile"])
        web = sb.datasets.create("web", ids["event"])
        records = (
            {
                "identityMap": {
                    "Email": [{"id": f"p{i}@example.com", "primary": True}],
                    "CRMID": [{"id": f"C{i}"}],
                },
                "person": {"name": {"firstName": f"First{i}", "lastName": f"Last{i}"}},
            }
            for i in range(people)
        )
        sb.ingest.ingest_records(crm["id"], records)
        inlet = sb.ingest.create_inlet("soak", dataset_id=None)
        sb.segments.create(
            {
                "name": "Recent buyers",
                "schema": {"name": PROFILE_SCHEMA_NAME},
                "expression": {
                    "type": "PQL",
                    "format": "pql/text",
                    "value": 'xEvent[eventType = "commerce.purchases" and timestamp occurs < 1 days before now]'
                    ".count() > 0",
                },
                "evaluationInfo": {"batch": {"enabled": True}, "continuous": {"enabled": True}},
            }
        )
        return {
            "inlet": inlet["id"],
            "crm": crm["id"],
            "web": web["id"],
            "profile_schema": ids["profile"],
            "event_schema": ids["event"],
        }


def envelope(schema: str, dataset: str, entity: dict[str, Any]) -> dict[str, Any]:
    ref = {"id": schema, "contentType": "application/vnd.adobe.xed-full+json;version=1"}
    return {
        "header": {"schemaRef": ref, "datasetId": dataset, "source": {"name": "soak"}},
        "body": {"xdmMeta": {"schemaRef": ref}, "xdmEntity": entity},
    }


def operation(
    n: int, info: dict[str, str], people: int, replay: bool = False
) -> tuple[str, str, str, bytes | None]:
    """The ``n``-th operation: (kind, method, path, body); deterministic, spread over people.

    ``replay`` reuses event ids (``n mod people``), so stored data stops growing after one pass:
    memory growth that remains then is not explained by data."""
    who = (n * 7919) % people
    slot = n % 10
    if slot < 4:
        record = {
            "identityMap": {"Email": [{"id": f"p{who}@example.com", "primary": True}]},
            "person": {"name": {"firstName": f"First{who}", "lastName": f"Last{who}"}},
            "loyalty": {"points": n % 1000},
        }
        body = orjson.dumps(envelope(info["profile_schema"], info["crm"], record))
        return "ingest", "POST", f"/collection/{info['inlet']}", body
    if slot < 6:
        stamp = (datetime.now(UTC) - timedelta(seconds=n % 600)).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "_id": f"soak-{n % people if replay else n}",
            "timestamp": stamp,
            "eventType": "commerce.purchases",
            "identityMap": {"Email": [{"id": f"p{who}@example.com", "primary": True}]},
        }
        body = orjson.dumps(envelope(info["event_schema"], info["web"], event))
        return "event", "POST", f"/collection/{info['inlet']}", body
    path = (
        f"/data/core/ups/access/entities?schema.name={PROFILE_SCHEMA_NAME}"
        f"&entityId=p{who}%40example.com&entityIdNS=Email"
    )
    return "lookup", "GET", path, None


async def drive(
    port: int, pid: int, info: dict[str, str], args: argparse.Namespace
) -> tuple[list[Sample], int]:
    conns = [await Conn.open(port) for _ in range(args.connections)]
    total = int(args.rate * args.seconds)
    # warm-up, not measured: the first requests open the sandbox and load the identity graph
    for k in range(30):
        _, method, path, body = operation(total + k, info, args.people)
        await conns[k % len(conns)].request(method, path, body)
    t0 = time.perf_counter() + 0.1
    current = Interval(t0)
    samples: list[Sample] = []
    next_index = 0
    done = 0

    def close_interval(now: float) -> None:
        nonlocal current
        span = now - current.start
        every = [v for vs in current.latencies.values() for v in vs]
        samples.append(
            Sample(
                at_s=round(now - t0, 1),
                ops=len(every),
                ops_per_s=len(every) / span if span > 0 else 0.0,
                p50_ms=pct(every, 50),
                p99_ms=pct(every, 99),
                p99_lookup_ms=pct(current.latencies["lookup"], 99),
                p99_ingest_ms=pct(current.latencies["ingest"] + current.latencies["event"], 99),
                errors=current.errors,
                rss_mb=rss_mb(pid),
            )
        )
        current = Interval(now)

    async def worker(conn: Conn) -> None:
        nonlocal next_index, done
        while next_index < total:
            i = next_index
            next_index += 1
            due = t0 + i / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            kind, method, path, body = operation(i, info, args.people, args.events == "replayed")
            status = await conn.request(method, path, body)
            bucket = current
            if status >= 400:
                bucket.errors += 1
            bucket.latencies[kind].append((time.perf_counter() - due) * 1000)
            done += 1

    async def sampler() -> None:
        while next_index < total:
            await asyncio.sleep(args.sample)
            close_interval(time.perf_counter())
            s = samples[-1]
            print(
                f"  t={s.at_s:>6.0f}s  {s.ops_per_s:7.1f} ops/s  p99 {s.p99_ms:7.1f} ms  "
                f"errors {s.errors}  rss {s.rss_mb:7.1f} MB",
                flush=True,
            )

    sampling = asyncio.create_task(sampler())
    await asyncio.gather(*(worker(c) for c in conns))
    sampling.cancel()
    close_interval(time.perf_counter())
    for c in conns:
        c.writer.close()
    return samples, done


def verdict(samples: list[Sample], seconds: float, max_growth: float) -> tuple[str, float, float]:
    """(verdict, slope in MB/min after warm-up, projected growth in % over one more run)."""
    steady = [s for s in samples if s.at_s >= seconds / 4] or samples
    per_s = slope([s.at_s for s in steady], [s.rss_mb for s in steady])
    base = steady[0].rss_mb
    growth = 100 * per_s * seconds / base if base else 0.0
    word = "bounded" if growth < max_growth else "GROWING"
    return word, per_s * 60, growth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600.0, help="duration of the load (default 10 minutes)")
    ap.add_argument("--rate", type=float, default=60.0, help="operations per second (open loop)")
    ap.add_argument("--people", type=int, default=5000, help="people seeded before the run")
    ap.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    ap.add_argument("--connections", type=int, default=8, help="keep-alive connections")
    ap.add_argument("--max-growth", type=float, default=10.0, help="percent growth allowed per run length")
    ap.add_argument(
        "--events",
        choices=("unique", "replayed"),
        default="unique",
        help="unique event ids (stored data grows) or replayed ones (it stops growing)",
    )
    ap.add_argument(
        "--store-memory-mib",
        type=int,
        help="the server's store_memory_mib setting (SQLite page caches of all connections together)",
    )
    ap.add_argument("--out", type=Path, help="also write the results as Markdown here")
    args = ap.parse_args()
    args.sample = min(args.sample, max(1.0, args.seconds / 4))

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        t0 = time.perf_counter()
        info = seed(home, args.people)
        seed_s = time.perf_counter() - t0
        if args.store_memory_mib is not None:
            os.environ["TESSERA__STORE_MEMORY_MIB"] = str(args.store_memory_mib)
        proc, port = start_server(home)
        try:
            print(f"soak: {args.rate:g} ops/s for {args.seconds:g} s against port {port}", flush=True)
            samples, done = asyncio.run(drive(port, proc.pid, info, args))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        with Platform(Settings(home=str(home))) as plat:
            # proof the streaming segment evaluated the events: its qualified members
            members = plat.sandbox().store.count("profile_memberships")  # profiles holding one

    word, mb_per_min, growth = verdict(samples, args.seconds, args.max_growth)
    first, last = samples[0], samples[-1]
    total_errors = sum(s.errors for s in samples)
    load = os.getloadavg()
    lines = [
        f"# Soak ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {os.cpu_count()} cores, 24 GiB, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; load average at the end {load[0]:.2f} / {load[1]:.2f} / "
        f"{load[2]:.2f} (the machine is shared with other work, so latencies carry its noise).",
        f"Server: one uvicorn process over loopback; {args.people} people seeded in {seed_s:.1f} s; "
        f"{args.rate:g} operations/s for {args.seconds:g} s (40 % streaming profile updates, 20 % "
        f"streaming purchase events ({args.events} ids) evaluated by a streaming segment, 40 % profile "
        f"lookups), open loop "
        f"over {args.connections} keep-alive connections; {done} operations sent, {total_errors} errors; "
        f"{members} segment memberships written by streaming evaluation; store memory budget "
        f"{Settings.from_env().store_memory_mib} MiB.",
        "",
        "| t (s) | ops/s | p50 ms | p99 ms | p99 lookup ms | p99 ingest ms | errors | server RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in samples:
        lines.append(
            f"| {s.at_s:.0f} | {s.ops_per_s:.1f} | {s.p50_ms:.1f} | {s.p99_ms:.1f} | {s.p99_lookup_ms:.1f} "
            f"| {s.p99_ingest_ms:.1f} | {s.errors} | {s.rss_mb:.1f} |"
        )
    lines += [
        "",
        "| figure | end of run | reference: first interval | ratio |",
        "| --- | --- | --- | --- |",
        f"| throughput | {last.ops_per_s:.1f} ops/s | {first.ops_per_s:.1f} ops/s "
        f"| {last.ops_per_s / first.ops_per_s:.2f} |",
        f"| p99 latency | {last.p99_ms:.1f} ms | {first.p99_ms:.1f} ms | {last.p99_ms / first.p99_ms:.2f} |",
        f"| server RSS | {last.rss_mb:.1f} MB | {first.rss_mb:.1f} MB | {last.rss_mb / first.rss_mb:.2f} |",
        "",
        f"Memory verdict: **{word}** — after warm-up (the first quarter) RSS grows {mb_per_min:+.2f} MB/min "
        f"(least squares over {len([s for s in samples if s.at_s >= args.seconds / 4])} samples), i.e. "
        f"{growth:+.1f} % of the post-warm-up RSS over one more run of the same length "
        f"(limit {args.max_growth:g} %).",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if word != "bounded":
        sys.exit(1)


if __name__ == "__main__":
    main()
