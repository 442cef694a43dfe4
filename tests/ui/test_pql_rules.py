"""Rules ⇄ PQL in the browser's own module (static/js/pql.js), run in Chromium."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser

RULES: list[tuple[str, dict[str, Any], str]] = [
    (
        "attributes",
        {
            "type": "group",
            "op": "and",
            "children": [
                {
                    "type": "attr",
                    "path": "homeAddress.country",
                    "fieldType": "string",
                    "op": "equals",
                    "value": "Australia",
                },
                {
                    "type": "attr",
                    "path": "person.birthYear",
                    "fieldType": "integer",
                    "op": ">=",
                    "value": "1980",
                },
                {
                    "type": "attr",
                    "path": "homeAddress.city",
                    "fieldType": "string",
                    "op": "in",
                    "value": "Sydney, Perth",
                },
                {
                    "type": "attr",
                    "path": "person.name.lastName",
                    "fieldType": "string",
                    "op": "startsWith",
                    "value": "Mc",
                },
                {
                    "type": "attr",
                    "path": "person.birthDate",
                    "fieldType": "date",
                    "op": "before",
                    "value": "1990-01-31",
                },
                {
                    "type": "attr",
                    "path": "personalEmail.address",
                    "fieldType": "string",
                    "op": "exists",
                    "value": "",
                },
            ],
        },
        'homeAddress.country = "Australia"\nand person.birthYear >= 1980\nand homeAddress.city in ["Sydney", "Perth"]\n'
        'and person.name.lastName.startsWith("Mc")\nand person.birthDate occurs before date(1990, 1, 31)\n'
        "and personalEmail.address.isNotNull()",
    ),
    (
        "events, sequences, segments, nested groups",
        {
            "type": "group",
            "op": "and",
            "children": [
                {
                    "type": "event",
                    "eventType": "commerce.purchases",
                    "quantifier": "atLeast",
                    "count": 3,
                    "window": {"n": 30, "unit": "days"},
                },
                {
                    "type": "event",
                    "eventType": "web.webpagedetails.pageViews",
                    "quantifier": "none",
                    "count": 1,
                    "window": {"n": 7, "unit": "days"},
                },
                {
                    "type": "event",
                    "eventType": "commerce.productViews",
                    "quantifier": "atMost",
                    "count": 2,
                    "window": None,
                },
                {
                    "type": "sequence",
                    "steps": [{"eventType": "commerce.productViews"}, {"eventType": "commerce.purchases"}],
                    "window": {"n": 7, "unit": "days"},
                },
                {
                    "type": "group",
                    "op": "or",
                    "children": [
                        {"type": "segment", "id": "seg-1", "negate": False},
                        {"type": "segment", "id": "seg-2", "negate": True},
                    ],
                },
            ],
        },
        'chain(xEvent, timestamp, [C0: WHAT(eventType = "commerce.purchases") WHEN(<= 30 days before now) COUNT(3)])\n'
        'and not(chain(xEvent, timestamp, [C0: WHAT(eventType = "web.webpagedetails.pageViews") WHEN(<= 7 days before now)]))\n'
        'and xEvent[eventType = "commerce.productViews"].count() <= 2\n'
        'and chain(xEvent, timestamp, [C0: WHAT(eventType = "commerce.productViews") WHEN(<= 7 days before now), '
        'C1: WHAT(eventType = "commerce.purchases") WHEN(<= 7 days before now)])\n'
        'and (inSegment("seg-1") or not(inSegment("seg-2")))',
    ),
]


@pytest.fixture
def pql_page(page: Any) -> Any:
    page.goto(page.base + "/#/dashboard")
    page.wait_for_selector(".page h1")
    page.evaluate("async () => { window.pql = await import('/ui/static/js/pql.js'); }")
    return page


@pytest.mark.parametrize(("label", "rules", "text"), RULES, ids=[r[0] for r in RULES])
def test_rules_to_pql_and_back(pql_page: Any, label: str, rules: dict[str, Any], text: str) -> None:
    assert pql_page.evaluate("r => window.pql.toPql(r)", rules) == text
    back = pql_page.evaluate("t => window.pql.fromPql(t, [])", text)
    # reading back keeps every condition; writing it again gives the same text
    assert pql_page.evaluate("r => window.pql.toPql(r)", back) == text
    assert len(back["children"]) == len(rules["children"])


def test_unshaped_pql_is_kept_verbatim(pql_page: Any) -> None:
    text = 'person.birthYear + 18 < currentYear() and homeAddress.country = "US"'
    back = pql_page.evaluate("t => window.pql.fromPql(t, [])", text)
    kinds = [c["type"] for c in back["children"]]
    assert kinds == ["raw", "attr"]
    assert back["children"][0]["pql"] == "person.birthYear + 18 < currentYear()"
    assert pql_page.evaluate("r => window.pql.toPql(r)", back) == text.replace(" and ", "\nand ")


def test_or_of_ands_becomes_nested_groups(pql_page: Any) -> None:
    back = pql_page.evaluate("t => window.pql.fromPql(t, [])", 'a.b = 1 and c.d = 2 or inSegment("x")')
    assert back["op"] == "or"
    assert back["children"][0]["type"] == "group" and back["children"][0]["op"] == "and"
    assert back["children"][1] == {"type": "segment", "id": "x", "negate": False}


def test_unbalanced_pql_is_kept_as_text_not_guessed(pql_page: Any) -> None:
    back = pql_page.evaluate("t => window.pql.fromPql(t, [])", '(homeAddress.country = "US"')
    assert back["children"] == [{"type": "raw", "pql": '(homeAddress.country = "US"'}]
