"""The segment builder's live estimate: server time and peak memory at two store sizes.

``POST /tessera/ui-api/estimate`` is what the builder calls on every rule change. Its cost must not
grow with the store (issue 8: at 1.4M profiles the process grew to 19.7 GB). This benchmark keeps
a loaded data directory so the same store can be measured by two versions of the code:

    PYTHONPATH=src python benchmarks/estimate.py build --people 16000 --home /tmp/est-20k
    PYTHONPATH=src python benchmarks/estimate.py measure --home /tmp/est-20k --repeat 5

``build`` loads generated people through the batch path (as ``benchmarks/profile.py`` does);
``measure`` opens the directory, serves the app in-process (``httpx.ASGITransport``) and times
the estimate call; memory is the process's resident size before the first estimate and its peak
during the estimates (``VmHWM``, reset just before them). One JSON line per run is printed; the
figures of the issue-8 change (old code against new, 20k and 100k profiles) are in
``benchmarks/results/estimate.md``. ``TESSERA__ESTIMATE_SAMPLE_SIZE`` sets the builder's bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from tessera import Platform
from tessera.api import create_app
from tessera.demo import generate
from tessera.demo.load import LINKING_RULES

DATASETS = ("crm_profiles", "loyalty_members", "web_events", "login_events", "mobile_events")
RULES_PRIORITY = [ns for ns in LINKING_RULES["priority"] if ns != "LOYALTYID"]
QUERIES = {
    "attribute": 'homeAddress.country = "Australia"',
    "event": 'xEvent[eventType = "web.webpagedetails.pageViews"].count() > 2',
}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Reset ``VmHWM`` to the current resident size (Linux ``clear_refs`` 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def build(home: Path, people: int, event_share: float) -> None:
    demo = generate(people, seed=7)
    t = time.perf_counter()
    with Platform.open(home) as platform:
        sb = platform.sandbox()
        schemas = sb.schemas.ensure_standard_schemas()
        sb.identity.set_rules(unique=["CRMID"], priority=RULES_PRIORITY, limit=LINKING_RULES["limit"])
        for name in DATASETS:
            ds = demo.dataset(name)
            sb.datasets.create(name, schemas["profile" if ds.xdm_class == "profile" else "event"])
            records = ds.records()
            if event_share < 1.0 and ds.xdm_class != "profile":
                keep = random.Random(f"share-{name}")
                records = (r for r in records if keep.random() < event_share)
            batch = sb.ingest.ingest_records(name, records)
            print(f"  {name}: {batch['metrics']['outputRecordCount']:,}", flush=True)
        print(f"built {sb.profiles.count():,} profiles in {time.perf_counter() - t:.0f} s", flush=True)


async def _measure(platform: Platform, pql: str, repeat: int) -> dict[str, Any]:
    app = create_app(platform)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=3600) as client:
        await client.get("/tessera/health")
        rss_before = _status_kib("VmRSS")
        reset = _reset_peak()
        times: list[float] = []
        body: dict[str, Any] = {}
        for _ in range(repeat):
            t = time.perf_counter()
            res = await client.post("/tessera/ui-api/estimate", json={"pql": pql})
            times.append((time.perf_counter() - t) * 1000)
            res.raise_for_status()
            body = res.json()
        peak = _status_kib("VmHWM")  # without the reset: the peak since the process started
    est = body["estimate"]
    return {
        "firstMs": round(times[0], 1),
        "medianMs": round(statistics.median(times[1:] or times), 1),
        "rssBeforeMiB": round(rss_before / 1024),
        "peakMiB": round(peak / 1024),
        "growthMiB": round((peak - rss_before) / 1024),
        "peakReset": reset,
        **{
            k: est.get(k)
            for k in ("estimatedSize", "confidenceIntervalBounds", "profilesReadSoFar", "totalRows")
        },
    }


def measure(home: Path, query: str, repeat: int, label: str) -> None:
    t = time.perf_counter()
    with Platform.open(home) as platform:
        platform.sandbox()  # opens the store (and any store-format migration) and loads the graph
        open_s = time.perf_counter() - t
        result = asyncio.run(_measure(platform, QUERIES.get(query, query), repeat))
    print(
        json.dumps({"label": label, "home": str(home), "query": query, "openS": round(open_s, 1), **result})
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="load generated people into --home")
    b.add_argument("--home", type=Path, required=True)
    b.add_argument("--people", type=int, default=16_000, help="generated customers (x1.25 profiles)")
    b.add_argument("--event-share", type=float, default=0.59, help="share of generated events kept")
    m = sub.add_parser("measure", help="time the estimate over a loaded --home")
    m.add_argument("--home", type=Path, required=True)
    m.add_argument("--query", default="attribute", help=f"one of {sorted(QUERIES)} or a PQL expression")
    m.add_argument("--repeat", type=int, default=5)
    m.add_argument("--label", default="")
    args = parser.parse_args()
    if args.cmd == "build":
        build(args.home, args.people, args.event_share)
    else:
        measure(args.home, args.query, args.repeat, args.label or os.environ.get("LABEL", ""))


if __name__ == "__main__":
    main()
