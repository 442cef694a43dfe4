from __future__ import annotations

import random
from collections import Counter

import pytest
from identity_helpers import canonical

from tessera.errors import NotFound
from tessera.identity import IdentityGraph, LinkingRules, resolve_bulk
from tessera.identity.graph import GraphState
from tessera.model import Identity


def I(text: str) -> Identity:  # noqa: E743
    ns, value = text.split(":", 1)
    return Identity(ns, value)


def row(text: str) -> list[Identity]:
    return [I(p.strip()) for p in text.split(",")]


def test_links_carry_times_dataset_and_batch_and_refresh_last_seen() -> None:
    g = IdentityGraph()
    g.add_row(row("Email:a, ECID:1"), ts=100, dataset="crm", batch="b1")
    g.add_row(row("ECID:1, Email:a"), ts=200, dataset="web", batch="b2")
    (link,) = list(g.links())
    assert (link.first_seen, link.last_seen, link.dataset, link.batch) == (100, 200, "web", "b2")


def test_changes_report_the_members_as_they_were_after_their_own_row() -> None:
    g = IdentityGraph(LinkingRules(limit=3))
    first = g.add_row(row("Email:a, ECID:1")).changes
    second = g.add_row(row("ECID:1, Phone:7")).changes
    g.add_row(row("ECID:1, IDFA:d"))  # over the limit: the component is rebuilt
    assert first is not None and second is not None
    (pid,) = first.profile_ids
    assert set(first.profiles[pid]) == set(row("Email:a, ECID:1"))
    assert set(second.profiles[pid]) == set(row("Email:a, ECID:1, Phone:7"))


def test_merge_keeps_the_older_profile_id_and_records_history() -> None:
    g = IdentityGraph()
    r1 = g.add_row(row("Email:a, ECID:1"))
    r2 = g.add_row(row("Email:b, ECID:2"))
    assert r1.changes is not None and r2.changes is not None
    old, young = r1.changes.created[0], r2.changes.created[0]
    r3 = g.add_row(row("ECID:1, ECID:2"))
    assert r3.changes is not None
    assert r3.changes.merged == {young: old}
    assert set(r3.changes.profiles[old]) == set(row("Email:a, ECID:1, Email:b, ECID:2"))
    assert g.profile_id(I("Email:b")) == old
    kinds = [(h.kind, h.profile_id) for h in g.history(I("Email:b"))]
    assert kinds == [("created", old), ("created", young), ("merged", young)]


def test_refreshing_a_known_link_reports_no_change() -> None:
    g = IdentityGraph()
    g.add_row(row("Email:a, ECID:1"))
    assert g.add_row(row("Email:a, ECID:1")).changes is None
    assert g.add_row(row("Email:a")).changes is None


def test_non_people_and_partner_ids_build_no_graph() -> None:
    g = IdentityGraph(
        types={"SKU": __import__("tessera.identity", fromlist=["IdentityType"]).IdentityType.NON_PEOPLE}
    )
    result = g.add_row(row("SKU:x, Email:a"))
    assert result.changes is None and g.profile_id(I("Email:a")) is None


def test_unlink_splits_and_the_part_with_the_oldest_identity_keeps_the_id() -> None:
    g = IdentityGraph()
    g.add_row(row("CRMID:c, Email:a"), ts=1)
    g.add_row(row("Email:a, ECID:1"), ts=2)
    g.add_row(row("ECID:1, ECID:2"), ts=3)
    pid = g.profile_id(I("CRMID:c"))
    changes = g.unlink(I("Email:a"), I("ECID:1"))
    assert g.profile_id(I("CRMID:c")) == pid
    new = g.profile_id(I("ECID:1"))
    assert new is not None and new != pid and changes.split == {new: pid}
    assert set(g.members(I("ECID:2"))) == {I("ECID:1"), I("ECID:2")}
    with pytest.raises(NotFound):
        g.unlink(I("Email:a"), I("ECID:1"))


def test_unlink_leaving_a_spoke_drops_it_from_the_graph() -> None:
    g = IdentityGraph()
    g.add_row(row("CRMID:c, Email:a"))
    g.add_row(row("CRMID:c, ECID:1"))
    changes = g.unlink(I("CRMID:c"), I("ECID:1"))
    assert changes.removed == [I("ECID:1")]
    assert g.profile_id(I("ECID:1")) is None
    assert g.members(I("ECID:1")) == (I("ECID:1"),)


def test_delete_identity_recomputes_its_component() -> None:
    g = IdentityGraph()
    g.add_row(row("ECID:hub, Email:a"))
    g.add_row(row("ECID:hub, Email:b"))
    g.add_row(row("Email:b, Phone:1"))
    pid = g.profile_id(I("ECID:hub"))
    changes = g.delete_identity(I("ECID:hub"))
    assert g.profile_id(I("Email:a")) is None and g.profile_id(I("ECID:hub")) is None
    assert set(g.members(I("Email:b"))) == {I("Email:b"), I("Phone:1")}
    assert g.profile_id(I("Email:b")) == pid  # Email:b is now the oldest identity left
    assert I("Email:a") in changes.removed
    with pytest.raises(NotFound):
        g.delete_identity(I("ECID:hub"))


