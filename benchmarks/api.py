"""REST API under load: profile lookups and streaming collection over loopback HTTP.

A real server (``tessera.api.server.run_server``, uvicorn, one process) is seeded with
``--profiles`` people and driven by a load generator in a second process: a minimal asyncio
HTTP/1.1 keep-alive client (so the client's own cost stays small on a 2-core machine).

(a) Profile lookup latency at a fixed rate (open loop: latency counts from the scheduled send
    time, so queueing is included): ``GET /data/core/ups/access/entities?schema.name=…`` for
    random people, p50/p99, next to ``GET /tessera/health`` at the same rate.
(b) Streaming throughput (closed loop, ``--stream-connections`` in flight): messages/s on
    ``POST /collection/{inletId}`` (one message per request) and on
    ``POST /collection/batch/{inletId}`` (``--batch`` messages per request), next to the
    requests/s of ``/tessera/health`` at the same concurrency; once per connection count
    (streaming requests that arrive together share one durable commit, so throughput grows with
    the number of clients sending at once). Each twice: with new events (a unique id and a random
    person per message: what streaming is for) and with the same events replayed (the store only
    checks that nothing changed; what this benchmark measured until 2026-12-03).

    python benchmarks/api.py --profiles 2000 --rate 1000 --seconds 5 [--out benchmarks/results/api.md]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from loopback import Conn, start_server  # noqa: E402  (benchmarks/ is the script's folder)

from tessera.platform import Platform  # noqa: E402
from tessera.settings import Settings  # noqa: E402

TAGS = {"unifiedProfile": ["enabled:true"], "unifiedIdentity": ["enabled:true"]}


# -- a tiny keep-alive HTTP/1.1 client -------------------------------------------------------------
async def _open_loop(
    port: int, paths: list[str], rate: float, seconds: float, connections: int
) -> list[float]:
    """Send ``rate`` GETs/s for ``seconds``; latency from each request's scheduled time (ms)."""
    total = int(rate * seconds)
    conns = [await Conn.open(port) for _ in range(connections)]
    latencies: list[float] = []
    start = time.perf_counter() + 0.05
    next_index = 0

    async def worker(conn: Conn) -> None:
        nonlocal next_index
        while next_index < total:
            i = next_index
            next_index += 1
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            status = await conn.request("GET", paths[i % len(paths)])
            if status != 200:
                raise RuntimeError(f"GET {paths[i % len(paths)]} answered {status}")
            latencies.append((time.perf_counter() - due) * 1000)

    await asyncio.gather(*(worker(c) for c in conns))
    for c in conns:
        c.writer.close()
    return latencies


FRESH_ID = b"@ID@"
PERSON = b"@PERSON@"


def fresh_body(template: bytes, messages: int, sent: int, profiles: int) -> bytes:
    """A request body of new events: ``template`` (one message with :data:`FRESH_ID` and
    :data:`PERSON` in it) with a unique event id and a random person per message; ``messages``
    of them in a batch body, or the message alone when 0."""
    one = [
        template.replace(FRESH_ID, b"%d-%d" % (sent, i)).replace(PERSON, b"%d" % random.randrange(profiles))
        for i in range(max(messages, 1))
    ]
    return b'{"messages":[' + b",".join(one) + b"]}" if messages else one[0]


async def _closed_loop(
    port: int,
    method: str,
    path: str,
    body: bytes | None,
    seconds: float,
    connections: int,
    fresh: tuple[int, int] | None = None,
) -> int:
    """Requests completed in ``seconds`` with ``connections`` always in flight. With ``fresh``
    (messages per request, profiles), ``body`` is a message template and every request carries
    new events (see :func:`fresh_body`)."""
    conns = [await Conn.open(port) for _ in range(connections)]
    done = 0
    stop = time.perf_counter() + seconds
    sent = time.time_ns()  # event ids unique across measurements too

    async def worker(conn: Conn) -> None:
        nonlocal done, sent
        while time.perf_counter() < stop:
            payload = body
            if fresh is not None and body is not None:
                sent += 1
                payload = fresh_body(body, fresh[0], sent, fresh[1])
            status = await conn.request(method, path, payload)
            if status not in (200, 207):
                raise RuntimeError(f"{method} {path} answered {status}")
            done += 1

    await asyncio.gather(*(worker(c) for c in conns))
    for c in conns:
        c.writer.close()
    return done


def _generator(task: dict[str, Any], out: Any) -> None:
    """Runs in the second process."""
    if task["kind"] == "open":
        out.put(
            asyncio.run(
                _open_loop(task["port"], task["paths"], task["rate"], task["seconds"], task["connections"])
            )
        )
    else:
        body = task["body"]
        out.put(
            asyncio.run(
                _closed_loop(
                    task["port"],
                    task["method"],
                    task["path"],
                    body,
                    task["seconds"],
                    task["connections"],
                    task.get("fresh"),
                )
            )
        )


def run_load(task: dict[str, Any]) -> Any:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_generator, args=(task, out))
    proc.start()
    result = out.get(timeout=task["seconds"] * 10 + 60)
    proc.join()
    return result


