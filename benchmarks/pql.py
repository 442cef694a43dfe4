"""PQL benchmark.

(a) Streaming: 50 mixed segments evaluated on one profile with 200 events by the compiled Python
    evaluator — µs per profile for all 50 — next to hand-written Python predicates for the same 50.
(b) Batch: the same 50 segments over N profiles in DuckDB (one generated query) next to hand-written
    DuckDB SQL for the same 50 segments, both measured in this run; the ratio is what matters.

Run: ``python benchmarks/pql.py [--profiles N] [--events-per-profile K] [--reps R]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tessera import pql  # noqa: E402
from tessera.pql.functions import as_time  # noqa: E402

NOW = datetime(2024, 5, 15, 12, 0, tzinfo=UTC)
SCHEMAS = json.loads((ROOT / "tests" / "data" / "pql" / "schemas.json").read_text())
NOW_SQL = "TIMESTAMP '2024-05-15 12:00:00'"

Py = Callable[[dict[str, Any], list[dict[str, Any]]], bool]


def _g(d: Any, *path: str) -> Any:
    for p in path:
        d = d.get(p) if isinstance(d, dict) else None
    return d


def segments() -> list[tuple[str, Py, str]]:
    """50 (pql, hand-written Python, hand-written DuckDB SQL) triples: 10 templates × 5 parameters."""
    out: list[tuple[str, Py, str]] = []
    for k in range(5):
        age, cc, s, et = (
            20 + 10 * k,
            ["US", "CA", "FR", "DE", "us"][k],
            ["jo", "an", "ma", "li", "e"][k],
            ["view", "addToCart", "purchase", "view", "purchase"][k],
        )
        sku, tag = ["PS", "LR", "AE", "PR", "XD"][k], ["a", "b", "c", "d", "e"][k]
        days, v = k + 1, 10.0 * k
        cut = NOW - timedelta(days=days)
        day_ago = NOW - timedelta(hours=24)
        out += [
            (
                f"person.age > {age}",
                lambda p, e, age=age: (_g(p, "person", "age") or -1) > age,
                f"coalesce(profile.person.age > {age}, false)",
            ),
            (
                f'homeAddress.countryCode = "{cc}"',
                lambda p, e, cc=cc: _g(p, "homeAddress", "countryCode") == cc,
                f"coalesce(profile.homeAddress.countryCode = '{cc}', false)",
            ),
            (
                f'person.name.firstName.startsWith("{s}", false)',
                lambda p, e, s=s: (_g(p, "person", "name", "firstName") or "").lower().startswith(s),
                f"coalesce(starts_with(lower(profile.person.name.firstName), '{s}'), false)",
            ),
            (
                f'xEvent[eventType = "{et}"].count() > {k}',
                lambda p, e, et=et, k=k: sum(1 for x in e if x.get("eventType") == et) > k,
                f"len(list_filter(events, lambda x: x.eventType = '{et}')) > {k}",
            ),
            (
                f'select X from xEvent where X.eventType = "purchase" and X.timestamp occurs < {days} days before now',
                lambda p, e, cut=cut: any(
                    x.get("eventType") == "purchase" and cut < (as_time(x["timestamp"]) or cut) <= NOW
                    for x in e
                ),
                f"len(list_filter(events, lambda x: x.eventType = 'purchase' and x.timestamp > {NOW_SQL} - "
                f"INTERVAL {days} DAY and x.timestamp <= {NOW_SQL})) > 0",
            ),
            (
                f'xEvent[eventType = "purchase"].sum(commerce.purchases.value) > {v}',
                lambda p, e, v=v: (
                    sum(
                        _g(x, "commerce", "purchases", "value") or 0
                        for x in e
                        if x.get("eventType") == "purchase"
                    )
                    > v
                ),
                f"coalesce(list_sum(list_transform(list_filter(events, lambda x: x.eventType = 'purchase'), "
                f"lambda x: x.commerce.purchases.value)), 0) > {v}",
            ),
            (
                f'exists E from xEvent where E.eventType = "addToCart", I from E.productListItems where I.SKU = "{sku}"',
                lambda p, e, sku=sku: any(
                    x.get("eventType") == "addToCart"
                    and any(i.get("SKU") == sku for i in x.get("productListItems") or [])
                    for x in e
                ),
                f"len(list_filter(events, lambda x: x.eventType = 'addToCart' and "
                f"len(list_filter(x.productListItems, lambda i: i.SKU = '{sku}')) > 0)) > 0",
            ),
            (
                f'chain(xEvent, timestamp, [A: WHAT(eventType = "{et}") WHEN(< 24 hours before now)])',
                lambda p, e, et=et, d=day_ago: any(
                    x.get("eventType") == et and d < (as_time(x["timestamp"]) or d) <= NOW for x in e
                ),
                f"len(list_filter(events, lambda x: x.eventType = '{et}' and x.timestamp > {NOW_SQL} - INTERVAL 24 HOUR "
                f"and x.timestamp <= {NOW_SQL})) > 0",
            ),
            (
                f'inSegment("s{k}") and person.vip',
                lambda p, e, k=k: (
                    _g(p, "segmentMembership", "ups", f"s{k}", "status") in ("realized", "existing")
                    and _g(p, "person", "vip") is True
                ),
                f"coalesce(profile.segmentMembership.ups['s{k}'].status in ('realized', 'existing'), false) "
                "and coalesce(profile.person.vip, false)",
            ),
            (
                f'"{tag}" in person.tags or _tenant.loyaltyPoints >= {age}',
                lambda p, e, tag=tag, age=age: (
                    tag in (_g(p, "person", "tags") or []) or (_g(p, "_tenant", "loyaltyPoints") or -1) >= age
                ),
                f"coalesce(list_contains(profile.person.tags, '{tag}'), false) or "
                f"coalesce(profile._tenant.loyaltyPoints >= {age}, false)",
            ),
        ]
    return out


def make_profile(
    rng: random.Random, i: int, n_events: int
) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    prof = {
        "person": {
            "age": rng.randint(15, 80),
            "vip": rng.random() < 0.3,
            "name": {"firstName": rng.choice(["John", "Anna", "Mark", "Lisa", "Eve"])},
            "tags": rng.sample(["a", "b", "c", "d", "e", "f"], rng.randint(0, 3)),
        },
        "homeAddress": {"countryCode": rng.choice(["US", "CA", "FR", "DE"])},
        "_tenant": {"loyaltyPoints": rng.randint(0, 100)},
        "segmentMembership": {
            "ups": {
                f"s{k}": {"status": rng.choice(["realized", "existing", "exited"])}
                for k in range(5)
                if rng.random() < 0.5
            }
        },
    }
    events = []
    for j in range(n_events):
        ts = NOW - timedelta(minutes=rng.randint(0, 60 * 24 * 10))
        events.append(
            {
                "_id": f"{i}-{j}",
                "timestamp": ts.isoformat().replace("+00:00", "Z"),
                "eventType": rng.choice(["view", "addToCart", "purchase"]),
                "commerce": {"purchases": {"value": rng.choice([0.0, 5.0, 12.5, 30.0])}},
                "productListItems": [
                    {"SKU": rng.choice(["PS", "LR", "AE", "PR", "XD"]), "priceTotal": 9.99, "quantity": 1}
                    for _ in range(rng.randint(0, 2))
                ],
            }
        )
    return f"p{i}", prof, events


def bench_streaming(segs: list[tuple[str, Py, str]], reps: int) -> tuple[float, float, float, float]:
    rng = random.Random(1)
    _, prof, events = make_profile(rng, 0, 200)
    fns = [pql.compile_python(pql.check(t, SCHEMAS["profile"], SCHEMAS["event"])) for t, _, _ in segs]
    hand = [h for _, h, _ in segs]
    ctx = pql.EvalContext(now=NOW)
    assert [f(prof, events, ctx) for f in fns] == [h(prof, events) for h in hand], (
        "evaluator and hand-written differ"
    )
    # A fresh list per profile evaluation, as the service passes: work the evaluator shares between
    # the 50 segments of one evaluation (the event index) is rebuilt and counted every repetition.
    # Interleaved rounds, best round of each: on shared cores a round that loses the CPU to
    # another process is slower for reasons unrelated to the code, and interleaving lets both
    # sides see the same machine. CPU time (this thread's) is reported next to wall time.
    rounds = 5
    per_round = max(1, reps // rounds)
    ours = ref = ours_cpu = ref_cpu = float("inf")
    for _ in range(rounds):
        c0, t0 = time.thread_time(), time.perf_counter()
        for _ in range(per_round):
            evs = list(events)
            for f in fns:
                f(prof, evs, ctx)
        ours = min(ours, (time.perf_counter() - t0) / per_round * 1e6)
        ours_cpu = min(ours_cpu, (time.thread_time() - c0) / per_round * 1e6)
        c0, t0 = time.thread_time(), time.perf_counter()
        for _ in range(per_round):
            evs = list(events)
            for h in hand:
                h(prof, evs)
        ref = min(ref, (time.perf_counter() - t0) / per_round * 1e6)
        ref_cpu = min(ref_cpu, (time.thread_time() - c0) / per_round * 1e6)
    return ours, ref, ours_cpu, ref_cpu


def bench_batch(segs: list[tuple[str, Py, str]], n: int, k: int) -> tuple[float, float, float]:
    rng = random.Random(2)
    con = duckdb.connect()
    t0 = time.perf_counter()
    pql.load_relation(
        con, "profiles", SCHEMAS["profile"], SCHEMAS["event"], (make_profile(rng, i, k) for i in range(n))
    )
    load = time.perf_counter() - t0
    checked = {
        f"seg{i}": pql.check(t, SCHEMAS["profile"], SCHEMAS["event"]) for i, (t, _, _) in enumerate(segs)
    }
    ours_sql = pql.compile_sql(checked, "profiles", NOW)
    hand_sql = (
        "SELECT profile_id, "
        + ", ".join(f'{s} AS "seg{i}"' for i, (_, _, s) in enumerate(segs))
        + " FROM profiles"
    )
    a = con.execute(f"SELECT * FROM ({ours_sql}) ORDER BY profile_id").fetchall()
    b = con.execute(f"SELECT * FROM ({hand_sql}) ORDER BY profile_id").fetchall()
    assert a == b, "generated and hand-written SQL disagree"

    def timed(q: str) -> float:
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            con.execute(
                f"SELECT count(*) FROM ({q}) WHERE {' OR '.join(f'seg{i}' for i in range(len(segs)))}"
            ).fetchall()
            best = min(best, time.perf_counter() - t)
        return best

    return timed(ours_sql), timed(hand_sql), load


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", type=int, default=100_000)
    ap.add_argument("--events-per-profile", type=int, default=10)
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()
    segs = segments()
    ours, ref, ours_cpu, ref_cpu = bench_streaming(segs, args.reps)
    print(
        f"(a) streaming, 50 segments, 1 profile x 200 events: {ours:,.0f} us/profile "
        f"(hand-written Python {ref:,.0f} us; ratio {ours / ref:.2f}x; goal <= 1000 us); "
        f"CPU {ours_cpu:,.0f} us vs {ref_cpu:,.0f} us ({ours_cpu / ref_cpu:.2f}x); best of 5 interleaved rounds; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    q, h, load = bench_batch(segs, args.profiles, args.events_per_profile)
    print(
        f"(b) batch, 50 segments, {args.profiles:,} profiles x {args.events_per_profile} events in DuckDB: "
        f"generated {q:.2f} s, hand-written {h:.2f} s, ratio {q / h:.2f}x (goal <= 1.5x); load {load:.1f} s"
    )


if __name__ == "__main__":
    main()