def test_explain_returns_the_chain_of_links() -> None:
    g = IdentityGraph()
    g.add_row(row("CRMID:c, Email:a"), ts=10, dataset="crm")
    g.add_row(row("Email:a, ECID:1"), ts=20, dataset="web")
    g.add_row(row("ECID:1, Phone:9"), ts=30, dataset="app")
    chain = g.explain(I("CRMID:c"), I("Phone:9"))
    assert [(link.dataset, link.last_seen) for link in chain] == [("crm", 10), ("web", 20), ("app", 30)]
    g.add_row(row("Email:z, ECID:z"))
    with pytest.raises(NotFound):
        g.explain(I("CRMID:c"), I("Email:z"))


def test_mapping_to_a_target_namespace() -> None:
    g = IdentityGraph()
    g.add_row(row("CRMID:c, ECID:1"), ts=10)
    g.add_row(row("CRMID:c, ECID:2"), ts=20)
    g.add_row(row("CRMID:c, Email:e"), ts=30)
    assert g.mapping(I("Email:e"), "ECID") == [(I("ECID:2"), 20), (I("ECID:1"), 10)]
    assert g.mapping(I("Email:nobody"), "ECID") == []


def test_stats_report_sizes_namespaces_and_refusals() -> None:
    g = IdentityGraph(LinkingRules(unique=frozenset({"CRMID"}), priority=("CRMID", "ECID"), limit=3))
    g.add_row(row("CRMID:Jane, ECID:1"))
    g.add_row(row("CRMID:John, ECID:1"))  # optimisation drops Jane's link
    g.add_row(row("CRMID:A, CRMID:B"))  # rejected
    for k in range(2, 5):
        g.add_row(row(f"CRMID:John, ECID:{k}"))  # limit 3 removes the oldest cookies
    s = g.stats()
    assert s.size_histogram == {3: 1}
    assert s.identities_per_namespace == {"CRMID": 1, "ECID": 2}
    assert any("unique namespace" in k for k in s.refused)
    assert s.refused["identity removed: graph limit reached"] == 2
    assert s.refused["rows rejected by linking rules"] == 1
    assert s.largest[0][1] == 3


def test_persistence_round_trip() -> None:
    rules = LinkingRules(unique=frozenset({"CRMID"}), priority=("CRMID", "Email", "ECID"), limit=4)
    g = IdentityGraph(rules)
    for text in ["CRMID:a, ECID:1", "CRMID:b, ECID:1", "ECID:1, ECID:2", "Email:x, ECID:2", "ECID:3, ECID:2"]:
        g.add_row(row(text), dataset="d", batch="b")
    state = g.to_rows()
    assert isinstance(state, GraphState)
    copy = IdentityGraph.from_rows(state, rules)
    assert canonical(copy) == canonical(g)
    # the copy keeps working the same way
    g.add_row(row("CRMID:a, ECID:2"))
    copy.add_row(row("CRMID:a, ECID:2"))
    assert canonical(copy) == canonical(g)


def test_re_resolve_applies_new_rules_and_keeps_untouched_ids() -> None:
    g = IdentityGraph()
    g.add_row(row("CRMID:Jane, ECID:1"), ts=1)
    g.add_row(row("CRMID:John, ECID:1"), ts=2)
    g.add_row(row("CRMID:Ann, Email:ann"), ts=3)
    shared, ann = g.profile_id(I("ECID:1")), g.profile_id(I("CRMID:Ann"))
    assert len(g.members(I("ECID:1"))) == 3
    changes = g.re_resolve(LinkingRules(unique=frozenset({"CRMID"}), priority=("CRMID", "ECID")))
    assert set(g.members(I("ECID:1"))) == {I("CRMID:John"), I("ECID:1")}
    assert g.profile_id(I("CRMID:Jane")) is None and I("CRMID:Jane") in changes.removed
    assert g.profile_id(I("ECID:1")) == shared and g.profile_id(I("CRMID:Ann")) == ann
    assert ann not in changes.profiles


def test_set_rules_applies_to_new_data_only() -> None:
    g = IdentityGraph()
    g.add_row(row("CRMID:Jane, ECID:1"))
    g.add_row(row("CRMID:John, ECID:1"))
    g.set_rules(LinkingRules(unique=frozenset({"CRMID"})))
    assert len(g.members(I("ECID:1"))) == 3
    g.add_row(row("CRMID:Ann, Email:ann"))
    g.add_row(row("CRMID:Bob, Email:ann"))
    assert set(g.members(I("Email:ann"))) == {I("CRMID:Bob"), I("Email:ann")}


