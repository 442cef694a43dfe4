"""The demo generator: deterministic, exact counts, realistic identity situations."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest

from tessera.demo import REFERENCE_TIME, generate
from tessera.model import Identity, parse_time

PEOPLE = 1500  # two cohorts, one partial


@pytest.fixture(scope="module")
def demo_records() -> dict[str, list[dict[str, Any]]]:
    demo = generate(PEOPLE, seed=11)
    return {d.name: list(d.records()) for d in demo.datasets}


def _identities(rec: dict[str, Any]) -> list[Identity]:
    return [Identity(ns, e["id"]) for ns, lst in rec.get("identityMap", {}).items() for e in lst]


def test_same_seed_gives_identical_records() -> None:
    a = generate(300, seed=5)
    b = generate(300, seed=5)
    for da, db in zip(a.datasets, b.datasets, strict=True):
        assert list(da.records()) == list(db.records()), da.name


def test_other_seed_gives_other_records() -> None:
    a = next(iter(generate(50, seed=1).dataset("crm_profiles")))
    b = next(iter(generate(50, seed=2).dataset("crm_profiles")))
    assert a["identityMap"] != b["identityMap"]


def test_records_do_not_depend_on_population_size() -> None:
    # The first cohort (1000 people) is the same whatever the total.
    small = list(generate(1000, seed=3).dataset("crm_profiles").records())
    large = list(generate(2500, seed=3).dataset("crm_profiles").records())[:1000]
    assert small == large


@pytest.mark.parametrize("people", [0, 1, 7, 1001])
def test_counts_are_exact(people: int) -> None:
    demo = generate(people, seed=9)
    counts = demo.counts()
    assert counts["crm_profiles"] == people
    for d in demo.datasets:
        assert sum(1 for _ in d.records()) == counts[d.name], d.name


def test_dataset_specs() -> None:
    demo = generate(10)
    classes = {d.name: d.xdm_class for d in demo.datasets}
    assert classes == {
        "crm_profiles": "profile",
        "loyalty_members": "profile",
        "web_events": "experienceevent",
        "login_events": "experienceevent",
        "mobile_events": "experienceevent",
        "offline_purchases": "experienceevent",
        "call_center": "experienceevent",
    }
    with pytest.raises(KeyError):
        demo.dataset("nope")


def test_every_event_has_unique_id_and_utc_timestamp_in_window(
    demo_records: dict[str, list[dict[str, Any]]],
) -> None:
    start = REFERENCE_TIME - timedelta(days=90)
    ids: set[str] = set()
    n = 0
    for name, recs in demo_records.items():
        for r in recs:
            assert r["_id"] not in ids
            ids.add(r["_id"])
            n += 1
            if name in ("crm_profiles", "loyalty_members"):
                assert "timestamp" not in r
                continue
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["timestamp"]), r["timestamp"]
            assert start <= parse_time(r["timestamp"]) < REFERENCE_TIME
            assert r["eventType"]
    assert len(ids) == n


def test_ecids_are_38_digits_and_identity_entries_are_well_formed(
    demo_records: dict[str, list[dict[str, Any]]],
) -> None:
    seen = 0
    for recs in demo_records.values():
        for r in recs:
            primaries = 0
            for ns, lst in r["identityMap"].items():
                for e in lst:
                    assert set(e) == {"id", "primary", "authenticatedState"}
                    primaries += e["primary"]
                    if ns == "ECID":
                        assert re.fullmatch(r"[1-9]\d{37}", e["id"]), e["id"]
                        seen += 1
            assert primaries == 1
    assert seen > 10_000


def test_crm_profiles_use_standard_xdm_fields(demo_records: dict[str, list[dict[str, Any]]]) -> None:
    crm = demo_records["crm_profiles"]
    r = crm[0]
    assert set(r["identityMap"]) == {"CRMID", "Email", "Phone"}
    assert r["person"]["name"]["firstName"] and r["person"]["name"]["lastName"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", r["person"]["birthDate"])
    assert r["person"]["gender"] in ("female", "male")
    assert set(r["homeAddress"]) == {"city", "country", "countryCode", "postalCode"}
    assert r["personalEmail"]["address"] == r["identityMap"]["Email"][0]["id"]
    assert r["mobilePhone"]["number"] == r["identityMap"]["Phone"][0]["id"]
    parse_time(r["extSourceSystemAudit"]["lastUpdatedDate"])
    members = [x for x in crm if "_tessera" in x]
    assert 0.4 < len(members) / len(crm) < 0.8
    assert all(set(x["_tessera"]["loyalty"]) == {"tier", "points"} for x in members)


def test_web_events_cover_commerce_types(demo_records: dict[str, list[dict[str, Any]]]) -> None:
    web = demo_records["web_events"]
    types = {r["eventType"] for r in web}
    assert types == {
        "web.webpagedetails.pageViews",
        "commerce.productViews",
        "commerce.productListAdds",
        "commerce.purchases",
    }
    for r in web:
        assert r["web"]["webPageDetails"]["URL"].startswith("https://")
        assert r["environment"]["browserDetails"]["userAgent"]
        assert set(r["identityMap"]) == {"ECID"}
        if r["eventType"] == "commerce.purchases":
            items = r["productListItems"]
            assert all({"SKU", "name", "quantity", "priceTotal"} <= set(i) for i in items)
            assert r["commerce"]["order"]["priceTotal"] == pytest.approx(sum(i["priceTotal"] for i in items))


def test_logins_link_ecid_to_crmid_and_other_datasets_have_their_ids(
    demo_records: dict[str, list[dict[str, Any]]],
) -> None:
    assert all(set(r["identityMap"]) == {"ECID", "CRMID"} for r in demo_records["login_events"])
    mobile_ns = {frozenset(r["identityMap"]) for r in demo_records["mobile_events"]}
    assert mobile_ns <= {
        frozenset(s)
        for s in (("ECID", "IDFA"), ("ECID", "GAID"), ("ECID", "IDFA", "CRMID"), ("ECID", "GAID", "CRMID"))
    }
    assert any("CRMID" in r["identityMap"] for r in demo_records["mobile_events"])
    offline = {frozenset(r["identityMap"]) for r in demo_records["offline_purchases"]}
    assert offline == {frozenset({"CRMID"}), frozenset({"Email"}), frozenset({"CRMID", "Email"})}
    assert all(r["_tessera"]["store"]["storeId"] for r in demo_records["offline_purchases"])
    assert all("Phone" in r["identityMap"] for r in demo_records["call_center"])


def test_anonymous_sessions_exist(demo_records: dict[str, list[dict[str, Any]]]) -> None:
    gt = generate(PEOPLE, seed=11).ground_truth()
    web_ecids = {i for r in demo_records["web_events"] for i in _identities(r)}
    login_ecids = {i for r in demo_records["login_events"] for i in _identities(r) if i.namespace == "ECID"}
    anon = web_ecids - login_ecids
    assert anon and anon <= gt.anonymous
    assert gt.anonymous <= web_ecids


def _crmids_per_identity(records: list[dict[str, Any]]) -> dict[Identity, set[str]]:
    out: dict[Identity, set[str]] = defaultdict(set)
    for r in records:
        crm = [e["id"] for e in r["identityMap"].get("CRMID", [])]
        for i in _identities(r):
            if i.namespace != "CRMID":
                out[i].update(crm)
    return out


def test_shared_devices_link_two_or_three_people(demo_records: dict[str, list[dict[str, Any]]]) -> None:
    links = _crmids_per_identity(demo_records["login_events"] + demo_records["mobile_events"])
    shared = {i: c for i, c in links.items() if len(c) >= 2}
    assert {i.namespace for i in shared} >= {"ECID", "IDFA"}
    assert all(2 <= len(c) <= 3 for c in shared.values())
    gt = generate(PEOPLE, seed=11).ground_truth()
    assert set(shared) == set(gt.shared)


def test_junk_ids_are_shared_by_many_people(demo_records: dict[str, list[dict[str, Any]]]) -> None:
    links = _crmids_per_identity(demo_records["crm_profiles"] + demo_records["offline_purchases"])
    assert len(links[Identity("Email", "test@test.com")]) >= 10
    assert len(links[Identity("Phone", "000-000-0000")]) >= 5
    gt = generate(PEOPLE, seed=11).ground_truth()
    assert gt.junk == {Identity("Email", "test@test.com"), Identity("Phone", "000-000-0000")}
    assert len(gt.persons(Identity("Email", "test@test.com"))) == len(
        links[Identity("Email", "test@test.com")]
    )


def test_loyalty_disagrees_with_crm_sometimes(demo_records: dict[str, list[dict[str, Any]]]) -> None:
    crm_tier = {
        r["identityMap"]["CRMID"][0]["id"]: r["_tessera"]["loyalty"]["tier"]
        for r in demo_records["crm_profiles"]
        if "_tessera" in r
    }
    loyalty = demo_records["loyalty_members"]
    assert len(loyalty) == len(crm_tier)
    differ = sum(
        crm_tier[r["identityMap"]["CRMID"][0]["id"]] != r["_tessera"]["loyalty"]["tier"] for r in loyalty
    )
    assert 0.1 < differ / len(loyalty) < 0.4


def test_ground_truth_matches_the_records(demo_records: dict[str, list[dict[str, Any]]]) -> None:
    demo = generate(PEOPLE, seed=11)
    gt = demo.ground_truth()
    in_data: set[Identity] = set()
    crm_owner = {gt.crmid(p): p for p in range(PEOPLE)}
    for recs in demo_records.values():
        for r in recs:
            ids = _identities(r)
            in_data.update(ids)
            crm = [i for i in ids if i.namespace == "CRMID"]
            for c in crm:  # every identity next to a CRMID belongs to that person
                p = crm_owner[c]
                assert all(p in gt.persons(i) for i in ids), r["_id"]
    assert in_data == set(gt.owners)
    assert len({gt.crmid(p) for p in range(PEOPLE)}) == PEOPLE
    p = 0
    assert gt.crmid(p) in gt.identities_of(p)
    summary = demo.summary()
    assert summary["datasets"] == {k: len(v) for k, v in demo_records.items()}
    assert summary["junk_ids"] == ["Email:test@test.com", "Phone:000-000-0000"]


def test_batches_are_cohort_major_and_hold_the_same_records() -> None:
    demo = generate(2100, seed=4)
    seen: dict[str, list[dict[str, Any]]] = defaultdict(list)
    order = []
    for ds, chunk in demo.batches(["crm_profiles", "call_center"]):
        order.append(ds.name)
        seen[ds.name].extend(chunk)
    assert order == ["crm_profiles", "call_center"] * 3
    fresh = generate(2100, seed=4)
    assert seen["crm_profiles"] == list(fresh.dataset("crm_profiles").records())
    assert seen["call_center"] == list(fresh.dataset("call_center").records())
