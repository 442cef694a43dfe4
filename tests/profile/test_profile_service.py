"""Merged profiles through real ingestion: lookup by any identity, policies, IOA, as-of, privacy."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pyarrow as pa
import pytest
from tests.conftest import ecid

from tessera.errors import SemanticError
from tessera.model import Identity, utcnow
from tessera.platform import Sandbox
from tessera.store import key

E1 = ecid(1)


def _setup(retail: dict[str, Any]) -> Sandbox:
    """The §d6 setup: graph {CRMID:c1, Email:j@x, ECID:e1}; F1 in CRM (t=10), F2 in Loyalty (t=20)."""
    sb: Sandbox = retail["sandbox"]
    sb.ingest.ingest_records(
        "CRM",
        [{"identityMap": {"CRMID": [{"id": "c1", "primary": True}], "Email": [{"id": "j@x.com"}]},
          "person": {"name": {"firstName": "Jane"}, "maritalStatus": "single"}, "homeAddress": {"city": "SF"}}],
    )  # fmt: skip
    time.sleep(0.01)
    sb.ingest.ingest_records(
        "Loyalty",
        [{"identityMap": {"Email": [{"id": "j@x.com", "primary": True}]},
          "person": {"maritalStatus": "married"}, "_tessera": {"loyalty": {"tier": "gold"}}}],
    )  # fmt: skip
    sb.ingest.ingest_records(
        "Web",
        [
            {"_id": "E1", "timestamp": "2024-01-01T00:00:00Z", "eventType": "web.webpagedetails.pageViews",
             "identityMap": {"ECID": [{"id": E1, "primary": True}], "Email": [{"id": "j@x.com"}]}},
            {"_id": "E2", "timestamp": "2024-01-02T00:00:00Z", "eventType": "commerce.purchases",
             "identityMap": {"CRMID": [{"id": "c1", "primary": True}]}},
        ],
    )  # fmt: skip
    return sb


def test_m1_lookup_by_any_identity_merges_both_datasets(retail: dict[str, Any]) -> None:
    sb = _setup(retail)
    views = [
        sb.profiles.get(i)
        for i in (Identity("CRMID", "c1"), Identity("Email", "j@x.com"), Identity("ECID", E1))
    ]
    assert all(v is not None for v in views)
    assert len({v.profile_id for v in views if v}) == 1
    view = views[0]
    assert view is not None
    assert view.attributes["person"] == {"name": {"firstName": "Jane"}, "maritalStatus": "married"}
    assert view.attributes["homeAddress"]["city"] == "SF"
    assert view.attributes["_tessera"]["loyalty"]["tier"] == "gold"
    assert view.provenance["person.maritalStatus"] == retail["loyalty"]["id"]
    assert set(view.sources) == {retail["crm"]["id"], retail["loyalty"]["id"]}
    events, _ = sb.profiles.events(Identity("Email", "j@x.com"))
    assert [e["record"]["_id"] for e in events] == ["E1", "E2"]


def test_m2_m3_no_stitching_sees_only_the_requested_identity(retail: dict[str, Any]) -> None:
    sb = _setup(retail)
    policy = sb.merge_policies.create(
        {
            "name": "no-stitch",
            "identityGraph": {"type": "none"},
            "attributeMerge": {"type": "timestampOrdered"},
        }
    )
    view = sb.profiles.get(Identity("CRMID", "c1"), merge_policy_id=policy.id)
    assert view is not None and view.attributes["person"]["maritalStatus"] == "single"
    assert "_tessera" not in view.attributes
    events, _ = sb.profiles.events(Identity("CRMID", "c1"), merge_policy_id=policy.id)
    assert [e["record"]["_id"] for e in events] == ["E2"]
    view_e1 = sb.profiles.get(Identity("ECID", E1), merge_policy_id=policy.id)
    assert view_e1 is not None and "person" not in view_e1.attributes


def test_m4_m5_dataset_precedence_and_unlisted_datasets(retail: dict[str, Any]) -> None:
    sb = _setup(retail)
    crm, loyalty = retail["crm"]["id"], retail["loyalty"]["id"]
    both = sb.merge_policies.create(
        {"name": "crm-first", "identityGraph": {"type": "pdg"},
         "attributeMerge": {"type": "dataSetPrecedence", "order": [crm, loyalty]}}
    )  # fmt: skip
    only_loyalty = sb.merge_policies.create(
        {"name": "loyalty-only", "identityGraph": {"type": "pdg"},
         "attributeMerge": {"type": "dataSetPrecedence", "order": [loyalty]}}
    )  # fmt: skip
    v4 = sb.profiles.get(Identity("CRMID", "c1"), merge_policy_id=both.id)
    assert v4 is not None and v4.attributes["person"]["maritalStatus"] == "single"
    assert v4.attributes["_tessera"]["loyalty"]["tier"] == "gold"
    v5 = sb.profiles.get(Identity("CRMID", "c1"), merge_policy_id=only_loyalty.id)
    assert v5 is not None and v5.attributes["person"] == {"maritalStatus": "married"}
    assert "homeAddress" not in v5.attributes


def test_m6_custom_timestamp_beats_later_ingestion(retail: dict[str, Any]) -> None:
    sb: Sandbox = retail["sandbox"]
    sb.ingest.ingest_records("CRM", [{"identityMap": {"CRMID": [{"id": "c9", "primary": True}], "Email": [{"id": "k@x.com"}]},
        "person": {"maritalStatus": "single"}, "extSourceSystemAudit": {"lastUpdatedDate": "2024-05-01T00:00:00Z"}}])  # fmt: skip
    sb.ingest.ingest_records("Loyalty", [{"identityMap": {"Email": [{"id": "k@x.com", "primary": True}]},
        "person": {"maritalStatus": "married"}, "extSourceSystemAudit": {"lastUpdatedDate": "2024-01-01T00:00:00Z"}}])  # fmt: skip
    view = sb.profiles.get(Identity("Email", "k@x.com"))
    assert view is not None and view.attributes["person"]["maritalStatus"] == "single"


def test_ioa4_events_follow_the_identity_between_people(retail: dict[str, Any]) -> None:
    sb: Sandbox = retail["sandbox"]
    sb.identity.set_rules(unique=["CRMID"], priority=["CRMID", "ECID"], limit=50)
    e = ecid(44)

    def ev(i: str, ts: str, crm: str | None) -> dict[str, Any]:
        imap: dict[str, Any] = {"ECID": [{"id": e}]}
        if crm:
            imap["CRMID"] = [{"id": crm}]
        return {"_id": i, "timestamp": ts, "eventType": "web.webpagedetails.pageViews", "identityMap": imap}

    for row in (ev("t1", "2024-01-01T01:00:00Z", "Kevin"), ev("t2", "2024-01-01T02:00:00Z", "Nora"),
                ev("t3", "2024-01-01T03:00:00Z", None)):  # fmt: skip
        sb.ingest.ingest_records("Web", [row])
    nora, _ = sb.profiles.events(Identity("CRMID", "Nora"))
    kevin, _ = sb.profiles.events(Identity("CRMID", "Kevin"))
    # t2 is stored under CRMID Nora (highest priority); t3 under ECID E, which is Nora's now
    assert {x["record"]["_id"] for x in nora} == {"t2", "t3"}
    assert {x["record"]["_id"] for x in kevin} == {"t1"}
    # the materialised view equals merge-on-read after every step
    for who in ("Nora", "Kevin"):
        assert sb.profiles.get(Identity("CRMID", who)) is not None
    sb.ingest.ingest_records("Web", [ev("t4", "2024-01-01T04:00:00Z", "Kevin")])
    kevin, _ = sb.profiles.events(Identity("CRMID", "Kevin"))
    nora, _ = sb.profiles.events(Identity("CRMID", "Nora"))
    assert {x["record"]["_id"] for x in kevin} == {"t1", "t3", "t4"}
    assert {x["record"]["_id"] for x in nora} == {"t2"}


def test_as_of_reads_show_attributes_as_they_were(retail: dict[str, Any]) -> None:
    sb: Sandbox = retail["sandbox"]
    rec = {"identityMap": {"CRMID": [{"id": "a1", "primary": True}]}, "person": {"maritalStatus": "single"}}
    sb.ingest.ingest_records("CRM", [rec])
    between = utcnow()
    time.sleep(0.01)
    sb.ingest.ingest_records("CRM", [{**rec, "person": {"maritalStatus": "married"}}])
    now_view = sb.profiles.get(Identity("CRMID", "a1"))
    then_view = sb.profiles.get(Identity("CRMID", "a1"), as_of=between)
    assert now_view is not None and now_view.attributes["person"]["maritalStatus"] == "married"
    assert then_view is not None and then_view.attributes["person"]["maritalStatus"] == "single"


def test_unknown_identity_is_empty_and_oversized_graph_is_an_error(retail: dict[str, Any]) -> None:
    sb: Sandbox = retail["sandbox"]
    assert sb.profiles.get(Identity("Email", "nobody@example.com")) is None
    sb.ingest.ingest_records("CRM", [{"identityMap": {"CRMID": [{"id": "big", "primary": True}],
        "Phone": [{"id": f"+1555{i:07d}"} for i in range(6)]}}])  # fmt: skip
    sb.identity.set_rules(limit=5)  # new rules apply to new data: the stored graph is now too large
    with pytest.raises(SemanticError) as err:
        sb.profiles.get(Identity("CRMID", "big"))
    assert err.value.status == 422


def test_privacy_delete_leaves_nothing_of_the_person(retail: dict[str, Any]) -> None:
    sb = _setup(retail)
    sb.ingest.ingest_records("CRM", [{"identityMap": {"CRMID": [{"id": "bob-1", "primary": True}]},
        "person": {"name": {"firstName": "Bob"}}}])  # fmt: skip
    access = sb.privacy.run({"users": [{"key": "u1", "action": ["access"],
        "userIDs": [{"namespace": "email", "value": "j@x.com", "type": "standard"}]}], "expandIds": True})  # fmt: skip
    found = access[0]["access"]
    assert len(found["fragments"]) == 2 and len(found["events"]) == 2
    jobs = sb.privacy.run({"users": [{"key": "u1", "action": ["delete"],
        "userIDs": [{"namespace": "Email", "value": "j@x.com", "type": "standard"}]}],
        "include": ["ProfileService", "identity"], "expandIds": True})  # fmt: skip
    assert jobs[0]["status"] == "complete"
    needles = [b"j@x.com", b"c1\x1f", E1.encode(), b"Jane", b"married"]
    con = sb.store._reader()  # type: ignore[attr-defined]
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    hits = []
    for table in tables:
        for k, v in con.execute(f'SELECT k, v FROM "{table}"'):
            blob = (k.encode() if isinstance(k, str) else bytes(k)) + b"|" + bytes(v)
            hits += [(table, n) for n in needles if n in blob]
    assert hits == []
    assert sb.profiles.get(Identity("CRMID", "c1")) is None
    bob = sb.profiles.get(Identity("CRMID", "bob-1"))
    assert bob is not None and bob.attributes["person"]["name"]["firstName"] == "Bob"


def test_event_documents_take_the_stored_keys_apart_for_batch_jobs(retail: dict[str, Any]) -> None:
    sb = _setup(retail)
    table = pa.concat_tables(sb.profiles.event_documents(chunk=1))
    web = retail["web"]["id"]
    rows = sorted(
        zip(
            table["owner"].to_pylist(),
            table["ts"].to_pylist(),
            table["tiebreak"].to_pylist(),
            [orjson.loads(d)["record"]["_id"] for d in table["doc"].to_pylist()],
            strict=True,
        ),
        key=lambda r: r[3],
    )
    # each event is stored under its primary identity; (ts, tiebreak) orders like events_for_members
    assert rows == [
        (key("ECID", E1), 1704067200000, key(web, "E1"), "E1"),
        (key("CRMID", "c1"), 1704153600000, key(web, "E2"), "E2"),
    ]


def test_lookups_show_memberships_that_jobs_store_once(retail: dict[str, Any]) -> None:
    """A batch job stores memberships once (not in the profile documents); every read of the
    profile — materialised lookup, privacy access, after a later re-merge — joins them in."""
    from tessera.profile.service import PROFILES
    from tessera.segments.service import SegmentService

    sb = _setup(retail)
    sb.segments = SegmentService(sb)
    seg = sb.segments.create(
        {
            "name": "married",
            "expression": {"type": "PQL", "format": "pql/text", "value": 'person.maritalStatus = "married"'},
            "evaluationInfo": {"batch": {"enabled": True}},
        }
    )
    sb.segments.run_job([{"segmentId": seg["id"]}])
    pid = sb.profiles.resolve(Identity("CRMID", "c1"))
    assert pid is not None
    raw = sb.store.get(PROFILES, pid)
    assert raw is not None and "segmentMembership" not in orjson.loads(raw)["attributes"]

    def shown() -> str:
        view = sb.profiles.get(Identity("Email", "j@x.com"))
        assert view is not None
        assert view.memberships == view.attributes["segmentMembership"]["ups"]
        return str(view.memberships[seg["id"]]["status"])

    assert shown() == "realized"
    access = sb.privacy.access([Identity("CRMID", "c1")])
    assert access["profiles"][0]["segmentMembership"][seg["id"]]["status"] == "realized"
    # new data re-merges the profile document: the membership is still shown
    sb.ingest.ingest_records(
        "CRM", [{"identityMap": {"CRMID": [{"id": "c1", "primary": True}]}, "homeAddress": {"city": "LA"}}]
    )
    assert shown() == "realized"
    sb.segments.run_job([{"segmentId": seg["id"]}])
    assert shown() == "existing"
