"""The streaming flow in one process on Redis, next to the same flow on the embedded store.

What a scale-out worker pays per message besides the work itself: every store read is a network
round trip on Redis. The same demo web events are streamed into a fresh sandbox on each store, in
calls of ``--group`` messages (a worker applies a topic chunk as one such call) and one message
per call; the embedded (SQLite) figure is the reference of the same run.

Usage: ``python benchmarks/redis_flow.py [--people 300] [--messages 2000] [--group 50]``
(needs ``redis-server``: Debian ``apt-get install redis-server``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT / "src"))

from tessera.demo import generate  # noqa: E402
from tessera.platform import Platform  # noqa: E402
from tessera.scaleout.servers import start_redis  # noqa: E402
from tessera.settings import Settings  # noqa: E402


def run(settings: Settings, events: list[dict[str, Any]], group: int, singles: int) -> tuple[float, float]:
    """Messages per second in calls of ``group`` messages, then one message per call."""
    with Platform(settings) as platform:
        sb = platform.sandbox()
        schemas = sb.schemas.ensure_standard_schemas()
        ds = sb.datasets.create("web", schemas["event"])["id"]
        grouped, alone = events[:-singles], events[-singles:]
        t = time.perf_counter()
        for start in range(0, len(grouped), group):
            sb.ingest.stream(grouped[start : start + group], dataset_id=ds)
        grouped_rate = len(grouped) / (time.perf_counter() - t)
        t = time.perf_counter()
        for event in alone:
            sb.ingest.stream([event], dataset_id=ds)
        return grouped_rate, len(alone) / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--messages", type=int, default=2000, help="messages sent in groups")
    parser.add_argument(
        "--group", type=int, default=50, help="messages per call (under 100: the per-row path)"
    )
    parser.add_argument("--singles", type=int, default=600, help="messages sent one per call afterwards")
    args = parser.parse_args()
    events = list(generate(args.people, seed=5).dataset("web_events").records())
    events = events[: args.messages + args.singles]
    work = Path(tempfile.mkdtemp(prefix="tessera-redis-flow-"))
    server = start_redis(work / "redis")
    try:
        embedded = run(Settings(home=str(work / "embedded")), events, args.group, args.singles)
        redis_settings = Settings(
            home=str(work / "redis-home"), point_store="redis", redis_url=server.url, redis_namespace="bench"
        )
        on_redis = run(redis_settings, events, args.group, args.singles)
    finally:
        server.stop()
    print(
        f"# {len(events):,} demo web events over {args.people} people; calls of {args.group}, then one per call"
    )
    print(f"| store | calls of {args.group}, msg/s | one per call, msg/s |")
    print("|---|---:|---:|")
    print(f"| embedded SQLite (reference) | {embedded[0]:,.0f} | {embedded[1]:,.0f} |")
    print(f"| Redis, standalone, loopback | {on_redis[0]:,.0f} | {on_redis[1]:,.0f} |")
    print(f"| ratio Redis / embedded | {on_redis[0] / embedded[0]:.2f} | {on_redis[1] / embedded[1]:.2f} |")


if __name__ == "__main__":
    main()
