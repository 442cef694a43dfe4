"""Eligibility classification (spec §6) and SQL rendering rules (DuckDB and Spark from one tree)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tessera import pql

SCHEMAS = json.loads((Path(__file__).resolve().parents[1] / "data" / "pql" / "schemas.json").read_text())
P, EV = SCHEMAS["profile"], SCHEMAS["event"]
NOW = datetime(2024, 5, 15, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "method"),
    [
        (
            'CHAIN(xEvent, timestamp, [C0: WHAT(eventType.equals("commerce.checkouts", false)) WHEN(today)])',
            "streaming",
        ),
        ('homeAddress.country.equals("Canada", false)', "streaming"),
        (
            'workAddress.country.equals("US", false) and CHAIN(xEvent, timestamp, [C0: WHAT(eventType = "a") '
            'WHEN(today), C1: WHAT(eventType = "b") WHEN(today)])',
            "streaming",
        ),
        ('inSegment("a") and inSegment("b")', "streaming"),
        ('chain(xEvent, timestamp, [A: WHAT(eventType = "addToCart")])', "batch"),
        ('chain(xEvent, timestamp, [X: WHAT(eventType = "addToCart") WHEN(< 8 days before now)])', "batch"),
        (
            'inSegment("x") and CHAIN(xEvent, timestamp, [C0: WHAT(eventType = "c") WHEN(<= 24 hours before now)])',
            "batch",
        ),
        ("select X from xEvent where X.timestamp occurs yesterday", "batch"),
        ('xEvent[eventType = "download"].groupBy(product).map((K, G) => mapEntry(K, G.average(v)))', "batch"),
    ],
)
def test_eligibility(expr: str, method: str) -> None:
    e = pql.eligibility(expr)
    assert e.method == method
    assert bool(e.reasons) == (method == "batch")
    # what streams reads no event older than a day before now; what does not may read any
    assert e.event_window == (timedelta(hours=24) if method == "streaming" else None)


def test_eligibility_reason_in_words() -> None:
    e = pql.eligibility('chain(xEvent, timestamp, [A: WHAT(eventType = "addToCart")])')
    assert "step A has no time window of 24 hours or less" in e.reasons[0]


def test_sql_never_pastes_user_text_and_has_no_current_timestamp() -> None:
    nasty = "x'); DROP TABLE t; --"
    seg = pql.check(
        f"homeAddress.city = {json.dumps(nasty)} and select X from xEvent where X.timestamp occurs today",
        P,
        EV,
    )
    sql = pql.compile_sql({"s'1": seg}, "profiles", NOW)
    assert "'x''); DROP TABLE t; --'" in sql
    assert "CURRENT_TIMESTAMP" not in sql.upper() and "NOW()" not in sql.upper()
    con = duckdb.connect()
    pql.load_relation(
        con,
        "profiles",
        P,
        EV,
        [("p", {"homeAddress": {"city": nasty}}, [{"_id": "e", "timestamp": "2024-05-15T01:00:00Z"}])],
    )
    assert con.execute(sql).fetchall() == [("p", True)]


def test_spark_sql_uses_size_not_length() -> None:
    seg = pql.check('xEvent[eventType = "view"].count() > 2 and person.tags.includes("a")', P, EV)
    spark = pql.compile_sql({"s": seg}, "profiles", NOW, dialect="spark")
    assert "SIZE(FILTER(events, _v1 -> " in spark and "LENGTH" not in spark
    duck = pql.compile_sql({"s": seg}, "profiles", NOW)
    assert "ARRAY_LENGTH(LIST_FILTER(events, LAMBDA _v1 : " in duck


def test_many_segments_one_scan_and_values() -> None:
    segs = {f"seg{i}": pql.check(f"person.age > {i}", P, EV) for i in range(3)}
    sql = pql.compile_sql(segs, "profiles", NOW)
    assert sql.count("FROM") == 1
    con = duckdb.connect()
    pql.load_relation(con, "profiles", P, EV, [("a", {"person": {"age": 1}}, []), ("b", {}, [])])
    assert sorted(con.execute(sql).fetchall()) == [("a", True, False, False), ("b", False, False, False)]
    ca = pql.check('xEvent[eventType = "view"].count()', P, EV, boolean=False)
    value_sql = pql.compile_sql_value(ca, "profiles", NOW, name="views")
    assert con.execute(value_sql).fetchall() == [("a", 0), ("b", 0)]
