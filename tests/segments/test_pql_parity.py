"""Streaming == batch with real PQL (the compiler of issue 5): the same generated data and the same
evaluation time give the same memberships through the Python evaluator and the SQL compiler."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from segfakes import FakeSandbox, definition, event

from tessera.segments import memberships as ms

pytest.importorskip("tessera.pql", reason="the PQL compiler (issue 5) is not merged in this branch yet")

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SEGMENTS = {  # streaming-eligible forms (spec §6.1): profile only, chains with windows, segment of segments
    "us": 'homeAddress.countryCode = "US"',
    "bought_3h": 'chain(xEvent, timestamp, [A: WHAT(eventType = "purchase") WHEN(< 3 hours before now)])',
    "us_bought": 'homeAddress.countryCode = "US" and chain(xEvent, timestamp, '
    '[A: WHAT(eventType = "purchase") WHEN(<= 24 hours before now)])',
    "cart_then_buy": 'chain(xEvent, timestamp, [A: WHAT(eventType = "addToCart") WHEN(< 24 hours before now), '
    'B: WHAT(eventType = "purchase") WHEN(< 24 hours before now)])',
    "us_buyer": 'inSegment("us") and inSegment("bought_3h")',
}


@pytest.mark.parametrize("seed", [3])
def test_pql_streaming_equals_batch(tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from segfakes import standard_schemas

    from tessera.segments import stored_profiles

    loaded: list[tuple[dict[str, Any], dict[str, Any]]] = []
    real_load = stored_profiles.load_relation_from_documents

    def load(con: Any, table: str, ps: dict[str, Any], es: dict[str, Any], **docs: Any) -> int:
        loaded.append((ps, es))
        return real_load(con, table, ps, es, **docs)

    # batch jobs build the relation from the stored documents
    monkeypatch.setattr(stored_profiles, "load_relation_from_documents", load)

    rnd = random.Random(seed)
    schemas = standard_schemas(tmp_path / "home")
    streaming = FakeSandbox(tmp_path / "s", "pql", schemas=schemas)
    batch = FakeSandbox(tmp_path / "b", "pql", schemas=schemas)
    for sb in (streaming, batch):
        for sid, text in SEGMENTS.items():
            sb.segments.create(definition(sid, text), seg_id=sid)
    arrivals = []
    for i in range(40):
        pid = f"p{i:02d}"
        attrs = {"homeAddress": {"countryCode": rnd.choice(["US", "FR"])}}
        streaming.put(pid, attributes=attrs, now=T0 - timedelta(days=3))
        batch.put(pid, attributes=attrs, now=T0 - timedelta(days=3))
        for j in range(rnd.randint(0, 5)):
            when = T0 - timedelta(minutes=rnd.randint(0, 2 * 24 * 60))
            arrivals.append(
                (
                    when,
                    pid,
                    event(f"{pid}-{j}", when, rnd.choice(["purchase", "addToCart"]), rnd.randint(0, 80)),
                )
            )
    for when, pid, e in sorted(arrivals, key=lambda a: (a[0], a[1])):
        streaming.put(pid, events=[e], now=when)
        batch.put(pid, events=[e], now=T0 - timedelta(days=3))
    now = T0 + timedelta(hours=1)
    streaming.segments.tick(now)
    batch.segments.run_job(None, now=now)

    def members(sb: FakeSandbox) -> set[tuple[str, str]]:
        return {(p, s) for p, s, rec in ms.scan_all(sb.store) if rec["status"] in ms.IN}

    assert members(streaming) == members(batch)
    # the batch side ran through SQL (not the closures), over only the fields the segments read
    assert [sorted(es["properties"]) for _, es in loaded] == [["eventType", "timestamp"]]
    assert sorted(loaded[0][0]["properties"]) == ["homeAddress"]


def test_members_per_segment_equal_the_flags_per_profile(tmp_path: Path) -> None:
    """The service's batch path (members listed per segment from the query's columns) gives what
    the per-profile flags give, whatever the segment ids are called."""
    import duckdb
    from segfakes import standard_schemas

    from tessera.segments import PqlEngine
    from tessera.xdm.standard import EXPERIENCE_EVENT, PROFILE

    schemas = standard_schemas(tmp_path / "home")
    engine = PqlEngine(lambda: (schemas.union(PROFILE), schemas.union(EXPERIENCE_EVENT)))
    names = ["us", "profile_id", 'odd "name"', "cart_then_buy"]
    texts = [SEGMENTS["us"], SEGMENTS["bought_3h"], SEGMENTS["us_bought"], SEGMENTS["cart_then_buy"]]
    compiled = {n: engine.compile("pql/text", t) for n, t in zip(names, texts, strict=True)}
    rnd = random.Random(5)
    rows = []
    for i in range(60):
        evs = [
            event(
                f"p{i}-{j}",
                T0 - timedelta(minutes=rnd.randint(0, 600)),
                rnd.choice(["purchase", "addToCart"]),
                1,
            )
            for j in range(rnd.randint(0, 4))
        ]
        evs.sort(key=lambda e: e["timestamp"])
        rows.append((f"p{i:02d}", {"homeAddress": {"countryCode": rnd.choice(["US", "FR"])}}, evs))
    flags = list(engine.batch_query(duckdb.connect(), "rel", rows, compiled, T0, {}))
    expected = {sid: {pid for pid, f in flags if f[sid]} for sid in names}
    got = engine.batch_members(duckdb.connect(), "rel", rows, compiled, T0, {})
    assert got == expected
    assert all(expected.values()) and not all(len(v) == len(rows) for v in expected.values())
    assert engine.batch_members(duckdb.connect(), "rel", [], compiled, T0, {}) == {n: set() for n in names}
