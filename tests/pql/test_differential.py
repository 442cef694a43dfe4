"""Parity: generated expressions give the same answer in the Python evaluator and in DuckDB SQL
(STYLE.md principle 7). Disagreements found are kept in ``REGRESSIONS`` below."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tessera import pql

NOW = datetime(2024, 5, 15, 12, 30, tzinfo=UTC)  # a Wednesday

SCHEMAS = json.loads((Path(__file__).resolve().parents[1] / "data" / "pql" / "schemas.json").read_text())
P, EV = SCHEMAS["profile"], SCHEMAS["event"]

# ---- data ---------------------------------------------------------------------------------------
words = st.sampled_from(["John", "john", "Johnny", "UpJohn", "Jahn", "", "a%b", "Ann"])
maybe = lambda s: st.one_of(st.none(), s)  # noqa: E731
nums = st.sampled_from([0, 1, 2, 5, 7, -3, 10, 1.5, 2.25])
ints = st.integers(-5, 40)
tags = st.lists(st.sampled_from(["a", "b", "c", "A"]), max_size=4)


def _opt_dict(**fields: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


profiles = _opt_dict(
    person=_opt_dict(
        name=_opt_dict(firstName=maybe(words), lastName=maybe(words)),
        age=maybe(ints),
        score=maybe(nums),
        vip=maybe(st.booleans()),
        tags=maybe(tags),
        lucky=maybe(st.lists(ints, max_size=4)),
        birthDate=maybe(st.sampled_from(["2000-01-01", "1990-05-15", "2024-05-15"])),
    ),
    homeAddress=_opt_dict(countryCode=maybe(st.sampled_from(["US", "CA", "us"])), city=maybe(words)),
    workAddress=_opt_dict(countryCode=maybe(st.sampled_from(["US", "CA"]))),
    segmentMembership=st.fixed_dictionaries(
        {
            "ups": st.dictionaries(
                st.sampled_from(["s1", "s2"]),
                st.fixed_dictionaries({"status": st.sampled_from(["realized", "existing", "exited"])}),
                max_size=2,
            )
        }
    ),
)
items = st.lists(
    _opt_dict(SKU=maybe(st.sampled_from(["PS", "LR", "ps"])), priceTotal=maybe(nums), quantity=maybe(ints)),
    max_size=3,
)


def _event(i: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda minutes, et, value, pli: {
            "_id": f"e{i}",
            "timestamp": (NOW - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
            "eventType": et,
            **({"commerce": {"purchases": {"value": value}}} if value is not None else {}),
            **({"productListItems": pli} if pli is not None else {}),
        },
        st.integers(-600, 60 * 24 * 40),
        maybe(st.sampled_from(["addToCart", "purchase", "view"])),
        maybe(nums),
        maybe(items),
    )


events = st.integers(0, 4).flatmap(lambda n: st.tuples(*[_event(i) for i in range(n)]).map(list))

# ---- expressions --------------------------------------------------------------------------------
S = st.sampled_from
str_field = S(
    ["person.name.firstName", "homeAddress.countryCode", "homeAddress.city", "workAddress.countryCode"]
)
num_field = S(["person.age", "person.score", "_tenant.loyaltyPoints"])
str_lit = S(['"John"', '"john"', '"US"', '"Jo"', '"hn"', '""', '"CA"'])
num_lit = S(["0", "1", "2", "5", "-3", "1.5", "30"])
cmp = S(["=", "!=", "<", "<=", ">", ">="])
ev_time = S(
    [
        "< 3 hours before now",
        "<= 2 days before now",
        "today",
        "yesterday",
        "this week",
        "last month",
        "before today",
        "after yesterday",
        "> 1 weeks before now",
        "between date(2024, 5, 1) and date(2024, 5, 14)",
        "this month",
        "on date(2024, 5, 15)",
    ]
)


def profile_atom() -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda f, o, v: f"{f} {o} {v}", str_field, S(["=", "!="]), str_lit),
        st.builds(lambda f, o, v: f"{f} {o} {v}", num_field, cmp, num_lit),
        st.builds(
            lambda f, a, v, o, w: f"{f} {a} {v} {o} {w}",
            num_field,
            S(["+", "-", "*", "/", "%"]),
            S(["2", "0", "person.age", "3"]),
            cmp,
            num_lit,
        ),
        st.builds(
            lambda f, fn, v, flag: f"{f}.{fn}({v}{flag})",
            str_field,
            S(
                [
                    "startsWith",
                    "endsWith",
                    "contains",
                    "doesNotStartWith",
                    "doesNotEndWith",
                    "doesNotContain",
                    "equals",
                    "notEqualTo",
                ]
            ),
            str_lit,
            S(["", ", false", ", true"]),
        ),
        st.builds(lambda f, p: f"{f} like {p}", str_field, S(['"J%"', '"%hn"', '"J_hn"', '"%"', '"_"'])),
        st.builds(lambda f, p: f"{f}.matches({p})", str_field, S(['"^J"', '"n$"', '"o+"', '"(?i)john"'])),
        st.builds(lambda f, op: f"{f} {op} [1, 5, 30, -3]", num_field, S(["in", "notIn"])),
        st.builds(lambda v: f"{v} in person.tags", S(['"a"', '"A"'])),
        st.builds(
            lambda fn, lst: f"person.tags.{fn}({lst})",
            S(["intersects", "subsetOf", "supersetOf"]),
            S(['["a", "b"]', '["c"]', "[]"]),
        ),
        st.builds(lambda v: f"person.tags.includes({v})", S(['"a"', '"c"'])),
        st.builds(
            lambda lst, tail: f"person.tags.intersection({lst}){tail}",
            S(['["a", "b"]', '["c", "A"]', "[]"]),
            S(["", ".count() > 1", ".count() = 0", '.head() = "a"']),
        ),
        st.builds(
            lambda f, p, n, v: f"{f}.regexGroup({p}, {n}) = {v}",
            str_field,
            # "J(x)?o": group 1 takes no part in a match of "Jo" (regression: the evaluator gave
            # null where SQL gives "")
            S(['"J(o|a)hn"', '"(o+)"', '"^(J)"', '"(o)"', '"J(x)?o"']),
            S(["0", "1", "2"]),
            S(['"o"', '""']),
        ),
        st.builds(
            lambda m, k: f"segmentMembership.ups.{m}",
            S(
                [
                    "keys().count() = 2",
                    'get("s1").status = "realized"',
                    'values()[status = "exited"].count() = 1',
                ]
            ),
            st.none(),
        ),
        S(
            [
                "person.vip",
                "person.vip = true",
                "homeAddress",
                "person.tags",
                "homeAddress.city",
                "person.name.firstName.isNull()",
                "homeAddress.isNotNull()",
                'inSegment("s1")',
                'inSegment("s2")',
                "person.lucky.sum() > 3",
                "person.lucky.count() = 0",
                "person.lucky.max() >= 5",
                "person.lucky.min() < 0",
                "person.lucky.average() > 2",
                "person.tags.distinct().count() > 1",
                "person.age.isNotNull()",
                "(person.score + 1) * 2 > 4",
                'person.tags.head() = "a"',
                "person.lucky.head() > 2",
                # a lambda in value position is applied to the profile
                '(P) => P.homeAddress.countryCode = "US"',
                # filters and from-clauses over a single object range over it alone
                'person.name[firstName = "John"].count() = 1',
                'homeAddress[countryCode = "US"]',
                'exists X from homeAddress where X.countryCode.equals("us", false)',
                # dates and time words as values
                "person.birthDate = date(2000, 1, 1)",
                "person.birthDate < date(1995, 1, 1)",
                "person.birthDate >= this year",
                # an object literal is a defined value
                '{"age": person.age, "n": 1}',
            ]
        ),
        # case flags read from the data
        st.builds(
            lambda f, fn, v: f"{f}.{fn}({v}, person.vip)",
            str_field,
            S(["startsWith", "contains", "doesNotEndWith", "equals", "notEqualTo"]),
            str_lit,
        ),
    )


def event_cond(var: str) -> st.SearchStrategy[str]:
    pre = f"{var}." if var else ""
    return st.one_of(
        st.builds(lambda t: f'{pre}eventType = "{t}"', S(["addToCart", "purchase", "view"])),
        st.builds(lambda o, v: f"{pre}commerce.purchases.value {o} {v}", cmp, num_lit),
        st.builds(lambda w: f"{pre}timestamp occurs {w}", ev_time),
        st.builds(lambda s: f'{pre}productListItems[SKU = "{s}"]', S(["PS", "LR"])),
        st.builds(lambda n: f"{pre}productListItems.sum(priceTotal) > {n}", S(["0", "2", "5"])),
        st.just(f"{pre}productListItems.count() > 1"),
        st.just('^.homeAddress.countryCode = "US"' if not var else f'{var}.eventType.startsWith("add")'),
    )


def event_atom() -> st.SearchStrategy[str]:
    c = event_cond("")
    cx = event_cond("X")
    both = st.one_of(
        c, st.builds(lambda a, b: f"{a} and {b}", c, c), st.builds(lambda a, b: f"{a} or {b}", c, c)
    )
    return st.one_of(
        st.builds(lambda x, k: f"xEvent[{x}].count() > {k}", both, S(["0", "1"])),
        st.builds(lambda x: f"select X from xEvent where {x}", cx),
        st.builds(lambda x: f"exists X from xEvent where {x}", cx),
        st.builds(lambda x: f"forall X from xEvent where {x}", cx),
        st.builds(
            lambda x, s: f'exists X from xEvent where {x}, I from X.productListItems where I.SKU = "{s}"',
            cx,
            S(["PS", "LR"]),
        ),
        st.builds(
            lambda x, f, n: f"xEvent[{x}].{f}(commerce.purchases.value) > {n}",
            c,
            S(["sum", "min", "max", "average"]),
            S(["0", "1.5", "5"]),
        ),
        st.builds(lambda n: f"xEvent.productListItems.sum(priceTotal) > {n}", S(["0", "3", "10"])),
        st.builds(
            lambda fn, n, tail: f"xEvent.{fn}(commerce.purchases.value, {n}){tail}",
            S(["topN", "bottomN"]),
            S(["1", "2"]),
            S([".sum(commerce.purchases.value) > 5", ".count() = 1", '.head().eventType = "purchase"']),
        ),
        st.builds(lambda n: f"xEvent.map(commerce.purchases.value).count() > {n}", S(["0", "1"])),
        st.builds(lambda a, w: f"chain(xEvent, timestamp, [A: WHAT({a}) WHEN({w})])", c, ev_time),
        st.builds(
            lambda a, b, n: f"chain(xEvent, timestamp, [A: WHAT({a}), B: WHAT({b}) COUNT({n})])",
            c,
            c,
            S(["1", "2"]),
        ),
        st.builds(
            lambda a, b, w, c2, n: (
                f"chain(xEvent, timestamp, [A: WHAT({a}), B: WHAT({b}) WHEN({w}), C: WHAT({c2}) COUNT({n})])"
            ),
            c,
            c,
            ev_time,
            c,
            S(["1", "2"]),
        ),
        st.builds(
            lambda w: f"sum X.commerce.purchases.value over X from xEvent where X.timestamp occurs {w}",
            ev_time,
        ).map(lambda s: f"({s}) > 2"),
        # several variables: every combination meeting the conditions
        st.builds(
            lambda fn, x, n: (
                f"({fn} X.commerce.purchases.value + Y.priceTotal over X from xEvent where {x}, "
                f'Y from X.productListItems where Y.SKU = "PS") > {n}'
            ),
            S(["sum", "min", "max", "average"]),
            cx,
            S(["0", "2", "5"]),
        ),
        # a count read from the data (negative ones included)
        st.builds(
            lambda fn: f"xEvent.{fn}(commerce.purchases.value, person.age).count() > 1",
            S(["topN", "bottomN"]),
        ),
        # grouped maps
        st.builds(
            lambda agg, k, n: f"xEvent.groupBy(eventType).map((K, G) => mapEntry(K, G.{agg})).get({k}) > {n}",
            S(["count()", "sum(commerce.purchases.value)", "max(commerce.purchases.value)"]),
            S(['"purchase"', '"view"']),
            S(["0", "1", "4"]),
        ),
        st.builds(
            lambda g, n: f"{g}.keys().count() = {n}",
            S(
                [
                    "xEvent.groupBy(eventType)",
                    "xEvent.productListItems.groupBy(quantity)",
                    "xEvent.productListItems.groupBy(SKU)",
                ]
            ),
            S(["0", "1", "2"]),
        ),
        # occurs relative to another event, and with an amount read from the data
        st.builds(
            lambda c, n, u, d: (
                f"exists X from xEvent, Y from xEvent where Y.timestamp occurs {c} {n} {u} {d} X.timestamp"
            ),
            S(["=", "<", ">=", "<="]),
            S(["0", "1", "2"]),
            S(["hours", "days", "weeks", "months", "years", "decades"]),
            S(["after", "before"]),
        ),
        st.builds(
            lambda c, u: f"exists X from xEvent where X.timestamp occurs {c} person.age {u} before now",
            S(["=", "<", ">"]),
            S(["hours", "days", "weeks"]),
        ),
        # time words and dates as values
        st.builds(
            lambda op, t: f"xEvent[timestamp {op} {t}].count() > 0",
            S(["<", ">=", "="]),
            S(["today", "now", "this month", "last week", "date(2024, 5, 10)"]),
        ),
    )


def bool_expr() -> st.SearchStrategy[str]:
    atom = st.one_of(profile_atom(), event_atom())
    return st.recursive(
        atom,
        lambda inner: st.one_of(
            st.builds(lambda a, b: f"({a}) and ({b})", inner, inner),
            st.builds(lambda a, b: f"({a}) or ({b})", inner, inner),
            st.builds(lambda a: f"not ({a})", inner),
            st.builds(lambda a, b, c: f"if({a}, {b}, {c})", inner, inner, inner),
        ),
        max_leaves=4,
    )


def _agree(exprs: list[str], rows: list[tuple[str, dict[str, Any], list[dict[str, Any]]]]) -> None:
    checked = {f"s{i}": pql.check(e, P, EV) for i, e in enumerate(exprs)}
    con = duckdb.connect()
    pql.load_relation(con, "profiles", P, EV, rows)
    sql = pql.compile_sql(checked, "profiles", NOW)
    got = {r[0]: r[1:] for r in con.execute(sql).fetchall()}
    # the batch path: the same query over a relation holding only the fields it reads
    batch = pql.compile_batch(checked, "pruned", NOW)
    pql.load_relation(con, "pruned", batch.profile_schema, batch.event_schema, rows)
    pruned = {r[0]: r[1:] for r in con.execute(batch.sql).fetchall()}
    ctx = pql.EvalContext(now=NOW)
    for pid, prof, evs in rows:
        py = tuple(pql.compile_python(c)(prof, evs, ctx) for c in checked.values())
        for e, a, b, c in zip(exprs, py, got[pid], pruned[pid], strict=False):
            assert a == b, f"{e!r} on {prof!r} / {evs!r}: python={a} sql={b}"
            assert b == c, f"{e!r} on {prof!r} / {evs!r}: full relation={b} pruned={c}"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(
    exprs=st.lists(bool_expr(), min_size=1, max_size=6),
    profs=st.lists(st.tuples(profiles, events), min_size=1, max_size=4),
)
def test_python_and_duckdb_agree(
    exprs: list[str], profs: list[tuple[dict[str, Any], list[dict[str, Any]]]]
) -> None:
    rows = [(f"p{i}", p, e) for i, (p, e) in enumerate(profs)]
    _agree(exprs, rows)


REGRESSIONS: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = [
    # Disagreements hypothesis found, kept here after the fix (expression, profile, events).
    # A capture group that takes no part in the match: "" in both (the evaluator gave null).
    ('person.name.firstName.regexGroup("J(x)?o", 1) = ""', {"person": {"name": {"firstName": "John"}}}, []),
    # if() with branches of different types (array vs boolean) failed to bind in DuckDB.
    (
        'if("a" in person.tags, select X from xEvent where X.productListItems.count() > 1, '
        'person.name.firstName = "John")',
        {},
        [],
    ),
    (
        'if("a" in person.tags, select X from xEvent where X.eventType.startsWith("add"), '
        'person.name.firstName = "John")',
        {"person": {"tags": ["a"]}},
        [{"_id": "e", "eventType": "addToCart", "timestamp": "2024-05-15T10:00:00Z"}],
    ),
]

EMPTY_CASES = [
    ("person.age / 0 > 1", {"person": {"age": 4}}, []),
    ('xEvent[eventType = "view"].min(commerce.purchases.value) > 0', {}, []),
    ("not (person.age != 3)", {}, []),
    ('forall X from xEvent where X.eventType = "view"', {}, []),
    ("person.tags", {"person": {"tags": []}}, []),
]


@pytest.mark.parametrize(("expr", "profile", "evs"), REGRESSIONS + EMPTY_CASES)
def test_regressions_agree(expr: str, profile: dict[str, Any], evs: list[dict[str, Any]]) -> None:
    _agree([expr], [("p0", profile, evs)])
