"""The streaming evaluator's shared event index (eventType groups, time-sorted events, windows
bisected on sorted times) gives DuckDB's answers on longer event lists with ties, missing types
and several segments sharing one evaluation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_differential import NOW, _agree, profiles

from tessera import pql
from tessera.pql.to_python import event_types

TYPES = ["addToCart", "purchase", "view"]


def _event(i: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda minutes, et, value, sku: {
            "_id": f"e{i}",
            # few distinct minutes: many timestamp ties
            "timestamp": (NOW - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
            **({"eventType": et} if et is not None else {}),
            **({"commerce": {"purchases": {"value": value}}} if value is not None else {}),
            "productListItems": [{"SKU": sku}] if sku else [],
        },
        st.sampled_from([-30, 0, 30, 90, 60 * 5, 60 * 23, 60 * 25, 60 * 24 * 3, 60 * 24 * 10]),
        st.one_of(st.none(), st.sampled_from(TYPES)),
        st.one_of(st.none(), st.sampled_from([0, 1.5, 5])),
        st.sampled_from([None, "PS", "LR"]),
    )


events = st.integers(0, 25).flatmap(lambda n: st.tuples(*[_event(i) for i in range(n)]).map(list))

WINDOWS = ["< 24 hours before now", "< 3 days before now", "today", "> 2 hours before now", "this week"]
t = st.sampled_from(TYPES)
w = st.sampled_from(WINDOWS)
index_exprs = st.one_of(
    st.builds(lambda a: f'xEvent[eventType = "{a}"].count() > 2', t),
    st.builds(lambda a, x: f'xEvent[eventType = "{a}" and timestamp occurs {x}].count() > 1', t, w),
    st.builds(
        lambda a, x: f'xEvent["{a}" = eventType and timestamp occurs {x}].sum(commerce.purchases.value) > 2',
        t,
        w,
    ),
    st.builds(
        lambda a, x: f'select X from xEvent where X.eventType = "{a}" and X.timestamp occurs {x}', t, w
    ),
    st.builds(
        lambda a, x: f'not (select X from xEvent where X.timestamp occurs {x} and X.eventType = "{a}")', t, w
    ),
    st.builds(
        lambda a, s: (
            f'exists E from xEvent where E.eventType = "{a}", I from E.productListItems where I.SKU = "{s}"'
        ),
        t,
        st.sampled_from(["PS", "LR"]),
    ),
    st.builds(
        lambda a, b, x, y, n: (
            f'chain(xEvent, timestamp, [A: WHAT(eventType = "{a}") WHEN({x}), B: WHAT(eventType = "{b}") '
            f"WHEN({y}) COUNT({n})])"
        ),
        t,
        t,
        w,
        w,
        st.sampled_from([1, 2]),
    ),
    st.builds(
        lambda a, b, c: (
            f'chain(xEvent, timestamp, [A: WHAT(eventType = "{a}"), B: WHAT(eventType = "{b}" and '
            f'commerce.purchases.value > 1), C: WHAT(eventType = "{c}")])'
        ),
        t,
        t,
        t,
    ),
    st.builds(
        lambda a, x: f'chain(xEvent, timestamp, [A: WHAT(eventType = "{a}") WHEN({x}) COUNT(2)])', t, w
    ),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(
    exprs=st.lists(index_exprs, min_size=2, max_size=8),
    profs=st.lists(st.tuples(profiles, events), min_size=1, max_size=3),
)
def test_indexed_paths_agree_with_duckdb(
    exprs: list[str], profs: list[tuple[dict[str, Any], list[Any]]]
) -> None:
    # the segments of one profile share one evaluation context and events list, as in streaming
    _agree(exprs, [(f"p{i}", p, e) for i, (p, e) in enumerate(profs)])


def test_event_types_read_by_an_expression() -> None:
    def types(text: str) -> frozenset[str] | None:
        return event_types(pql.parse(text))

    assert types("person.age > 3") == frozenset()
    assert types('xEvent[eventType = "a" and timestamp occurs today].count() > 1') == {"a"}
    chain = 'chain(xEvent, timestamp, [A: WHAT(eventType = "x"), B: WHAT(eventType = "y")])'
    assert types(chain) == {"x", "y"}
    assert types(
        'exists E from xEvent where E.eventType = "b", I from E.productListItems where I.SKU = "s"'
    ) == {"b"}
    # anything that can see other events: every event type matters
    assert types("xEvent.count() > 1") is None
    assert types('forall X from xEvent where X.eventType = "p"') is None
    assert types('xEvent[eventType = "a" or eventType = "b"].count() > 0') is None
    assert (
        types('chain(xEvent, timestamp, [A: WHAT(eventType = "x"), B: WHAT(commerce.purchases.value > 1)])')
        is None
    )
