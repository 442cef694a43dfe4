"""Spark connected components against scipy on random graphs (``pytest -m spark``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_cc

from tessera.scaleout import spark as tspark

pytestmark = pytest.mark.spark
NOW = datetime(2024, 5, 15, 12, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def session() -> Iterator[Any]:
    s = tspark.spark_session("local[2]")
    yield s
    s.stop()


def _expected(src: np.ndarray, dst: np.ndarray) -> dict[int, int]:
    """node → min node id of its component, from scipy."""
    nodes, inverse = np.unique(np.concatenate([src, dst]), return_inverse=True)
    n = len(nodes)
    a, b = inverse[: len(src)], inverse[len(src) :]
    _, labels = scipy_cc(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False)
    smallest = np.full(labels.max() + 1, np.iinfo(np.int64).max)
    np.minimum.at(smallest, labels, nodes)
    return {int(node): int(smallest[label]) for node, label in zip(nodes, labels, strict=True)}


@pytest.mark.parametrize(("nodes", "edges", "seed"), [(60, 40, 1), (400, 380, 2), (3000, 2500, 3)])
def test_components_equal_scipy(session: Any, nodes: int, edges: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Sparse ids (not 0..n-1) and a long chain make the graph harder than a random one.
    ids = rng.choice(10**12, size=nodes, replace=False).astype(np.int64)
    src = ids[rng.integers(0, nodes, edges)]
    dst = ids[rng.integers(0, nodes, edges)]
    chain = np.sort(ids[: nodes // 4])
    src = np.concatenate([src, chain[:-1], ids[-5:]])
    dst = np.concatenate([dst, chain[1:], ids[-5:]])  # self-links: isolated nodes survive
    links = session.createDataFrame(list(zip(src.tolist(), dst.tolist(), strict=True)), "src long, dst long")
    got = {r["node"]: r["component"] for r in tspark.connected_components(links).collect()}
    assert got == _expected(src, dst)


PARITY_EXPRESSIONS = [
    'homeAddress.countryCode = "US"',
    'person.name.firstName.startsWith("Jo")',
    'person.name.firstName like "J%"',
    "person.age >= 30",
    "person.age % 3 = 0",
    "person.score * 2 > 4",
    "person.age in [1, 5, 30, -3]",
    '"a" in person.tags',
    'person.tags.intersects(["a", "b"])',
    "person.lucky.sum() > 3",
    "person.vip = true",
    "person.name.firstName.isNull()",
    'xEvent[eventType = "purchase"].count() > 0',
    "xEvent[timestamp occurs <= 2 days before now].count() > 1",
    'xEvent[eventType = "view"].sum(commerce.purchases.value) > 1.5',
    'exists X from xEvent where X.eventType = "addToCart"',
    "forall X from xEvent where X.commerce.purchases.value > 1",
    'xEvent[productListItems[SKU = "PS"]].count() > 0',
    "xEvent.productListItems.sum(priceTotal) > 3",
    "xEvent[timestamp occurs this month].count() > 0",
    'person.tags.intersection(["a", "c"]).count() > 0',
    'person.name.firstName.regexGroup("J(o)", 1) = "o"',
    "xEvent.topN(commerce.purchases.value, 2).sum(commerce.purchases.value) > 5",
    "xEvent.bottomN(commerce.purchases.value, 1).count() = 1",
    "xEvent.map(commerce.purchases.value).count() > 1",
    'chain(xEvent, timestamp, [A: WHAT(eventType = "addToCart"), B: WHAT(eventType = "purchase")])',
    'chain(xEvent, timestamp, [A: WHAT(eventType = "view"), B: WHAT(eventType = "addToCart") '
    'WHEN(< 20 days before now), C: WHAT(eventType = "purchase") COUNT(2)])',
    # forms the SQL compiler builds itself: object filters, data-read flags and counts, several
    # variables, grouped maps, occurs relative to another field, dates and time words as values
    'person.name[firstName = "John"].count() = 1',
    'exists X from homeAddress where X.countryCode = "US"',
    'person.name.firstName.startsWith("jo", person.vip)',
    'person.name.firstName.equals("JOHN", person.vip)',
    "xEvent.topN(commerce.purchases.value, person.age % 4 - 1).count() > 1",
    '(sum X.commerce.purchases.value + Y.priceTotal over X from xEvent, Y from X.productListItems where Y.SKU = "PS") > 3',
    'xEvent.groupBy(eventType).map((K, G) => mapEntry(K, G.count())).get("purchase") > 1',
    "xEvent.productListItems.groupBy(SKU).keys().count() = 2",
    "exists X from xEvent, Y from xEvent where Y.timestamp occurs = 1 weeks after X.timestamp",
    "exists X from xEvent, Y from xEvent where Y.timestamp occurs = 0 decades after X.timestamp",
    "exists X from xEvent where X.timestamp occurs < person.age days before now",
    "person.birthDate < date(1995, 1, 1)",
    "xEvent[timestamp >= this month].count() > 0",
]


def _parity_rows(n: int) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    from datetime import timedelta

    rng = np.random.default_rng(11)
    rows = []
    for i in range(n):
        pick = lambda xs: xs[int(rng.integers(0, len(xs)))]  # noqa: E731
        person: dict[str, Any] = {"name": {"firstName": pick(["John", "Jo", "Ann", None])}}
        if rng.random() < 0.8:
            person["age"] = int(rng.integers(0, 60))
        person["score"] = pick([0, 1.5, 2.25, 7])
        person["vip"] = bool(rng.random() < 0.3)
        person["birthDate"] = pick(["2000-01-01", "1990-05-15", None])
        person["tags"] = [pick(["a", "b", "c"]) for _ in range(int(rng.integers(0, 3)))]
        person["lucky"] = [int(x) for x in rng.integers(-3, 6, int(rng.integers(0, 4)))]
        events = []
        for j in range(int(rng.integers(0, 5))):
            ts = NOW - timedelta(minutes=int(rng.integers(0, 60 * 24 * 40)))
            event: dict[str, Any] = {
                "_id": f"e{i}-{j}",
                "timestamp": ts.isoformat().replace("+00:00", "Z"),
                "eventType": pick(["addToCart", "purchase", "view"]),
                "commerce": {"purchases": {"value": pick([0, 1, 2, 5])}},
            }
            if rng.random() < 0.5:
                event["productListItems"] = [{"SKU": pick(["PS", "LR"]), "priceTotal": pick([1, 2.5, 4])}]
            events.append(event)
        rows.append((f"p{i}", {"person": person, "homeAddress": {"countryCode": pick(["US", "CA"])}}, events))
    return rows


@pytest.fixture(scope="module")
def relation(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, Any, Any, Any]:
    """(pql module, profile schema, event schema, DuckDB connection) with the relation exported as Parquet."""
    pql = pytest.importorskip("tessera.pql", reason="tessera.pql is not merged yet")
    import duckdb

    schemas_file = Path(__file__).parents[1] / "data" / "pql" / "schemas.json"
    if not schemas_file.exists():
        pytest.skip("tests/data/pql/schemas.json (from the PQL suite) is missing")
    schemas = json.loads(schemas_file.read_text())
    con = duckdb.connect()
    pql.load_relation(con, "profiles", schemas["profile"], schemas["event"], _parity_rows(40))
    path = tmp_path_factory.mktemp("rel") / "rel.parquet"
    con.execute(f"COPY profiles TO '{path}' (FORMAT parquet)")
    session = request.getfixturevalue("session")  # only now: skipping above needs no JVM
    return pql, schemas, con, session.read.parquet(str(path))


def _compare(session: Any, relation: tuple[Any, Any, Any, Any], exprs: list[str]) -> list[str]:
    pql, schemas, con, frame = relation
    checked = {f"s{i}": pql.check(e, schemas["profile"], schemas["event"]) for i, e in enumerate(exprs)}
    expected = {r[0]: tuple(r[1:]) for r in con.execute(pql.compile_sql(checked, "profiles", NOW)).fetchall()}
    got_df = tspark.segment_batch(session, checked, frame, NOW)
    got = {r["profile_id"]: tuple(r[k] for k in checked) for r in got_df.collect()}
    assert got.keys() == expected.keys()
    return [exprs[i] for i in range(len(exprs)) if any(got[p][i] != expected[p][i] for p in expected)]


def test_batch_segmentation_on_spark_equals_duckdb(relation: tuple[Any, Any, Any, Any], session: Any) -> None:
    """The same PQL AST rendered to DuckDB SQL and to Spark SQL gives the same memberships (one scan)."""
    assert _compare(session, relation, PARITY_EXPRESSIONS) == []