# -- setup -------------------------------------------------------------------------------------------
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
        inlet = sb.ingest.create_inlet("bench", dataset_id=web["id"])
        return {"inlet": inlet["id"], "web": web["id"], "event_schema": ids["event"]}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", type=int, default=20_000, help="people seeded before the run (the scale)")
    ap.add_argument("--rate", type=float, default=1000.0, help="lookups per second in (a)")
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each measurement")
    ap.add_argument("--connections", type=int, default=16, help="keep-alive connections of the generator")
    ap.add_argument(
        "--stream-connections",
        default="16,64",
        help="comma-separated connection counts for the streaming measurements (b), each run in turn",
    )
    ap.add_argument("--batch", type=int, default=100, help="messages per request on the batch endpoint")
    ap.add_argument("--out", type=Path, help="also write the results as Markdown here")
    args = ap.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        t0 = time.perf_counter()
        info = seed(home, args.profiles)
        seed_s = time.perf_counter() - t0
        proc, port = start_server(home)
        try:
            rng = random.Random(7)
            lookups = [
                f"/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityId=p{rng.randrange(args.profiles)}"
                f"%40example.com&entityIdNS=Email"
                for _ in range(2000)
            ]
            common = {
                "kind": "open",
                "port": port,
                "rate": args.rate,
                "seconds": args.seconds,
                "connections": args.connections,
            }
            run_load({**common, "paths": ["/tessera/health"], "seconds": 1.0})  # warm-up
            health = run_load({**common, "paths": ["/tessera/health"]})
            lookup = run_load({**common, "paths": lookups})

            ref = {"id": info["event_schema"], "contentType": "application/vnd.adobe.xed-full+json;version=1"}
            # New events: unique ids and a random person per message (see fresh_body).
            template = orjson.dumps(
                {
                    "header": {"schemaRef": ref, "datasetId": info["web"], "source": {"name": "bench"}},
                    "body": {
                        "xdmMeta": {"schemaRef": ref},
                        "xdmEntity": {
                            "_id": FRESH_ID.decode(),
                            "timestamp": "2024-01-01T12:00:00Z",
                            "eventType": "web.webpagedetails.pageViews",
                            "identityMap": {
                                "Email": [{"id": f"p{PERSON.decode()}@example.com", "primary": True}]
                            },
                        },
                    },
                }
            )
            # (connections, kind, health requests/s, single messages/s, batch messages/s)
            streaming: list[tuple[int, str, float, float, float]] = []
            replayed_single = fresh_body(template, 0, 0, args.profiles)
            replayed_batch = fresh_body(template, args.batch, 0, args.profiles)
            for connections in [int(c) for c in args.stream_connections.split(",")]:
                closed = {"kind": "closed", "port": port, "seconds": args.seconds, "connections": connections}
                health_rps = (
                    run_load({**closed, "method": "GET", "path": "/tessera/health", "body": None})
                    / args.seconds
                )
                single_path = f"/collection/{info['inlet']}"
                batch_path = f"/collection/batch/{info['inlet']}"
                fresh_single = run_load(
                    {
                        **closed,
                        "method": "POST",
                        "path": single_path,
                        "body": template,
                        "fresh": (0, args.profiles),
                    }
                )
                fresh_batch = run_load(
                    {
                        **closed,
                        "method": "POST",
                        "path": batch_path,
                        "body": template,
                        "fresh": (args.batch, args.profiles),
                    }
                )
                # The same events sent again and again, as this benchmark measured before 2026-12-03:
                # the store only checks that a replay changes nothing.
                replay_single = run_load(
                    {**closed, "method": "POST", "path": single_path, "body": replayed_single}
                )
                replay_batch = run_load(
                    {**closed, "method": "POST", "path": batch_path, "body": replayed_batch}
                )
                for kind, single, batch in (
                    ("new events", fresh_single, fresh_batch),
                    ("replayed events", replay_single, replay_batch),
                ):
                    streaming.append(
                        (
                            connections,
                            kind,
                            health_rps,
                            single / args.seconds,
                            batch * args.batch / args.seconds,
                        )
                    )
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    load_after = os.getloadavg()
    lines = [
        f"# API benchmark ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}. "
        f"Server: one uvicorn process; load generator: a second process, {args.connections} keep-alive connections "
        f"for (a), {args.stream_connections} for (b).",
        f"Scale: {args.profiles} profiles seeded in {seed_s:.1f} s; {args.seconds:g} s per measurement.",
        f"Load average (1/5/15 min) before: {' / '.join(f'{x:.1f}' for x in load_before)}, "
        f"after: {' / '.join(f'{x:.1f}' for x in load_after)} (the machine is shared: above 2 the server and "
        "the load generator get only part of a core, and the absolute figures mean little; the ratios to "
        "health under the same load are the comparable part).",
        "",
        "| measurement | value | reference in the same run | ratio |",
        "| --- | --- | --- | --- |",
        f"| profile lookup p50 at {args.rate:g}/s | {statistics.median(lookup):.2f} ms | health p50 {statistics.median(health):.2f} ms "
        f"| {statistics.median(lookup) / statistics.median(health):.2f}x |",
        f"| profile lookup p99 at {args.rate:g}/s | {pct(lookup, 99):.2f} ms | health p99 {pct(health, 99):.2f} ms "
        f"| {pct(lookup, 99) / pct(health, 99):.2f}x |",
    ]
    for connections, kind, health_rps, single_mps, batch_mps in streaming:
        lines += [
            f"| streaming {kind}, single endpoint, {connections} connections | {single_mps:,.0f} messages/s "
            f"| health {health_rps:,.0f} requests/s | {single_mps / health_rps:.2f} |",
            f"| streaming {kind}, batch endpoint ({args.batch}/request), {connections} connections "
            f"| {batch_mps:,.0f} messages/s | health {health_rps:,.0f} requests/s | {batch_mps / health_rps:.2f} |",
        ]
    lines += [
        "",
        f"Goals (issue 7): lookup p99 <= 10 ms at 1,000/s; >= 5k messages/s single, >= 30k/s batch. "
        f"Requests sent: {len(lookup)} lookups, {len(health)} health checks at the fixed rate.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
