"""The batch relation holds only what the segments read, and answers as the full one does."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tessera import pql
from tessera.pql.relation import duckdb_type

NOW = datetime(2024, 5, 15, 12, 30, tzinfo=UTC)
SCHEMAS = json.loads((Path(__file__).resolve().parents[1] / "data" / "pql" / "schemas.json").read_text())
P, EV = SCHEMAS["profile"], SCHEMAS["event"]

ROWS: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = [
    (
        "p0",
        {"person": {"name": {"firstName": "Ann"}, "age": 30}, "homeAddress": {"countryCode": "US"}},
        [
            {"_id": "a", "eventType": "view", "timestamp": "2024-05-15T10:00:00Z"},
            {"_id": "b", "eventType": "purchase", "timestamp": "2024-05-15T11:00:00Z"},
            {"eventType": "view", "productListItems": [{"SKU": "PS"}, {}]},
            {},
        ],
    ),
    ("p1", {"person": {}}, []),
    ("p2", {}, [{"productListItems": []}]),
]


def _run(exprs: dict[str, str], *, boolean: bool = True) -> tuple[pql.BatchSql, dict[str, tuple[Any, ...]]]:
    checked = {k: pql.check(v, P, EV, boolean=boolean) for k, v in exprs.items()}
    batch = pql.compile_batch(checked, "rel", NOW)
    con = duckdb.connect()
    pql.load_relation(con, "rel", batch.profile_schema, batch.event_schema, ROWS)
    pruned = {r[0]: r[1:] for r in con.execute(batch.sql).fetchall()}
    pql.load_relation(con, "full", P, EV, ROWS)
    full = {r[0]: r[1:] for r in con.execute(pql.compile_sql(checked, "full", NOW)).fetchall()}
    assert pruned == full
    return batch, pruned


def test_only_the_fields_read_are_loaded() -> None:
    batch, got = _run(
        {
            "us_viewers": 'homeAddress.countryCode = "US" and xEvent[eventType = "view"].count() > 1',
            "recent": "xEvent[timestamp occurs < 3 hours before now].count() > 0",
        }
    )
    assert duckdb_type(batch.profile_schema) == 'STRUCT("homeAddress" STRUCT("countryCode" VARCHAR))'
    assert duckdb_type(batch.event_schema) == 'STRUCT("eventType" VARCHAR, "timestamp" TIMESTAMP)'
    assert got == {"p0": (True, True), "p1": (False, False), "p2": (False, False)}


def test_nested_lists_keep_only_their_read_fields() -> None:
    batch, got = _run({"ps": 'xEvent.productListItems[SKU = "PS"].count() > 0'})
    assert duckdb_type(batch.event_schema) == 'STRUCT("productListItems" STRUCT("SKU" VARCHAR)[])'
    assert got == {"p0": (True,), "p1": (False,), "p2": (False,)}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # counts of items none of whose fields are read: an empty event still counts
        ("xEvent.count() = 4", {"p0": (True,), "p1": (False,), "p2": (False,)}),
        ("xEvent.productListItems.count() = 2", {"p0": (True,), "p1": (False,), "p2": (False,)}),
        # an object in a condition is "present": an empty person is, a missing one is not
        ("person", {"p0": (True,), "p1": (True,), "p2": (False,)}),
        ("isNull(homeAddress)", {"p0": (False,), "p1": (True,), "p2": (True,)}),
    ],
)
def test_presence_and_sizes_survive_pruning(expr: str, expected: dict[str, tuple[Any, ...]]) -> None:
    batch, got = _run({"s": expr})
    assert got == expected
    assert "name" not in json.dumps(batch.profile_schema)  # nothing of the person's fields was needed


def test_values_used_whole_keep_every_field() -> None:
    batch, got = _run({"views": 'xEvent[eventType = "view"]', "first": "xEvent.head()"}, boolean=False)
    assert batch.event_schema == EV
    views = got["p0"][0]
    assert [e["_id"] for e in views] == ["a", None]
    assert views[1]["productListItems"] == [
        {"SKU": "PS", "priceTotal": None, "quantity": None, "name": None},
        {
            "SKU": None,
            "priceTotal": None,
            "quantity": None,
            "name": None,
        },
    ]


def test_chains_read_only_their_steps_fields() -> None:
    expr = 'chain(xEvent, timestamp, [A: WHAT(eventType = "view"), B: WHAT(eventType = "purchase")])'
    batch, got = _run({"c": expr})
    assert duckdb_type(batch.event_schema) == 'STRUCT("timestamp" TIMESTAMP, "eventType" VARCHAR)'
    assert got == {"p0": (True,), "p1": (False,), "p2": (False,)}


def test_compile_batch_keeps_the_query_of_compile_sql() -> None:
    checked = {"s": pql.check('person.age > 18 and xEvent[eventType = "view"].count() > 0', P, EV)}
    assert pql.compile_batch(checked, "t", NOW).sql == pql.compile_sql(checked, "t", NOW)
    spark = pql.compile_batch(checked, "t", NOW, "spark")
    assert spark.sql == pql.compile_sql(checked, "t", NOW, "spark")
    assert replace(spark, sql="") == replace(pql.compile_batch(checked, "t", NOW), sql="")
