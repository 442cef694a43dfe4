from __future__ import annotations

import pytest

from tessera.errors import InvalidInput
from tessera.identity import LinkingRules
from tessera.identity.namespaces import DEFAULT_NAMESPACES, IdentityType, builds_graph, namespace_types
from tessera.identity.rules import choose_primary, row_rejection
from tessera.model import Identity


def ids(text: str) -> list[Identity]:
    return [Identity(*p.strip().split(":", 1)) for p in text.split(",")]


# The namespace-priority example table of spec/aep.md §c5.
@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("ECID:e", "ECID:e"),
        ("ECID:e, IDFA:i", "IDFA:i"),
        ("CRMID:c, ECID:e", "CRMID:c"),
        ("CRMID:c, ECID:e, AAID:a", "CRMID:c"),
        ("CRMID:c, GAID:g, ECID:e", "CRMID:c"),
    ],
)
def test_primary_is_the_highest_priority_namespace(row: str, expected: str) -> None:
    rules = LinkingRules(priority=("CRMID", "IDFA", "GAID", "ECID", "AAID"))
    assert str(choose_primary(ids(row), rules)) == expected


def test_unlisted_namespaces_rank_below_listed_then_by_stable_key() -> None:
    rules = LinkingRules(priority=("ECID",))
    assert str(choose_primary(ids("Phone:2, ECID:e, Email:1"), rules)) == "ECID:e"
    assert str(choose_primary(ids("Phone:2, Email:1"), rules)) == "Email:1"


# The rejected-row examples of §c5 with CRMID(1, unique) > GAID(2) > ECID(3).
@pytest.mark.parametrize(
    "row", ["GAID:a, GAID:b, ECID:e", "CRMID:a, CRMID:b, GAID:g", "CRMID:c, CRMID:d, GAID:a, GAID:b"]
)
def test_documented_rejected_rows(row: str) -> None:
    rules = LinkingRules(unique=frozenset({"CRMID"}), priority=("CRMID", "GAID", "ECID"))
    reason = row_rejection(ids(row), rules)
    assert reason is not None and reason.startswith("Rejected:")


def test_two_lower_priority_values_are_fine_when_top_namespace_is_single() -> None:
    rules = LinkingRules(unique=frozenset({"CRMID"}), priority=("CRMID", "GAID", "ECID"))
    assert row_rejection(ids("CRMID:c, GAID:a, GAID:b"), rules) is None


def test_two_values_of_a_unique_namespace_are_rejected_even_without_priority() -> None:
    reason = row_rejection(ids("CRMID:Alice, CRMID:Bob"), LinkingRules(unique=frozenset({"CRMID"})))
    assert reason is not None and "unique namespace CRMID" in reason


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidInput):
        LinkingRules(priority=("CRMID", "CRMID"))
    with pytest.raises(InvalidInput):
        LinkingRules(limit=1)


def test_namespaces_and_types() -> None:
    codes = {ns.code for ns in DEFAULT_NAMESPACES}
    assert {"ECID", "Email", "Phone", "IDFA", "GAID", "CRMID", "loginID"} <= codes
    types = namespace_types()
    assert types["ECID"] is IdentityType.COOKIE and types["IDFA"] is IdentityType.DEVICE
    assert not builds_graph(IdentityType.PARTNER) and not builds_graph(IdentityType.NON_PEOPLE)
    ecid = next(ns for ns in DEFAULT_NAMESPACES if ns.code == "ECID")
    assert ecid.id == 4 and ecid.builds_graph
