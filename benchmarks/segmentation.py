"""Segmentation benchmark: (a) batch job, (b) streaming latency and throughput, (c) estimate latency.

Each figure is printed next to a reference measured in the same run:

(a) the service's batch path (relation built from the rows, one DuckDB scan for all segments,
    transitions) against hand-written DuckDB SQL for the same segments over flat tables;
(b) streaming ingestion of single events through the real ingestion flow with N continuous
    segments, against the same ingestion with no segments;
(c) preview/estimate of one expression over all profiles, against a plain COUNT in DuckDB.

Segments come from templates (country, age, event counts and sums in windows, a two-step
sequence). With ``--engine pql`` they are written in PQL and compiled by ``tessera.pql``;
the default ``template`` engine evaluates the same templates with Python predicates and
generated DuckDB SQL (useful before the PQL compiler is available).

Usage: ``python benchmarks/segmentation.py [--profiles 20000] [--events-per-profile 10]
[--segments 50] [--stream-events 2000] [--stream-segments 100] [--engine template|pql]``.
"""

from __future__ import annotations

import argparse
import platform as host
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from tessera.model import format_time, parse_time  # noqa: E402
from tessera.segments.engine import Compiled, Verdict, time_dependence  # noqa: E402

NOW = datetime(2026, 3, 1, tzinfo=UTC)
BASE_YEAR = 2026
COUNTRIES = ["US", "FR", "DE", "GB", "IN", "BR"]
TYPES = ["view", "addToCart", "purchase", "emailClick"]
_SCRATCH: list[tempfile.TemporaryDirectory[str]] = []


def scratch_dir() -> Path:
    """A temporary folder, removed when the benchmark exits (its stores take GBs at 1M profiles)."""
    folder = tempfile.TemporaryDirectory(prefix="tessera-seg-bench-")
    _SCRATCH.append(folder)
    return Path(folder.name)


@dataclass(frozen=True)
class Template:
    kind: str
    a: str
    n: float
    days: int

    def pql(self) -> str:
        if self.kind == "country":
            return f'homeAddress.countryCode = "{self.a}"'
        if self.kind == "age":
            return f"person.birthYear < {BASE_YEAR - int(self.n)}"
        if self.kind == "count":
            return (
                f'xEvent[eventType = "{self.a}" and timestamp occurs < {self.days} days before now]'
                f".count() >= {int(self.n)}"
            )
        if self.kind == "sum":
            return f"xEvent[timestamp occurs < {self.days} days before now].sum(commerce.order.priceTotal) >= {self.n}"
        hours = 24 * self.days  # B after A and A in the window puts B in the window too
        return (
            f'chain(xEvent, timestamp, [A: WHAT(eventType = "addToCart") WHEN(< {hours} hours before now), '
            f'B: WHAT(eventType = "{self.a}") WHEN(< {hours} hours before now)])'
        )

    def sql(self) -> str:
        win = f"x.ts > $now - INTERVAL {self.days} DAY AND x.ts <= $now"
        if self.kind == "country":
            return f"country = '{self.a}'"
        if self.kind == "age":
            return f"coalesce(age > {int(self.n)}, false)"
        if self.kind == "count":
            return f"len(list_filter(events, lambda x: x.type = '{self.a}' AND {win})) >= {int(self.n)}"
        if self.kind == "sum":
            return f"coalesce(list_sum(list_transform(list_filter(events, lambda x: {win}), lambda x: x.price)), 0) >= {self.n}"
        return (
            f"len(list_filter(events, lambda c: c.type = 'addToCart' AND c.ts > $now - INTERVAL {self.days} DAY "
            f"AND len(list_filter(events, lambda b: b.type = '{self.a}' AND b.ts > c.ts AND b.ts <= $now)) > 0)) > 0"
        )

    def flat_sql(self, name: str) -> str:
        """Hand-written reference: one aggregate per segment over flat tables p and e."""
        win = f"e.ts > $now - INTERVAL {self.days} DAY AND e.ts <= $now"
        if self.kind == "country":
            return f"SELECT profile_id FROM p WHERE country = '{self.a}'"
        if self.kind == "age":
            return f"SELECT profile_id FROM p WHERE age > {int(self.n)}"
        if self.kind == "count":
            return (
                f"SELECT profile_id FROM e WHERE type = '{self.a}' AND {win} GROUP BY profile_id "
                f"HAVING count(*) >= {int(self.n)}"
            )
        if self.kind == "sum":
            return f"SELECT profile_id FROM e WHERE {win} GROUP BY profile_id HAVING sum(price) >= {self.n}"
        return (
            f"SELECT DISTINCT c.profile_id FROM e c JOIN e b ON b.profile_id = c.profile_id WHERE c.type = "
            f"'addToCart' AND c.ts > $now - INTERVAL {self.days} DAY AND b.type = '{self.a}' AND b.ts > c.ts "
            f"AND b.ts <= $now"
        )

    def predicate(self, p: Mapping[str, Any], ev: Sequence[Mapping[str, Any]], now: datetime) -> bool:
        if self.kind == "country":
            return (p.get("homeAddress") or {}).get("countryCode") == self.a
        if self.kind == "age":
            born = (p.get("person") or {}).get("birthYear")
            return born is not None and BASE_YEAR - born > self.n
        start = now - timedelta(days=self.days)
        if self.kind == "count":
            return sum(1 for e in ev if e["eventType"] == self.a and start < e["_t"] <= now) >= self.n
        if self.kind == "sum":
            return sum(price(e) for e in ev if start < e["_t"] <= now) >= self.n
        carts = [e["_t"] for e in ev if e["eventType"] == "addToCart" and start < e["_t"] <= now]
        return any(b["eventType"] == self.a and c < b["_t"] <= now for c in carts for b in ev)


