"""Errors a marketer can act on, and fuzzing: random and mutated input raises only PqlError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tessera import pql
from tessera.errors import PqlError

DATA = Path(__file__).resolve().parents[1] / "data" / "pql"
SCHEMAS = json.loads((DATA / "schemas.json").read_text())
EXAMPLES = [
    e["pql"] for e in json.loads((DATA / "spec_examples.json").read_text()) if e["kind"] == "expression"
]


def test_syntax_error_has_position_and_caret() -> None:
    with pytest.raises(PqlError) as info:
        pql.parse('homeAddress.city = "Paris" and\n  person.age >')
    err = info.value
    assert (err.line, err.column) == (2, 15)
    assert err.snippet.endswith("^") and "person.age >" in err.snippet
    assert "ends too early" in err.message


def test_unknown_field_suggests_the_closest() -> None:
    with pytest.raises(PqlError) as info:
        pql.check('homeAdress.city = "Paris"', SCHEMAS["profile"], SCHEMAS["event"])
    assert "homeAdress" in info.value.message and "Did you mean 'homeAddress'?" in info.value.message
    assert (info.value.line, info.value.column) == (1, 1)


def test_unknown_event_field_in_select() -> None:
    with pytest.raises(PqlError) as info:
        pql.check('select X from xEvent where X.evntType = "view"', SCHEMAS["profile"], SCHEMAS["event"])
    assert "Did you mean 'eventType'?" in info.value.message
    assert info.value.column == 30


def test_unknown_function_suggests() -> None:
    with pytest.raises(PqlError) as info:
        pql.parse('person.name.firstName.startWith("J")')
    assert "Did you mean 'startsWith'?" in info.value.message


@pytest.mark.parametrize(
    ("expr", "message", "at"),
    [
        (
            'person.name.firstName.startsWith("J", person.age)',
            "must be true or false, not an integer",
            "startsWith",
        ),
        ('person.name.firstName.regexGroup(homeAddress.city, 1) = "x"', "written out", "regexGroup"),
        ("xEvent.topN(commerce.purchases.value, person.score).count() > 1", "whole number of items", "topN"),
        ("person.birthDate = date(person.age, 1, 1)", "date() takes whole numbers", "date"),
        (
            "xEvent[timestamp occurs < ^.person.score days before now]",
            "must be an integer, not a number",
            "score",
        ),
        ("xEvent.groupBy(productListItems).keys().count() > 1", "one value", "groupBy"),
        (
            "xEvent.groupBy(eventType).map((K, G) => G.count()).keys().count() > 1",
            "mapEntry(K, value)",
            "map",
        ),
        (
            "xEvent.groupBy(eventType).map((K, G) => mapEntry(G.count(), K)).keys().count() > 1",
            "group key",
            "map",
        ),
        ('mapEntry("a", 1)', "grouped map", "mapEntry"),
    ],
)
def test_arguments_of_the_wrong_shape_are_refused_where_they_are(expr: str, message: str, at: str) -> None:
    """Arguments the language needs in a given shape are refused at check time, for every evaluator,
    with the place marked."""
    with pytest.raises(PqlError) as info:
        pql.check(expr, SCHEMAS["profile"], SCHEMAS["event"])
    assert message in info.value.message
    assert info.value.column == expr.index(at) + 1 and info.value.snippet.endswith("^")


def test_type_errors() -> None:
    with pytest.raises(PqlError, match="Arithmetic needs numbers"):
        pql.check("person.name.firstName * 2 > 1", SCHEMAS["profile"], SCHEMAS["event"])
    with pytest.raises(PqlError, match="Cannot compare"):
        pql.check('person.age < "ten"', SCHEMAS["profile"], SCHEMAS["event"])
    with pytest.raises(PqlError, match="must be a condition"):
        pql.check("person.age + 1", SCHEMAS["profile"], SCHEMAS["event"])
    checked = pql.check("person.age + 1", SCHEMAS["profile"], SCHEMAS["event"], boolean=False)
    assert str(checked.result_type) == "integer"


def test_wrong_arity_and_unclosed_string() -> None:
    with pytest.raises(PqlError, match="takes 2 to 3"):
        pql.check('a.startsWith("x", true, 3)')
    with pytest.raises(PqlError, match="closing double quote"):
        pql.parse('a = "oops')


def test_errors_serialise_for_the_api() -> None:
    with pytest.raises(PqlError) as info:
        pql.parse("a = = b")
    body = info.value.to_json()
    assert body["status"] == 400 and body["report"]["line"] == 1 and body["report"]["column"] == 5


def _all_paths(doc: Any) -> None:
    pass


def _exercise(text: str) -> None:
    try:
        node = pql.parse(text)
        pql.check(node, SCHEMAS["profile"], SCHEMAS["event"])
    except PqlError:
        return
    pql.to_text(node)
    pql.eligibility(node)
    # Evaluating a checked expression never raises: bad values are null (spec §4).
    fn = pql.compile_python(node)
    profile = {"a": 1, "b": "x", "X": [1, 2], "person": {"age": 3, "tags": ["a"]}}
    events = [{"_id": "e", "timestamp": "2024-01-01T00:00:00Z", "a": [1]}, {"timestamp": "bad"}]
    fn(profile, events, pql.EvalContext())


alphabet = st.sampled_from(
    list('abXY.()[]"=<>!,:^$%*+-/0123456789 \\')
    + [
        "and ",
        "or ",
        "not ",
        "occurs ",
        "select ",
        "from ",
        "where ",
        "chain(",
        "xEvent",
        "today",
        "last ",
        "month",
        "in ",
        "let ",
    ]
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(alphabet, max_size=30).map("".join))
def test_random_text_raises_only_pql_error(text: str) -> None:
    _exercise(text)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EXAMPLES), st.integers(0, 10_000), st.integers(0, 5), st.text(max_size=3))
def test_mutated_examples_raise_only_pql_error(src: str, at: int, cut: int, insert: str) -> None:
    i = at % (len(src) + 1)
    _exercise(src[:i] + insert + src[i + cut :])


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.text(max_size=4),
    st.sampled_from(["fnApply", "literal", "fieldLookup", "varRef", "=", "and", "occurs", "chain"]),
)
json_doc = st.recursive(
    json_leaf,
    lambda c: st.one_of(
        st.lists(c, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "nodeType",
                    "fnName",
                    "params",
                    "value",
                    "literalType",
                    "fieldName",
                    "object",
                    "varName",
                    "position",
                    "method",
                    "body",
                ]
            ),
            c,
            max_size=5,
        ),
    ),
    max_leaves=15,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_doc)
def test_random_json_raises_only_pql_error(doc: Any) -> None:
    try:
        node = pql.parse_json(doc)
    except PqlError:
        return
    try:
        pql.to_text(node)
        pql.check(node)
    except PqlError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(EXAMPLES))
def test_examples_json_text_round_trip(src: str) -> None:
    node = pql.parse(src)
    assert pql.parse(pql.to_text(pql.parse_json(json.dumps(pql.to_json(node))))) == node
