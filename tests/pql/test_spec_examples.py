"""Golden tests from spec/pql.md §8: every example parses (or fails clearly where invalid), round-trips
text → AST → text and text → json → text, and every documented result holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tessera import pql
from tessera.errors import PqlError

EXAMPLES = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "pql" / "spec_examples.json").read_text()
)
EXPRS = [e for e in EXAMPLES if e["kind"] == "expression"]


@pytest.mark.parametrize("ex", EXPRS, ids=[f"{e['n']}.{e['i']}" for e in EXPRS])
def test_example_parses_and_round_trips(ex: dict[str, Any]) -> None:
    node = pql.parse(ex["pql"])
    text = pql.to_text(node)
    assert pql.parse(text) == node
    assert pql.parse(pql.to_text(pql.parse(text))) == node
    doc = pql.to_json(node)
    assert pql.parse_json(json.dumps(doc)) == node
    assert pql.parse(pql.to_text(pql.parse_json(doc))) == node


@pytest.mark.parametrize("ex", [e for e in EXAMPLES if e["kind"] == "invalid"], ids=lambda e: f"{e['n']}")
def test_invalid_example_fails_clearly(ex: dict[str, Any]) -> None:
    with pytest.raises(PqlError) as info:
        pql.parse(ex["pql"])
    assert info.value.line == 1 and info.value.column > 1 and "^" in info.value.snippet


def _at(path: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cur = out
    parts = path.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return out


def _run(
    expr: str,
    profile: dict[str, Any],
    events: list[dict[str, Any]] | None = None,
    now: datetime | None = None,
    boolean: bool = True,
) -> Any:
    fn = pql.compile_python(pql.check(expr, boolean=boolean))
    return fn(profile, events or [], pql.EvalContext(now=now or datetime(2018, 8, 28, 9, tzinfo=UTC)))


# (example number, expression, field path, {value: expected})
STRING_RESULTS = [
    (
        26,
        'person.firstName like "John%"',
        "person.firstName",
        {"John": True, "Johnny": True, "UpJohn": False},
    ),
    (
        27,
        'person.firstName like "%John"',
        "person.firstName",
        {"John": True, "UpJohn": True, "Johnny": False},
    ),
    (
        28,
        'person.firstName like "J_hn"',
        "person.firstName",
        {"John": True, "Jahn": True, "UpJohn": False, "Johnny": False},
    ),
    (
        31,
        'workEmail.address.startsWith("joe")',
        "workEmail.address",
        {"joe.lean@work.com": True, "JOE.lean@work.com": False},
    ),
    (
        31,
        'workEmail.address.startsWith("joe", true)',
        "workEmail.address",
        {"joe.lean@work.com": True, "JOE.lean@work.com": False},
    ),
    (
        32,
        'workEmail.address.startsWith("joe", false)',
        "workEmail.address",
        {"joe.lean@work.com": True, "JOE.lean@work.com": True},
    ),
    (
        33,
        'workEmail.address.doesNotStartWith("joe")',
        "workEmail.address",
        {"joe.lean@work.com": False, "JOE.lean@work.com": True},
    ),
    (
        34,
        'workEmail.address.doesNotStartWith("joe", false)',
        "workEmail.address",
        {"joe.lean@work.com": False, "JOE.lean@work.com": False},
    ),
    (
        36,
        'workEmail.address.endsWith(".edu")',
        "workEmail.address",
        {"joe.lean@work.edu": True, "joe.lean@work.EDU": False},
    ),
    (
        36,
        'workEmail.address.endsWith(".edu", false)',
        "workEmail.address",
        {"joe.lean@work.edu": True, "joe.lean@work.EDU": True},
    ),
    (
        37,
        'workEmail.address.doesNotEndWith(".edu", false)',
        "workEmail.address",
        {"joe.lean@work.edu": False, "joe.lean@work.EDU": False},
    ),
    (
        39,
        'workEmail.address.contains("yahoo")',
        "workEmail.address",
        {"a@yahoo.com": True, "a@YAHOO.com": False},
    ),
    (
        39,
        'workEmail.address.contains("yahoo", false)',
        "workEmail.address",
        {"a@yahoo.com": True, "a@YAHOO.com": True},
    ),
    (
        40,
        'workEmail.address.doesNotContain("yahoo")',
        "workEmail.address",
        {"a@yahoo.com": False, "a@YAHOO.com": True},
    ),
    (
        40,
        'workEmail.address.doesNotContain("yahoo", false)',
        "workEmail.address",
        {"a@yahoo.com": False, "a@YAHOO.com": False},
    ),
    (42, 'firstName.equals("John", false)', "firstName", {"Johnny": False, "John": True, "john": True}),
    (43, 'firstName.notEqualTo("John")', "firstName", {"John": False, "john": True}),
    (43, 'firstName.notEqualTo("John", false)', "firstName", {"Johnny": True, "John": False, "john": False}),
    (
        45,
        'person.firstName matches "^John"',
        "person.firstName",
        {"John": True, "Johnny": True, "JOHN": False, "UpJohn": False},
    ),
    (
        46,
        'person.firstName matches "John$"',
        "person.firstName",
        {"John": True, "UpJohn": True, "JOHN": False, "Johnny": False},
    ),
    (
        47,
        'person.firstName matches "J.hn"',
        "person.firstName",
        {"John": True, "Johnny": True, "UpJohn": True, "Jahn": True, "JOHN": False},
    ),
    (
        48,
        'person.firstName matches "^J.*n$"',
        "person.firstName",
        {"John": True, "Jonathan": True, "Jahn": True, "JOHN": False, "Johnny": False, "UpJohn": False},
    ),
    (
        54,
        'homeAddress.stateProvinceISO in ["CA", "OR"]',
        "homeAddress.stateProvinceISO",
        {"OR": True, "or": False},
    ),
    (
        55,
        'homeAddress.stateProvinceISO notIn ["CA", "OR"]',
        "homeAddress.stateProvinceISO",
        {"or": True, "OR": False},
    ),
    (56, "birthMonth notIn [3, 4, 6]", "birthMonth", {5: True, 3: False}),
    (
        57,
        '"London" in citiesVisited',
        "citiesVisited",
        {("London", "Paris", "New York"): True, ("london", "paris"): False},
    ),
    (
        59,
        'person.favoriteColors.intersects(["red", "blue", "green"])',
        "person.favoriteColors",
        {("orange", "blue", "brown"): True, ("yellow", "violet"): False},
    ),
    (23, "intField1/intField2 > 5", "intField2", {0: False}),
]
CASES = [(n, e, p, v, exp) for n, e, p, vals in STRING_RESULTS for v, exp in vals.items()]


@pytest.mark.parametrize(("n", "expr", "path", "value", "expected"), CASES)
def test_documented_results(n: int, expr: str, path: str, value: Any, expected: bool) -> None:
    v = list(value) if isinstance(value, tuple) else value
    profile = _at(path, v)
    if n == 23:
        profile["intField1"] = 100
    assert _run(expr, profile) is expected


def test_documented_results_are_false_on_missing_fields() -> None:
    # Negated forms are not exact negations: all false when the operand is null (spec §4).
    for expr in [
        'workEmail.address.doesNotStartWith("joe")',
        'a.b != "CA"',
        "birthMonth notIn [3, 4, 6]",
        'x.doesNotContain("y")',
        'firstName.notEqualTo("John")',
    ]:
        assert _run(expr, {}) is False
    assert _run('not (a.b = "CA")', {}) is True  # not(null) = not(false) = true (design decision)


def test_intersection_is_null_when_empty() -> None:  # example 60
    expr = 'person.favoriteColors.intersection(["red", "blue", "green"])'
    assert _run(expr, _at("person.favoriteColors", ["orange", "blue", "brown"]), boolean=False) == ["blue"]
    assert _run(expr, _at("person.favoriteColors", ["yellow", "violet"]), boolean=False) is None


def test_sum_of_nothing_is_zero() -> None:  # example 85
    assert _run("sum X from integerArray where X > 0", {"integerArray": [-1, -2]}, boolean=False) == 0
    assert _run("sum X from integerArray where X > 0", {"integerArray": [-1, 2, 3]}, boolean=False) == 5


def test_current_month_in_spring() -> None:  # example 88
    for month, expected in [(3, True), (5, True), (6, False)]:
        assert _run("currentMonth() in [3, 4, 5]", {}, now=datetime(2020, month, 2, tzinfo=UTC)) is expected


def _ev(ts: str) -> dict[str, Any]:
    return {"_id": ts, "timestamp": ts}


def test_occurs_within_one_month_before_today() -> None:  # example 101: on 2018-08-28 → 07-28 … 08-27
    e = "select X from xEvent where X.timestamp occurs <= 1 month before today"
    assert _run(e, {}, [_ev("2018-07-28T00:00:00Z")]) is True
    assert _run(e, {}, [_ev("2018-08-27T23:59:59Z")]) is True
    assert _run(e, {}, [_ev("2018-07-27T23:59:59Z")]) is False
    assert _run(e, {}, [_ev("2018-08-28T00:00:01Z")]) is False


def test_occurs_last_month() -> None:  # example 102: on 2018-08-28 → 2018-07-01 … 2018-07-31
    e = "select X from xEvent where X.timestamp occurs last month"
    assert _run(e, {}, [_ev("2018-07-01T00:00:00Z")]) is True
    assert _run(e, {}, [_ev("2018-07-31T23:59:59Z")]) is True
    assert _run(e, {}, [_ev("2018-08-01T00:00:00Z")]) is False
    assert _run(e, {}, [_ev("2018-06-30T23:59:59Z")]) is False


def test_occurs_between_is_inclusive() -> None:  # example 105
    e = "X.timestamp occurs between date(2017, 10, 1) and date(2017, 12, 31)"
    e = f"select X from xEvent where {e}"
    assert _run(e, {}, [_ev("2017-12-31T23:00:00Z")]) is True
    assert _run(e, {}, [_ev("2017-10-01T00:00:00Z")]) is True
    assert _run(e, {}, [_ev("2018-01-01T00:00:00Z")]) is False


def test_offer_ranking_worked_example() -> None:  # example 182
    expr = next(e["pql"] for e in EXAMPLES if e["n"] == 182 and e["i"] == 0)
    scoring = [
        {"core": {"category": c, "propensityScore": s}}
        for c, s in [("insurance", 96.9), ("personalLoan", 45.3), ("creditCard", 78.1)]
    ]
    for kind, expected in [("insurance", 96.9), ("personalLoan", 45.3), ("creditCard", 78.1), ("other", 7)]:
        profile = {
            "_salesvelocity": {"individualScoring": scoring},
            "offer": {"characteristics": {"propensityType": kind}, "rank": {"priority": 7}},
        }
        assert _run(expr, profile, boolean=False) == expected


def test_chain_count_and_order() -> None:  # examples 145, 158
    now = datetime(2024, 1, 2, 12, tzinfo=UTC)
    views = [{"eventType": "homePageView", "timestamp": f"2024-01-02T0{i}:00:00Z"} for i in range(5)]
    e145 = 'chain(xEvent, timestamp, [A: WHAT(eventType = "homePageView") WHEN(< 24 hours before now) COUNT(5) ] )'
    assert _run(e145, {}, views, now=now) is True
    assert _run(e145, {}, views[:4], now=now) is False
    seq = 'chain(xEvent, timestamp, [ A: WHAT(eventType = "productView"), B: WHAT(eventType = "addToCart") ])'
    ok = [
        {"eventType": "productView", "timestamp": "2024-01-01T00:00:00Z"},
        {"eventType": "addToCart", "timestamp": "2024-01-01T01:00:00Z"},
    ]
    assert _run(seq, {}, ok, now=now) is True
    reversed_order = [dict(ok[0], timestamp="2024-01-01T02:00:00Z"), ok[1]]
    assert _run(seq, {}, reversed_order, now=now) is False


def test_in_segment() -> None:  # examples 148, 156
    prof = {"segmentMembership": {"ups": {"a": {"status": "realized"}, "b": {"status": "exited"}}}}
    assert _run('inSegment("a")', prof) is True
    assert _run('inSegment("b")', prof) is False
    assert _run('inSegment("a") and inSegment("b")', prof) is False


def test_filters_with_parent_reference() -> None:  # examples 134, 135
    events = [{"productListItems": [{"SKU": "LR"}]}, {"productListItems": [{"SKU": "PS"}]}]
    assert _run('xEvent[productListItems[SKU="PS"]].count()', {}, events, boolean=False) == 1
    female = {"person": {"gender": "female"}}
    assert (
        _run(
            'xEvent[productListItems[SKU="PS" or ^^.person.gender="female"]].count()',
            female,
            events,
            boolean=False,
        )
        == 2
    )


def test_computed_attribute_group_by() -> None:  # example 166
    now = datetime(2024, 1, 8, tzinfo=UTC)
    events = [
        {"eventType": "download", "product": p, "timestamp": "2024-01-07T00:00:00Z"} for p in ["a", "b", "a"]
    ]
    expr = (
        'xEvent[(timestamp occurs < 7 days before now) and eventType="download"]'
        ".groupBy(product).map((K, G) => mapEntry(K, G.count()))"
    )
    assert _run(expr, {}, events, now=now, boolean=False) == {"a": 2, "b": 1}


def test_if_and_let() -> None:  # examples 7, 86, 171
    assert (
        _run('if (homeAddress.countryISO = "CA", 1, 2)', _at("homeAddress.countryISO", "CA"), boolean=False)
        == 1
    )
    assert _run('if (homeAddress.countryISO = "CA", 1, 2)', {}, boolean=False) == 2
    expr = next(e["pql"] for e in EXAMPLES if e["n"] == 86)
    usd = [{"commerce": {"order": {"currencyCode": "USD", "priceTotal": p}}} for p in (100, 200)]
    assert _run(expr, {}, usd) is True
    assert _run(expr, {}, usd[:1]) is False


def test_segment_definition_json_samples() -> None:  # examples 183, 184 and the §7 conversion sample
    for e in (x for x in EXAMPLES if x["n"] in (183, 184)):
        envelope = json.loads(e["pql"])
        assert envelope["format"] == "pql/text"
        node = pql.parse(envelope["value"])
        assert pql.parse_json(pql.to_json(node)) == node
    converted = {
        "nodeType": "fnApply",
        "fnName": "=",
        "params": [
            {
                "nodeType": "fieldLookup",
                "fieldName": "country",
                "object": {
                    "nodeType": "fieldLookup",
                    "fieldName": "workAddress",
                    "object": {"nodeType": "parameterReference", "position": 1},
                },
            },
            {"nodeType": "literal", "literalType": "String", "value": "US"},
        ],
    }
    assert pql.to_text(pql.parse_json(converted)) == 'workAddress.country = "US"'
    assert pql.to_json(pql.parse('workAddress.country = "US"')) == converted
    jq1 = {
        "nodeType": "fnApply",
        "fnName": "=",
        "params": [
            {
                "nodeType": "fieldLookup",
                "fieldName": "birthDay",
                "object": {
                    "nodeType": "fieldLookup",
                    "fieldName": "person",
                    "object": {"nodeType": "literal", "literalType": "XDMObject", "value": "profile"},
                },
            },
            {"nodeType": "literal", "literalType": "integer", "value": "6"},
        ],
    }
    assert pql.to_text(pql.parse_json(jq1)) == "person.birthDay = 6"