def _age(p: Mapping[str, Any]) -> int | None:
    born = (p.get("person") or {}).get("birthYear")
    return None if born is None else BASE_YEAR - int(born)


def price(e: Mapping[str, Any]) -> float:
    return float(((e.get("commerce") or {}).get("order") or {}).get("priceTotal") or 0.0)


def templates(count: int, seed: int = 1) -> list[Template]:
    rnd = random.Random(seed)
    kinds = ["country", "age", "count", "sum", "chain"]
    out = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        out.append(
            Template(
                kind,
                rnd.choice(COUNTRIES) if kind == "country" else rnd.choice(TYPES),
                rnd.choice([1, 2, 3]) if kind == "count" else rnd.choice([20, 40, 60, 100]),
                rnd.choice([1, 3, 7, 30]),
            )
        )
    return out


def _with_times(ev: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parse timestamps once per evaluation (the event dicts are fresh copies from the store)."""
    for e in ev:
        if "_t" not in e:
            e["_t"] = parse_time(e["timestamp"])
    return ev


class TemplateEngine:
    """Engine over :class:`Template` texts: Python predicates and generated DuckDB list SQL."""

    def __init__(self, temps: Sequence[Template]) -> None:
        self.by_text = {t.pql(): t for t in temps}

    def compile(self, fmt: str, value: str, *, boolean: bool = True) -> Compiled:
        t = self.by_text[value]
        windows, calendar = time_dependence(value)

        def predicate(
            p: dict[str, Any], ev: list[dict[str, Any]], now: datetime, m: Mapping[str, bool]
        ) -> bool:
            return t.predicate(p, _with_times(ev), now)

        return Compiled(
            text=value,
            predicate=predicate,
            checked=t.sql(),
            windows=windows,
            calendar=calendar,
            continuous=Verdict(True),
            synchronous=Verdict(True),
        )

    def batch_query(
        self,
        con: Any,
        table: str,
        rows: Sequence[tuple[str, dict[str, Any], list[dict[str, Any]]]],
        segments: Mapping[str, Compiled],
        now: datetime,
        memberships: Mapping[str, set[str]],
    ) -> Iterable[tuple[str, dict[str, bool]]]:
        con.register(table, relation(rows))
        cols = ", ".join(f'({c.checked}) AS "{sid}"' for sid, c in segments.items())
        cur = con.execute(f"SELECT profile_id, {cols} FROM {table}", {"now": now})
        names = list(segments)
        while batch := cur.fetchmany(50_000):
            for r in batch:
                yield r[0], dict(zip(names, r[1:], strict=True))


def relation(rows: Sequence[tuple[str, dict[str, Any], list[dict[str, Any]]]]) -> pa.Table:
    ev_type = pa.list_(
        pa.struct([("type", pa.string()), ("ts", pa.timestamp("us", tz="UTC")), ("price", pa.float64())])
    )
    return pa.table(
        {
            "profile_id": pa.array([r[0] for r in rows], pa.string()),
            "country": pa.array(
                [(r[1].get("homeAddress") or {}).get("countryCode") for r in rows], pa.string()
            ),
            "age": pa.array([_age(r[1]) for r in rows], pa.int64()),
            "events": pa.array(
                [
                    [
                        {
                            "type": e["eventType"],
                            "ts": e.get("_t") or parse_time(e["timestamp"]),
                            "price": price(e),
                        }
                        for e in r[2]
                    ]
                    for r in rows
                ],
                ev_type,
            ),
        }
    )


def generate(
    profiles: int, per_profile: int, seed: int = 7
) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    rnd = random.Random(seed)
    rows = []
    for i in range(profiles):
        attrs = {
            "homeAddress": {"countryCode": rnd.choice(COUNTRIES)},
            "person": {"birthYear": BASE_YEAR - rnd.randint(16, 90)},
        }
        evs = []
        for j in range(rnd.randint(0, 2 * per_profile)):
            t = NOW - timedelta(seconds=rnd.randint(0, 40 * 86400))
            evs.append(
                {
                    "_id": f"{i}-{j}",
                    "eventType": rnd.choice(TYPES),
                    "timestamp": format_time(t),
                    "_t": t,
                    "commerce": {"order": {"priceTotal": float(rnd.randint(0, 50))}},
                }
            )
        evs.sort(key=lambda e: e["_t"])
        rows.append((f"p{i:08d}", attrs, evs))
    return rows


def standard_unions() -> tuple[dict[str, Any], dict[str, Any]]:
    """The standard profile and event union schemas (what PQL is checked and compiled against)."""
    from tessera.platform import Platform
    from tessera.xdm.standard import EXPERIENCE_EVENT, PROFILE

    with Platform.open(scratch_dir()) as plat:
        sandbox = plat.sandbox()
        sandbox.schemas.ensure_standard_schemas()
        return sandbox.schemas.union(PROFILE), sandbox.schemas.union(EXPERIENCE_EVENT)


# -- (a) batch -------------------------------------------------------------------------------------------


def bench_batch(
    rows: list[tuple[str, dict[str, Any], list[dict[str, Any]]]],
    temps: list[Template],
    engine_name: str,
    from_store: bool = False,
) -> dict[str, float]:
    from tessera.segments.definitions import Definitions
    from tessera.segments.service import SegmentService
    from tessera.store import MemoryStore

    engine: Any = TemplateEngine(temps)
    if engine_name == "pql":
        from tessera.segments import PqlEngine

        union = standard_unions()
        engine = PqlEngine(lambda: union)
    store = MemoryStore()
    defs = Definitions(store, engine)
    docs = [
        defs.create(
            {"name": f"s{i}", "expression": {"format": "pql/text", "value": t.pql()}}, seg_id=f"s{i:02d}"
        )
        for i, t in enumerate(temps)
    ]

    class _Surface:  # the service only needs the definitions for evaluate_batch
        def __init__(self) -> None:
            self.store = store
            self.name = "bench"
            self.folder = scratch_dir()

    svc = SegmentService.__new__(SegmentService)
    svc._sandbox = _Surface()  # type: ignore[assignment]
    svc.engine = engine
    svc.definitions = defs
    t0 = time.perf_counter()
    result = svc.evaluate_batch(docs, rows, NOW)
    ours = time.perf_counter() - t0
    stored_time = None
    if from_store:
        # What a batch job reads: the stored documents of a SQLite store, in the profile
        # service's layout (written here directly; ingestion is measured elsewhere).
        stored = _stored_profiles(rows)
        t0 = time.perf_counter()
        from_docs = svc.evaluate_batch(docs, stored, NOW)
        stored_time = time.perf_counter() - t0
        if from_docs != result:
            raise SystemExit("batch results from the stored documents differ from those from rows")

    # reference: hand-written SQL, flat tables loaded once (load time excluded)
    con = duckdb.connect()
    p = pa.table(
        {
            "profile_id": [r[0] for r in rows],
            "country": [r[1]["homeAddress"]["countryCode"] for r in rows],
            "age": [_age(r[1]) for r in rows],
        }
    )
    flat = [(r[0], e["eventType"], e["_t"], price(e)) for r in rows for e in r[2]]
    e = pa.table(
        {
            "profile_id": [f[0] for f in flat],
            "type": [f[1] for f in flat],
            "ts": pa.array([f[2] for f in flat], pa.timestamp("us", tz="UTC")),
            "price": [f[3] for f in flat],
        }
    )
    con.register("p_arrow", p)
    con.register("e_arrow", e)
    con.execute("CREATE TABLE p AS SELECT * FROM p_arrow")
    con.execute("CREATE TABLE e AS SELECT * FROM e_arrow")
    t0 = time.perf_counter()
    ref: dict[str, int] = {}
    for i, t in enumerate(temps):
        sql = f"SELECT count(*) FROM ({t.flat_sql(f's{i}')})"
        params = {"now": NOW} if "$now" in sql else None
        ref[f"s{i:02d}"] = con.execute(sql, params).fetchone()[0]  # type: ignore[index]
    hand = time.perf_counter() - t0
    mismatch = [sid for sid, n in ref.items() if n != len(result[sid])]
    if mismatch:
        raise SystemExit(f"batch results differ from the hand-written SQL for {mismatch}")
    out = {"ours": ours, "hand": hand, "pairs": len(rows) * len(temps)}
    if stored_time is not None:
        out["stored"] = stored_time
    return out


def bench_job(
    rows: list[tuple[str, dict[str, Any], list[dict[str, Any]]]], temps: list[Template]
) -> dict[str, Any]:
    """A whole batch job on a real sandbox: read the stored documents, evaluate every segment,
    write the memberships and their transitions onto the profiles (what ``POST /segment/jobs``
    does). The documents are written into the store in the profile service's layout (ingestion
    is measured by its own benchmark); every profile has one CRMID identity."""
    from tessera.identity import Identity
    from tessera.identity.service import singleton_id
    from tessera.platform import Platform
    from tessera.profile.service import EVENTS, PROFILES, id_key
    from tessera.store import WriteBatch, key

    with Platform.open(scratch_dir()) as platform:
        sandbox = platform.sandbox()
        sandbox.schemas.ensure_standard_schemas()
        ids = {}
        for start in range(0, len(rows), 5_000):
            wb = WriteBatch()
            for pid, attrs, evs in rows[start : start + 5_000]:
                ident = Identity("CRMID", pid)
                ids[pid] = profile_id = singleton_id(ident)
                primary = {"namespace": "CRMID", "id": pid}
                wb.put_json(
                    PROFILES, profile_id, {"profileId": profile_id, "attributes": attrs, "primary": primary}
                )
                for e in evs:
                    record = {k: v for k, v in e.items() if k != "_t"}
                    ms = int(e["_t"].timestamp() * 1000)
                    body = {"record": record, "dataset": "web"}
                    wb.put_json(EVENTS, key(id_key(ident), f"{ms:015d}", "web", e["_id"]), body)
            sandbox.store.write(wb)
        for i, t in enumerate(temps):
            sandbox.segments.create(
                {
                    "name": f"s{i}",
                    "expression": {"type": "PQL", "format": "pql/text", "value": t.pql()},
                    "evaluationInfo": {"batch": {"enabled": True}, "continuous": {"enabled": False}},
                },
                seg_id=f"s{i:02d}",
            )
        t0 = time.perf_counter()
        python_rows = len(sandbox.segments.rows(NOW))  # how jobs read profiles before 2026-12-02
        read_rows = time.perf_counter() - t0
        assert python_rows == len(rows)
        t0 = time.perf_counter()
        job = sandbox.segments.run_job(None, now=NOW)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        sandbox.segments.run_job(None, now=NOW)  # every membership moves from realized to existing
        again = time.perf_counter() - t0
        t0 = time.perf_counter()
        sandbox.segments.run_job(None, now=NOW)  # nothing changes: the steady daily job
        steady = time.perf_counter() - t0
        counts = job["metrics"]["segmentedProfileCounter"]
    return {
        "first": first,
        "again": again,
        "steady": steady,
        "read_rows": read_rows,
        "counts": counts,
        "ids": ids,
    }


def _stored_profiles(rows: list[tuple[str, dict[str, Any], list[dict[str, Any]]]]) -> Any:
    """``rows`` written to a SQLite store in the profile service's layout, as a batch job's input
    (one CRMID identity per profile)."""
    from tessera.identity import Identity
    from tessera.profile.service import EVENTS, PROFILES, ProfileService, id_key
    from tessera.segments.stored_profiles import StoredProfiles
    from tessera.store import WriteBatch, key
    from tessera.store.sqlite import SqliteStore

    class _Identity:
        def members(self, pid: str, store: Any = None) -> list[Identity]:
            return [Identity("CRMID", pid)]

        def member_columns(self, profile_ids: Iterable[str] = ()) -> tuple[list[str], list[str], list[str]]:
            pids = list(profile_ids)  # every profile is one CRMID with the profile's id as value
            return pids, ["CRMID"] * len(pids), pids

    class _Sandbox:
        def __init__(self) -> None:
            self.store = SqliteStore(scratch_dir() / "point.sqlite")
            self.identity = _Identity()
            self.profiles = ProfileService(self)  # type: ignore[arg-type]

    sandbox = _Sandbox()
    for start in range(0, len(rows), 5_000):
        wb = WriteBatch()
        for pid, attrs, evs in rows[start : start + 5_000]:
            owner = id_key(Identity("CRMID", pid))
            wb.put_json(
                PROFILES,
                pid,
                {"profileId": pid, "attributes": attrs, "primary": {"namespace": "CRMID", "id": pid}},
            )
            for e in evs:
                record = {k: v for k, v in e.items() if k != "_t"}
                ms = int(e["_t"].timestamp() * 1000)
                wb.put_json(
                    EVENTS, key(owner, f"{ms:015d}", "web", e["_id"]), {"record": record, "dataset": "web"}
                )
        sandbox.store.write(wb)
    return StoredProfiles(sandbox, lambda: iter(rows))  # type: ignore[arg-type]


# -- (b) streaming ---------------------------------------------------------------------------------------


def bench_streaming(
    n_events: int, n_segments: int, profiles: int, engine_name: str, history: int = 0
) -> dict[str, Any]:
    from tessera.platform import Platform
    from tessera.segments import SegmentService

    # streaming-eligible forms (spec §6.1): profile attributes and chains with windows of 24 hours
    temps = [
        Template(t.kind, t.a, t.n, 1)
        for t in templates(n_segments * 3, seed=3)
        if t.kind in ("country", "chain")
    ]
    temps = temps[:n_segments]
    out: dict[str, Any] = {}
    # Streaming evaluates at the time of ingestion, so the streamed events are from the last
    # hours (the segments' 24-hour windows see them and memberships change) and the history
    # before them.
    recent = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    for label, with_segments in (("without segments", False), ("with segments", True)):
        with Platform.open(scratch_dir()) as plat:
            sb = plat.sandbox()
            schemas = sb.schemas.ensure_standard_schemas()
            web = sb.datasets.create("Web", schemas["event"])
            eval_times: list[float] = []
            changed: list[int] = []
            if with_segments:
                svc = (
                    SegmentService(sb) if engine_name == "pql" else SegmentService(sb, TemplateEngine(temps))
                )
                sb.segments = svc
                for i, t in enumerate(temps):
                    svc.create(
                        {
                            "name": f"s{i}",
                            "expression": {"format": "pql/text", "value": t.pql()},
                            "evaluationInfo": {"continuous": {"enabled": True}},
                        }
                    )
                inner = svc.on_change

                def timed(
                    store: Any,
                    pids: Any,
                    now: datetime,
                    inner: Any = inner,
                    times: list[float] = eval_times,
                    changes: list[int] = changed,
                ) -> Any:
                    t0 = time.perf_counter()
                    try:
                        made = inner(store, pids, now)
                        changes.append(len(made))
                        return made
                    finally:
                        times.append(time.perf_counter() - t0)

                svc.on_change = timed  # type: ignore[method-assign]
            else:
                sb.segments = None
            rnd = random.Random(11)
            if history:  # earlier events of every person, spread over four months, before timing
                old = [
                    {
                        "_id": f"h{i}",
                        "timestamp": format_time(recent - timedelta(minutes=rnd.randrange(1, 120 * 24 * 60))),
                        "eventType": rnd.choice(TYPES),
                        "identityMap": {"ECID": [{"id": f"{i % profiles:038d}", "primary": True}]},
                    }
                    for i in range(history * profiles)
                ]
                for k in range(0, len(old), 1000):
                    sb.ingest.stream(old[k : k + 1000], dataset_id=web["id"])
                del eval_times[:], changed[:]
            lat: list[float] = []
            start = time.perf_counter()
            for i in range(n_events):
                ecid = f"{rnd.randrange(profiles):038d}"
                rec = {
                    "_id": f"e{i}",
                    "timestamp": format_time(recent + timedelta(seconds=i)),
                    "eventType": rnd.choice(TYPES),
                    "identityMap": {"ECID": [{"id": ecid, "primary": True}]},
                }
                t0 = time.perf_counter()
                res = sb.ingest.stream([rec], dataset_id=web["id"])
                lat.append(time.perf_counter() - t0)
                if "xactionId" not in res[0]:
                    raise SystemExit(f"stream refused an event: {res[0]}")
            total = time.perf_counter() - start
            # throughput with the events of a request grouped (100 per call, one commit each)
            recs = []
            for i in range(n_events):
                ecid = f"{rnd.randrange(profiles):038d}"
                recs.append(
                    {
                        "_id": f"b{i}",
                        "timestamp": format_time(recent + timedelta(seconds=n_events + i)),
                        "eventType": rnd.choice(TYPES),
                        "identityMap": {"ECID": [{"id": ecid, "primary": True}]},
                    }
                )
            single_evals = list(eval_times)
            del eval_times[:]
            t0 = time.perf_counter()
            for k in range(0, n_events, 100):
                sb.ingest.stream(recs[k : k + 100], dataset_id=web["id"])
            batched = n_events / (time.perf_counter() - t0)
            grouped_evals = list(eval_times)
            eval_times[:] = single_evals
            out[label] = {
                "eps": n_events / total,
                "p50": _pct(lat, 50),
                "p99": _pct(lat, 99),
                "batched": batched,
                "eval_p50": _pct(eval_times, 50) if eval_times else 0.0,
                "eval_p99": _pct(eval_times, 99) if eval_times else 0.0,
                # segment evaluation alone (on_change), events per second of its time
                "eval_eps": n_events / sum(eval_times) if eval_times else 0.0,
                "eval_eps_grouped": n_events / sum(grouped_evals) if grouped_evals else 0.0,
                "changes": sum(changed),
            }
    return out


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) >= 2 else values[0]


# -- (c) estimate ----------------------------------------------------------------------------------------


def bench_estimate(rows: list[tuple[str, dict[str, Any], list[dict[str, Any]]]]) -> dict[str, float]:
    from tessera.segments import estimate_size

    temp = Template("count", "purchase", 2, 7)
    con = duckdb.connect()
    con.register("r", relation(rows))
    t0 = time.perf_counter()
    k = con.execute(f"SELECT count(*) FROM r WHERE {temp.sql()}", {"now": NOW}).fetchone()[0]  # type: ignore[index]
    plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    est = estimate_size(len(rows), len(rows), int(k))
    cur = con.execute(f"SELECT profile_id FROM r WHERE {temp.sql()} LIMIT 100", {"now": NOW}).fetchall()
    ours = time.perf_counter() - t0 + plain
    assert est["estimatedSize"] == k and len(cur) <= 100
    return {"ours": ours, "plain": plain}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", type=int, default=20_000)
    ap.add_argument("--events-per-profile", type=int, default=10)
    ap.add_argument("--segments", type=int, default=50)
    ap.add_argument("--stream-events", type=int, default=2_000)
    ap.add_argument("--stream-segments", type=int, default=100)
    ap.add_argument(
        "--stream-history",
        type=int,
        default=0,
        help="events each person already has (spread over four months) before the streamed ones",
    )
    ap.add_argument(
        "--stream-profiles",
        type=int,
        default=None,
        help="people the streamed events are spread over (default: a quarter of --stream-events, so "
        "most events reach a profile seen before; a larger number makes most of them new visitors)",
    )
    ap.add_argument("--engine", choices=["template", "pql"], default="template")
    ap.add_argument("--parts", default="abc", help="which parts to run, e.g. `b` for streaming only")
    args = ap.parse_args(argv)
    print(
        f"# segmentation benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {host.python_version()}, "
        f"{host.system()} {host.machine()}, engine={args.engine}"
    )
    t0 = time.perf_counter()
    rows = generate(args.profiles, args.events_per_profile)
    n_events = sum(len(r[2]) for r in rows)
    print(
        f"data: {len(rows):,} profiles, {n_events:,} events (generated in {time.perf_counter() - t0:.1f} s)"
    )

    if "a" in args.parts:
        a = bench_batch(rows, templates(args.segments), args.engine, from_store=args.engine == "pql")
        print(
            f"(a) batch, {args.segments} segments: {a['ours']:.2f} s, {a['pairs'] / a['ours']:,.0f} "
            f"profile·segments/s | hand-written DuckDB SQL {a['hand']:.2f} s | ratio {a['ours'] / a['hand']:.2f}x"
        )
        if "stored" in a:
            print(
                f"(a) batch from the stored documents (what a job reads): {a['stored']:.2f} s, "
                f"{a['pairs'] / a['stored']:,.0f} profile·segments/s | ratio {a['stored'] / a['hand']:.2f}x"
            )
    if "j" in args.parts:
        j = bench_job(rows, templates(args.segments))
        print(
            f"(a) whole batch job on a real sandbox ({args.segments} segments, memberships written): "
            f"first run {j['first']:.2f} s, second (realized -> existing) {j['again']:.2f} s, "
            f"third (no changes) {j['steady']:.2f} s; {sum(j['counts'].values()):,} memberships | "
            f"reading every profile as Python rows (the jobs' input before) {j['read_rows']:.2f} s"
        )
    if "b" in args.parts:
        _print_streaming(args)
    if "c" in args.parts:
        c = bench_estimate(rows)
        print(
            f"(c) estimate + 100-profile sample over {len(rows):,} profiles: {c['ours'] * 1e3:.1f} ms "
            f"| plain COUNT {c['plain'] * 1e3:.1f} ms | ratio {c['ours'] / c['plain']:.2f}x"
        )


def _print_streaming(args: argparse.Namespace) -> None:

    people = args.stream_profiles or max(1, args.stream_events // 4)
    b = bench_streaming(args.stream_events, args.stream_segments, people, args.engine, args.stream_history)
    w, wo = b["with segments"], b["without segments"]
    print(
        f"(b) streaming, {args.stream_segments} continuous segments, {args.stream_events:,} single-event calls "
        f"over {people:,} people"
        + (f" with {args.stream_history} earlier events each:" if args.stream_history else ":")
    )
    print(
        f"    event → committed membership p50 {w['p50'] * 1e3:.2f} ms, p99 {w['p99'] * 1e3:.2f} ms, "
        f"{w['eps']:,.0f} events/s | ingestion without segments p50 {wo['p50'] * 1e3:.2f} ms, "
        f"p99 {wo['p99'] * 1e3:.2f} ms, {wo['eps']:,.0f} events/s | throughput ratio {wo['eps'] / w['eps']:.2f}x"
    )
    print(
        f"    grouped requests (100 events per call): {w['batched']:,.0f} events/s with segments | "
        f"{wo['batched']:,.0f} events/s without | ratio {wo['batched'] / w['batched']:.2f}x"
    )
    print(
        f"    segment evaluation inside the call p50 {w['eval_p50'] * 1e3:.2f} ms, p99 {w['eval_p99'] * 1e3:.2f} ms; "
        f"evaluation alone {w['eval_eps']:,.0f} events/s (single calls), {w['eval_eps_grouped']:,.0f} events/s "
        f"(grouped); {w['changes']:,} membership changes"
    )


if __name__ == "__main__":
    main()