def test_junk_value_shared_by_ten_thousand_rows_stays_within_the_limit() -> None:
    rows = [row(f"Email:user{i}@x, Phone:000-0000") for i in range(10_000)]
    g = IdentityGraph(LinkingRules(limit=50))
    for r in rows:
        g.add_row(r)
    assert max(len(m) for m in g.components().values()) <= 50
    bulk = IdentityGraph(LinkingRules(limit=50))
    resolve_bulk(bulk, rows)
    assert max(len(m) for m in bulk.components().values()) <= 50
    assert canonical(bulk) == canonical(g)


def test_component_state_and_history_cursor_for_the_store() -> None:
    g = IdentityGraph(LinkingRules(unique=frozenset({"CRMID"})))
    first = g.add_row(row("CRMID:a, ECID:1"), ts=5, dataset="web").changes
    assert first is not None
    pid = first.created[0]
    state = g.component_state(pid)
    assert state is not None
    profile, members, links = state
    assert profile.profile_id == pid and {(m.namespace, m.id) for m in members} == {
        ("CRMID", "a"),
        ("ECID", "1"),
    }
    assert [(lr.first_seen, lr.dataset) for lr in links] == [(5, "web")]
    mark = g.history_length()
    g.add_row(row("CRMID:b, ECID:1"), ts=6)  # the optimisation moves ECID:1 to b
    assert g.history_since(mark) == g.profile_history()[mark:]
    assert g.component_state("no-such-id") is None
    assert sum(g.refused_counts().values()) == 1


def test_rows_of_one_namespace_sequence_are_judged_by_their_values_each_time() -> None:
    # the engine remembers per sequence of namespaces what the namespaces alone decide; rows of
    # the same sequence must still be de-duplicated, rejected and given a primary by their values
    rules = LinkingRules.of(["CRMID"], ["CRMID", "GAID", "ECID"], None)
    g = IdentityGraph(rules)
    first = g.add_row(row("ECID:1, ECID:2, CRMID:a"))
    assert (str(first.primary), first.rejected) == ("CRMID:a", None)
    duplicate = g.add_row(row("ECID:3, ECID:3, CRMID:b"))  # exact duplicate: one link, not a self-link
    assert str(duplicate.primary) == "CRMID:b"
    assert g.members(I("ECID:3")) == (I("CRMID:b"), I("ECID:3"))
    top_twice = row("GAID:x, GAID:y, ECID:4")
    assert g.add_row(top_twice).rejected is not None  # GAID is the row's highest priority
    assert g.add_row(row("GAID:z, GAID:z, ECID:5")).primary == I("GAID:z")  # same shape, one value
    declared = g.add_row(row("ECID:6, ECID:7, CRMID:c"), primary=I("ECID:7"), record=True)
    assert declared.primary == I("ECID:7")
    g.set_rules(LinkingRules.of(["ECID"], ["ECID", "CRMID"], None))  # new rules: nothing remembered
    assert g.add_row(row("ECID:8, ECID:9, CRMID:d")).rejected is not None


def test_stats_equal_a_count_over_the_components_after_random_rows_and_deletes() -> None:
    rng = random.Random(5)
    g = IdentityGraph(LinkingRules(unique=frozenset({"CRMID"}), priority=("CRMID", "Email", "ECID"), limit=6))
    for _ in range(3000):
        ids = {f"{rng.choice(['CRMID', 'Email', 'ECID', 'ECID'])}:{rng.randrange(400)}" for _ in range(3)}
        g.add_row(row(", ".join(sorted(ids))))
        if rng.random() < 0.05:
            victim = I(f"ECID:{rng.randrange(400)}")
            if g.profile_id(victim) is not None:
                g.delete_identity(victim)
    comps = g.components()
    s = g.stats(top=7)
    assert s.profiles == len(comps) and s.identities == sum(map(len, comps.values()))
    assert s.size_histogram == dict(sorted(Counter(map(len, comps.values())).items()))
    per_ns = Counter(i.namespace for members in comps.values() for i in members)
    assert s.identities_per_namespace == dict(sorted(per_ns.items()))
    assert s.largest == sorted(((pid, len(m)) for pid, m in comps.items()), key=lambda p: (-p[1], p[0]))[:7]


def test_values_since_a_position_are_only_the_new_ones_of_that_namespace() -> None:
    g = IdentityGraph()
    g.add_row(row("Email:b, ECID:1"))
    g.add_row(row("Email:a, ECID:2"))
    first, at = g.values("Email")
    assert first == ["b", "a"]
    assert g.values("Email", at) == ([], at)
    g.add_row(row("Email:c, ECID:3, Phone:9"))
    new, later = g.values("Email", at)
    assert new == ["c"] and later > at
    assert g.values("Phone", at)[0] == ["9"] and g.values("Nope") == ([], later)
