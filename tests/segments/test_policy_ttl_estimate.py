"""A definition's merge policy decides what it sees; ttlInDays expires unconfirmed memberships;
estimates above the exact limit are sampled with a 95 % interval. All on the real PQL engine."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tessera.errors import InvalidInput
from tessera.model import Identity, parse_time
from tessera.platform import Sandbox
from tessera.segments import SegmentService
from tessera.segments.memberships import Change


def _definition(name: str, expr: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "expression": {"type": "PQL", "format": "pql/text", "value": expr},
        "evaluationInfo": {"batch": {"enabled": True}, "continuous": {"enabled": True}},
        **extra,
    }


def _person(crm: str, email: str, status: str) -> dict[str, Any]:
    return {
        "identityMap": {"CRMID": [{"id": crm, "primary": True}], "Email": [{"id": email}]},
        "person": {"maritalStatus": status},
    }


def _loyalty(email: str, status: str) -> dict[str, Any]:
    return {"identityMap": {"Email": [{"id": email, "primary": True}]}, "person": {"maritalStatus": status}}


@pytest.fixture
def sb(retail: dict[str, Any]) -> Sandbox:
    sandbox: Sandbox = retail["sandbox"]
    sandbox.segments = SegmentService(sandbox)
    return sandbox


def test_merge_policy_of_a_definition_decides_membership(sb: Sandbox, retail: dict[str, Any]) -> None:
    crm, loyalty = retail["crm"]["id"], retail["loyalty"]["id"]
    crm_first = sb.merge_policies.create(
        {
            "name": "crm-first",
            "identityGraph": {"type": "pdg"},
            "attributeMerge": {"type": "dataSetPrecedence", "order": [crm, loyalty]},
        }
    )
    expr = 'person.maritalStatus = "single"'
    svc = sb.segments
    by_default = svc.create(_definition("single (default policy)", expr))["id"]
    by_crm = svc.create(_definition("single (CRM first)", expr, mergePolicyId=crm_first.id))["id"]
    sb.ingest.ingest_records("CRM", [_person("c1", "j@x.com", "single")])
    sb.ingest.ingest_records("Loyalty", [_loyalty("j@x.com", "married")])  # later: wins by default
    pid = sb.profiles.resolve(Identity("CRMID", "c1"))
    assert pid is not None
    view = sb.profiles.get(pid)
    assert view is not None and view.attributes["person"]["maritalStatus"] == "married"
    # streaming: the default view says married, the CRM-first view says single
    ups = svc.memberships_of(pid)
    assert ups[by_default]["status"] == "exited"
    assert ups[by_crm]["status"] == "realized"
    # batch job over the same data agrees
    job = svc.run_job([{"segmentId": by_default}, {"segmentId": by_crm}])
    assert job["metrics"]["segmentedProfileCounter"] == {by_default: 0, by_crm: 1}
    # preview/estimate of an unsaved expression under either policy
    assert svc.preview(expr)["estimate"]["estimatedSize"] == 0
    assert svc.preview(expr, merge_policy_id=crm_first.id)["estimate"]["estimatedSize"] == 1
    # explain reads the definition's policy
    assert svc.explain(by_crm, pid)["qualifies"] is True
    assert svc.explain(by_default, pid)["qualifies"] is False
    # the policy is deleted later: ingestion goes on, the definition reads the default view
    sb.merge_policies.delete(crm_first.id)
    sb.ingest.ingest_records("Loyalty", [_loyalty("j@x.com", "married")])
    assert svc.memberships_of(pid)[by_crm]["status"] == "exited"


def test_edge_evaluation_uses_the_definition_merge_policy(sb: Sandbox, retail: dict[str, Any]) -> None:
    crm, loyalty = retail["crm"]["id"], retail["loyalty"]["id"]
    crm_first = sb.merge_policies.create(
        {
            "name": "crm-first",
            "identityGraph": {"type": "pdg"},
            "attributeMerge": {"type": "dataSetPrecedence", "order": [crm, loyalty]},
        }
    )
    expr = 'person.maritalStatus = "single"'
    edge = {"batch": {"enabled": False}, "synchronous": {"enabled": True}}
    svc = sb.segments
    a = svc.create({**_definition("edge default", expr), "evaluationInfo": edge})["id"]
    b = svc.create({**_definition("edge crm", expr), "evaluationInfo": edge, "mergePolicyId": crm_first.id})[
        "id"
    ]
    sb.ingest.ingest_records("CRM", [_person("c1", "j@x.com", "single")])
    sb.ingest.ingest_records("Loyalty", [_loyalty("j@x.com", "married")])
    pid = sb.profiles.resolve(Identity("CRMID", "c1"))
    assert svc.evaluate_synchronous(pid) == {a: False, b: True}


def test_unknown_merge_policy_is_refused(sb: Sandbox) -> None:
    with pytest.raises(InvalidInput) as err:
        sb.segments.create(_definition("x", 'person.maritalStatus = "single"', mergePolicyId="nope"))
    assert err.value.path == "mergePolicyId"


def test_batch_membership_expires_after_ttl_without_confirmation(sb: Sandbox) -> None:
    svc = sb.segments
    sid = svc.create(
        {
            "name": "singles",
            "expression": {"type": "PQL", "format": "pql/text", "value": 'person.maritalStatus = "single"'},
            "evaluationInfo": {"batch": {"enabled": True}},
            "ttlInDays": 2,
        }
    )["id"]
    seen: list[Change] = []
    svc.add_listener(lambda store, wb, changes: seen.extend(changes))
    sb.ingest.ingest_records("CRM", [_person("c1", "j@x.com", "single")])
    pid = sb.profiles.resolve(Identity("CRMID", "c1"))
    assert pid is not None
    t0 = datetime(2031, 1, 1, tzinfo=UTC)
    svc.run_job([{"segmentId": sid}], now=t0)
    rec = svc.memberships_of(pid)[sid]
    assert rec["status"] == "realized" and parse_time(rec["validUntil"]) == t0 + timedelta(days=2)
    # a job 1.5 days later confirms the membership: valid for another 2 days from then
    svc.run_job([{"segmentId": sid}], now=t0 + timedelta(days=1, hours=12))
    rec = svc.memberships_of(pid)[sid]
    assert rec["status"] == "existing"
    assert parse_time(rec["validUntil"]) == t0 + timedelta(days=3, hours=12)
    assert svc.expire_memberships(t0 + timedelta(days=3)) == []
    # nothing confirms it any more: read at a later time it shows exited, and the sweep writes that
    late = t0 + timedelta(days=4)
    assert svc.memberships_of(pid, now=late)[sid]["status"] == "exited"
    assert svc.memberships_of(pid)[sid]["status"] == "existing"
    changes = svc.expire_memberships(late)
    assert [(c.profile_id, c.segment_id, c.status, c.previous) for c in changes] == [
        (pid, sid, "exited", "existing")
    ]
    assert svc.memberships_of(pid)[sid]["status"] == "exited"
    assert seen[-1].status == "exited"  # destinations hear about it
    view = sb.profiles.get(pid)
    assert view is not None and view.attributes["segmentMembership"]["ups"][sid]["status"] == "exited"


def test_expiry_sweep_confirms_continuous_members_that_still_qualify(sb: Sandbox) -> None:
    svc = sb.segments
    sid = svc.create(
        {
            "name": "singles",
            "expression": {"type": "PQL", "format": "pql/text", "value": 'person.maritalStatus = "single"'},
            "evaluationInfo": {"continuous": {"enabled": True}},
            "ttlInDays": 1,
        }
    )["id"]
    sb.ingest.ingest_records("CRM", [_person("c1", "j@x.com", "single")])
    one = sb.profiles.resolve(Identity("CRMID", "c1"))
    assert one is not None
    assert svc.memberships_of(one)[sid]["status"] == "realized"
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    assert svc.memberships_of(one, now=later)[sid]["status"] == "exited"  # unconfirmed for 2 days
    svc.expire_memberships(later)
    rec = svc.memberships_of(one)[sid]
    assert rec["status"] == "realized"  # re-evaluated, still single: confirmed, not exited
    assert parse_time(rec["validUntil"]) == later + timedelta(days=1)


def test_estimate_above_the_exact_limit_is_sampled_with_an_interval(sb: Sandbox) -> None:
    records = [_person(f"c{i}", f"p{i}@x.com", "single" if i % 4 == 0 else "married") for i in range(120)]
    sb.ingest.ingest_records("CRM", records)
    expr = 'person.maritalStatus = "single"'
    exact = sb.segments.preview(expr)["estimate"]
    assert exact["exact"] is True and exact["estimatedSize"] == 30
    sb.settings = dataclasses.replace(sb.settings, estimate_exact_limit=40)
    sampled = sb.segments.preview(expr, seed=7)["estimate"]
    assert sampled["exact"] is False
    assert sampled["profilesReadSoFar"] == 40 and sampled["totalRows"] == 120
    low, high = sampled["confidenceIntervalBounds"]
    assert low < sampled["estimatedSize"] < high and low <= 30 <= high
    assert sampled["estimatedSize"] == round(sampled["profilesMatchedSoFar"] / 40 * 120)
    # different samples give different (but each consistent) estimates
    sizes = {sb.segments.preview(expr, seed=s)["estimate"]["profilesMatchedSoFar"] for s in range(8)}
    assert len(sizes) > 1
