"""Streaming segmentation inside the real ingestion flow: identity merges and splits re-evaluate
the profiles they touch, in the same commit as the data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from segfakes import FakeEngine, FakeSeg, crm_record, definition, ecid, ts, web_event

from tessera.errors import PqlError, SemanticError
from tessera.model import Identity
from tessera.platform import Sandbox
from tessera.segments import SegmentService

NOW = datetime.now(UTC).replace(microsecond=0)


def _jane_buyer(p: dict[str, Any], ev: list[dict[str, Any]], now: datetime, m: Any) -> bool:
    jane = ((p.get("person") or {}).get("name") or {}).get("firstName") == "Jane"
    return jane and any(
        e.get("eventType") == "commerce.purchases" and now - timedelta(hours=3) < ts(e) for e in ev
    )


@pytest.fixture
def sb(retail: dict[str, Any]) -> Sandbox:
    sandbox: Sandbox = retail["sandbox"]
    engine = FakeEngine(
        {
            "jane_buyer": FakeSeg(_jane_buyer, "false", "jane and purchase in 3 hours before now"),
            "bought": FakeSeg(
                lambda p, ev, now, m: any(e.get("eventType") == "commerce.purchases" for e in ev), "false"
            ),
        }
    )
    sandbox.segments = SegmentService(sandbox, engine)  # type: ignore[arg-type]
    sandbox.segments.create(definition("Jane bought", "jane_buyer"), seg_id="jane_buyer")
    sandbox.segments.create(definition("Bought", "bought"), seg_id="bought")
    return sandbox


def _stamp(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_merge_makes_the_merged_profile_qualify_and_a_split_makes_it_exit(sb: Sandbox) -> None:
    sb.identity.set_rules(unique=["CRMID"], priority=["CRMID", "ECID"])
    sb.ingest.ingest_records("CRM", [crm_record("a", "jane@example.com", "Jane")])
    jane = sb.profiles.resolve(Identity("CRMID", "a"))
    assert jane is not None
    buy = web_event("e1", ecid(1), _stamp(NOW - timedelta(minutes=5)), "commerce.purchases")
    sb.ingest.ingest_records("Web", [buy])
    anon = sb.profiles.resolve(Identity("ECID", ecid(1)))
    assert anon != jane and sb.segments.memberships_of(anon)["bought"]["status"] == "realized"
    assert "jane_buyer" not in sb.segments.memberships_of(jane)
    # the visitor logs in: ECID 1 and CRMID a link, the purchase now belongs to Jane
    sb.ingest.ingest_records("Web", [web_event("e2", ecid(1), _stamp(NOW), CRMID="a")])
    merged = sb.profiles.resolve(Identity("CRMID", "a"))
    assert merged is not None
    ups = sb.segments.memberships_of(merged)
    assert ups["jane_buyer"]["status"] == "realized"
    view = sb.profiles.get(Identity("CRMID", "a"))
    assert view is not None and view.memberships["jane_buyer"]["status"] == "realized"
    # the same device then logs in as CRMID b: with CRMID unique, ECID 1 moves to b with its events
    sb.ingest.ingest_records("Web", [web_event("e3", ecid(1), _stamp(NOW + timedelta(seconds=1)), CRMID="b")])
    jane_after = sb.profiles.resolve(Identity("CRMID", "a"))
    other = sb.profiles.resolve(Identity("CRMID", "b"))
    assert jane_after is not None and other is not None and jane_after != other
    assert sb.identity.members(jane_after) == [Identity("CRMID", "a"), Identity("Email", "jane@example.com")]
    # the merged profile's membership exits wherever its id went; Jane's half is not a member
    assert sb.segments.memberships_of(merged)["jane_buyer"]["status"] == "exited"
    assert sb.segments.memberships_of(jane_after).get("jane_buyer", {}).get("status") in {None, "exited"}
    assert sb.segments.memberships_of(other)["bought"]["status"] == "realized"
    assert sb.segments.memberships_of(other).get("jane_buyer", {}).get("status") in {None, "exited"}


def test_window_closes_on_the_real_store(sb: Sandbox) -> None:
    sb.ingest.ingest_records(
        "CRM",
        [
            crm_record(
                "a",
                "jane@example.com",
                "Jane",
                identityMap={"CRMID": [{"id": "a", "primary": True}], "ECID": [{"id": ecid(7)}]},
            )
        ],
    )
    sb.ingest.ingest_records("Web", [web_event("e1", ecid(7), _stamp(NOW), "commerce.purchases")])
    pid = sb.profiles.resolve(Identity("CRMID", "a"))
    assert pid is not None and sb.segments.memberships_of(pid)["jane_buyer"]["status"] == "realized"
    due = sb.segments.next_due()
    assert due is not None and due <= NOW + timedelta(hours=3, seconds=1)
    changes = sb.segments.tick(NOW + timedelta(hours=3, seconds=1))
    assert [(c.segment_id, c.status) for c in changes] == [("jane_buyer", "exited")]
    view = sb.profiles.get(Identity("CRMID", "a"))
    assert view is not None and view.memberships["jane_buyer"]["status"] == "exited"


def test_export_job_into_a_real_dataset(sb: Sandbox, retail: dict[str, Any]) -> None:
    sb.ingest.ingest_records("CRM", [crm_record("a", "jane@example.com", "Jane")])
    sb.ingest.ingest_records("Web", [web_event("e1", ecid(3), _stamp(NOW), "commerce.purchases", CRMID="a")])
    out = sb.datasets.create("Audience export", retail["schemas"]["profile"])
    job = sb.segments.activation.exports.create(
        {"filter": {"segments": [{"segmentId": "bought"}]}, "destination": {"datasetId": out["id"]}}
    )
    assert job["status"] == "SUCCEEDED" and job["metrics"]["totalExportedProfileCounter"] == 1
    batch = sb.batches.get(job["destination"]["batchId"])
    assert batch["status"] == "success" and batch["metrics"]["outputRecordCount"] == 1


def test_real_pql_segment_through_the_default_engine(retail: dict[str, Any]) -> None:
    sandbox: Sandbox = retail["sandbox"]
    chain = 'chain(xEvent, timestamp, [A: WHAT(eventType = "commerce.purchases") WHEN(< 3 hours before now)])'
    jane = 'person.name.firstName = "Jane" and '
    sandbox.segments.create(
        {
            "name": "Jane bought in the last 3 hours",
            "expression": {"type": "PQL", "format": "pql/text", "value": jane + chain},
            "evaluationInfo": {"continuous": {"enabled": True}},
        },
        seg_id="jane3h",
    )
    with pytest.raises(SemanticError) as err:  # event filters need the full history: batch only
        sandbox.segments.create(definition("Buyers", 'xEvent[eventType = "commerce.purchases"].count() > 0'))
    assert "outside chain" in err.value.message
    with pytest.raises(PqlError) as perr:  # checked against the union schema
        sandbox.segments.create(definition("Typo", 'persn.name.firstName = "Jane"'))
    assert perr.value.line == 1
    buyers = sandbox.segments.create(
        definition("Buyers", jane + 'xEvent[eventType = "commerce.purchases"].count() > 0', continuous=False)
    )
    sandbox.ingest.ingest_records("CRM", [crm_record("a", "jane@example.com", "Jane")])
    sandbox.ingest.ingest_records(
        "Web", [web_event("e1", ecid(5), _stamp(NOW), "commerce.purchases", CRMID="a")]
    )
    pid = sandbox.profiles.resolve(Identity("CRMID", "a"))
    assert pid is not None and sandbox.segments.memberships_of(pid)["jane3h"]["status"] == "realized"
    assert [c.status for c in sandbox.segments.tick(NOW + timedelta(hours=3, seconds=1))] == ["exited"]
    job = sandbox.segments.run_job([{"segmentId": buyers["id"]}], now=NOW + timedelta(minutes=1))
    assert job["metrics"]["segmentedProfileCounter"] == {buyers["id"]: 1}
    preview = sandbox.segments.preview('person.name.firstName = "Jane"')
    assert preview["estimate"]["estimatedSize"] == 1
    explained = sandbox.segments.explain(buyers["id"], pid, now=NOW + timedelta(minutes=1))
    first, second = explained["explanation"]["conditions"]
    assert first["held"] is True and second["held"] is True
    assert list(second["matchedEvents"].values()) == [["e1"]]
