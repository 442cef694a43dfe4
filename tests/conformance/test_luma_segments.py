"""Luma conformance: segments over the real Luma web events (Adobe's DSW reference data, Apache-2.0,
see tests/data/segments/luma/SOURCES.md) give the counts of an independent DuckDB computation
straight over the Parquet file, in streaming and in batch.

Profiles are the ECIDs (``endUserIDs._experience.mcid.id``). The segments:

* purchasers — ``xEvent[commerce.purchases.value > 0].count() > 0``
* cart abandoners — added to cart, never bought
* US visitors — ``xEvent[placeContext.geo.countryCode = "US"].count() > 0``
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "segments"))
from segfakes import FakeSandbox, FakeSeg, definition  # noqa: E402

from tessera.model import Identity, format_time  # noqa: E402
from tessera.segments import memberships as ms  # noqa: E402

LUMA = Path(__file__).resolve().parent.parent / "data" / "segments" / "luma" / "luma_post.snappy.parquet"
NOW = datetime(2019, 1, 1, tzinfo=UTC)
PQL = {
    "purchasers": "xEvent[commerce.purchases.value > 0].count() > 0",
    "cart_abandoners": "xEvent[commerce.productListAdds.value > 0].count() > 0 and "
    "xEvent[commerce.purchases.value > 0].count() = 0",
    "us_visitors": 'xEvent[placeContext.geo.countryCode = "US"].count() > 0',
}


def _val(e: Mapping[str, Any], *path: str) -> Any:
    node: Any = e
    for p in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(p)
    return node


def _bought(e: Mapping[str, Any]) -> bool:
    return (_val(e, "commerce", "purchases", "value") or 0) > 0


def _added(e: Mapping[str, Any]) -> bool:
    return (_val(e, "commerce", "productListAdds", "value") or 0) > 0


class LumaEngine:
    """Named Luma segments: a Python predicate each (streaming) and SQL over a flattened relation (batch)."""

    def __init__(self) -> None:
        from segfakes import FakeEngine

        self.inner = FakeEngine(
            {
                "purchasers": FakeSeg(lambda p, ev, now, m: any(_bought(e) for e in ev), "bool_or(e.bought)"),
                "cart_abandoners": FakeSeg(
                    lambda p, ev, now, m: any(_added(e) for e in ev) and not any(_bought(e) for e in ev),
                    "bool_or(e.added) AND NOT bool_or(e.bought)",
                ),
                "us_visitors": FakeSeg(
                    lambda p, ev, now, m: any(
                        _val(e, "placeContext", "geo", "countryCode") == "US" for e in ev
                    ),
                    "bool_or(e.country = 'US')",
                ),
            }
        )

    def compile(self, fmt: str, value: str, *, boolean: bool = True) -> Any:
        return self.inner.compile(fmt, value)

    def batch_query(
        self,
        con: Any,
        table: str,
        rows: Sequence[tuple[str, dict[str, Any], list[dict[str, Any]]]],
        segments: Mapping[str, Any],
        now: datetime,
        memberships: Mapping[str, set[str]],
    ) -> list[tuple[str, dict[str, bool]]]:
        con.execute(
            "CREATE OR REPLACE TABLE e (profile_id VARCHAR, bought BOOLEAN, added BOOLEAN, country VARCHAR)"
        )
        flat = [
            (pid, _bought(e), _added(e), _val(e, "placeContext", "geo", "countryCode"))
            for pid, _, evs in rows
            for e in evs
        ]
        names = ["profile_id", "bought", "added", "country"]
        e = pa.table({n: [r[i] for r in flat] for i, n in enumerate(names)})
        con.register("e", e)
        cols = ", ".join(f'coalesce({c.checked}, false) AS "{sid}"' for sid, c in segments.items())
        cur = con.execute(f"SELECT profile_id, {cols} FROM e GROUP BY profile_id")
        return [
            (r[0], {sid: bool(v) for sid, v in zip(segments, r[1:], strict=True)}) for r in cur.fetchall()
        ]


def independent_counts() -> dict[str, int]:
    """The expected audience sizes, computed by DuckDB directly over the file."""
    f = str(LUMA)
    con = duckdb.connect()
    base = f"SELECT endUserIDs._experience.mcid.id AS ecid, * FROM read_parquet('{f}') WHERE ecid IS NOT NULL"
    buyers = f"SELECT DISTINCT ecid FROM ({base}) WHERE commerce.purchases.value > 0"
    adders = f"SELECT DISTINCT ecid FROM ({base}) WHERE commerce.productListAdds.value > 0"
    us = f"SELECT DISTINCT ecid FROM ({base}) WHERE placeContext.geo.countryCode = 'US'"
    out = {
        "purchasers": con.execute(f"SELECT count(*) FROM ({buyers})").fetchone()[0],  # type: ignore[index]
        "cart_abandoners": con.execute(f"SELECT count(*) FROM ({adders} EXCEPT {buyers})").fetchone()[0],  # type: ignore[index]
        "us_visitors": con.execute(f"SELECT count(*) FROM ({us})").fetchone()[0],  # type: ignore[index]
    }
    con.close()
    return out


def load_events() -> dict[str, list[dict[str, Any]]]:
    cols = ["_id", "timestamp", "commerce", "placeContext", "endUserIDs", "web"]
    by_profile: dict[str, list[dict[str, Any]]] = {}
    for rec in pq.read_table(LUMA, columns=cols).to_pylist():
        ecid = _val(rec, "endUserIDs", "_experience", "mcid", "id")
        if not ecid:
            continue
        rec["timestamp"] = format_time(rec["timestamp"].replace(tzinfo=UTC))
        by_profile.setdefault(ecid, []).append(rec)
    for evs in by_profile.values():
        evs.sort(key=lambda e: (e["timestamp"], e["_id"]))
    return by_profile


def _counts(sb: FakeSandbox) -> dict[str, int]:
    out: dict[str, int] = {}
    for _, sid, rec in ms.scan_all(sb.store):
        if rec["status"] in ms.IN:
            out[sid] = out.get(sid, 0) + 1
    return out


def _run(sb: FakeSandbox, events: dict[str, list[dict[str, Any]]], expressions: Mapping[str, str]) -> None:
    for sid, expr in expressions.items():
        sb.segments.create(definition(sid, expr), seg_id=sid)
    for ecid, evs in events.items():
        sb.put(ecid, identities=[Identity("ECID", ecid)], events=evs, now=NOW)


@pytest.fixture(scope="module")
def luma() -> dict[str, list[dict[str, Any]]]:
    return load_events()


def test_independent_counts_are_meaningful() -> None:
    counts = independent_counts()
    assert counts["purchasers"] > 100 and counts["cart_abandoners"] > 20 and counts["us_visitors"] > 500


def test_streaming_and_batch_counts_match_independent_computation(
    tmp_path: Path, luma: dict[str, list[dict[str, Any]]]
) -> None:
    expected = independent_counts()
    sb = FakeSandbox(tmp_path, LumaEngine())  # type: ignore[arg-type]
    _run(sb, luma, {k: k for k in PQL})
    assert _counts(sb) == expected  # streaming, as the events were ingested
    job = sb.segments.run_job(None, now=NOW)
    assert job["metrics"]["segmentedProfileCounter"] == expected  # batch job
    assert job["metrics"]["totalProfiles"] == len(luma)


def test_real_pql_counts_match_independent_computation(
    tmp_path: Path, luma: dict[str, list[dict[str, Any]]]
) -> None:
    """The same audiences written in PQL, run by a batch job through the PQL SQL compiler (event
    filters are not streaming-eligible, so these definitions are batch-only)."""
    from segfakes import standard_schemas

    expected = independent_counts()
    sb = FakeSandbox(tmp_path / "sb", "pql", schemas=standard_schemas(tmp_path / "home"))
    for sid, expr in PQL.items():
        sb.segments.create(definition(sid, expr, continuous=False), seg_id=sid)
    for ecid, evs in luma.items():
        sb.put(ecid, identities=[Identity("ECID", ecid)], events=evs, now=NOW)
    assert _counts(sb) == {}  # nothing streams
    job = sb.segments.run_job(None, now=NOW)
    assert job["metrics"]["segmentedProfileCounter"] == expected
