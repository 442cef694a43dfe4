"""Batch jobs, streaming/batch parity, preview and estimate, explain, computed attributes, schedules."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from segfakes import FakeSandbox, FakeSeg, definition, event, standard_segments

from tessera.errors import Conflict, InvalidInput
from tessera.model import Identity
from tessera.segments import estimate_size
from tessera.segments.schedules import next_run, to_croniter

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STREAMING = ["us", "bought_3h", "cart_then_buy_1d", "spend_100_1d", "us_buyer"]


@pytest.fixture
def sb(tmp_path: Path) -> FakeSandbox:
    return FakeSandbox(tmp_path)


def _members(sb: FakeSandbox) -> set[tuple[str, str]]:
    from tessera.segments import memberships as ms

    return {(pid, sid) for pid, sid, rec in ms.scan_all(sb.store) if rec["status"] in ms.IN}


def _generate(seed: int, profiles: int) -> list[tuple[str, dict[str, object], list[dict[str, object]]]]:
    rnd = random.Random(seed)
    out = []
    for i in range(profiles):
        attrs = {"homeAddress": {"countryCode": rnd.choice(["US", "FR", "DE"])}}
        evs = []
        for j in range(rnd.randint(0, 6)):
            when = T0 - timedelta(minutes=rnd.randint(0, 60 * 48))
            evs.append(
                event(f"{i}-{j}", when, rnd.choice(["purchase", "addToCart", "view"]), rnd.randint(0, 80))
            )
        out.append((f"p{i:03d}", attrs, sorted(evs, key=lambda e: str(e["timestamp"]))))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_streaming_and_batch_give_the_same_memberships(tmp_path: Path, seed: int) -> None:
    data = _generate(seed, 60)
    now = T0 + timedelta(hours=1)
    streaming, batch = FakeSandbox(tmp_path / "s"), FakeSandbox(tmp_path / "b")
    for s in (streaming, batch):
        for sid in STREAMING:
            s.segments.create(definition(sid, sid), seg_id=sid)
    # streaming: events arrive one by one at their own time, then windows close up to `now`
    arrivals = sorted(
        ((e["timestamp"], pid, attrs, e) for pid, attrs, evs in data for e in evs), key=lambda r: str(r[0])
    )
    for pid, attrs, _ in data:
        streaming.put(pid, attributes=attrs, now=T0 - timedelta(days=3))
    for stamp, pid, _, e in arrivals:
        streaming.put(pid, events=[e], now=datetime.fromisoformat(str(stamp).replace("Z", "+00:00")))
    streaming.segments.tick(now)
    # batch: everything loaded silently, one job at `now`
    for pid, attrs, evs in data:
        batch.put(pid, attributes=attrs, now=T0 - timedelta(days=3))
        if evs:
            batch.put(pid, events=evs, now=T0 - timedelta(days=3))
    job = batch.segments.run_job([{"segmentId": "*"}], now=now)
    assert job["status"] == "SUCCEEDED"
    assert _members(streaming) == _members(batch)
    assert len(_members(batch)) > 20  # the data exercises the segments


def test_job_object_metrics_and_statuses(sb: FakeSandbox) -> None:
    for sid in ("us", "bought_3h", "us_buyer"):
        sb.segments.create(definition(sid, sid, continuous=False), seg_id=sid)
    sb.put("p1", attributes={"homeAddress": {"countryCode": "US"}}, events=[event("e1", T0)], now=T0)
    sb.put(
        "p2", attributes={"homeAddress": {"countryCode": "US"}}, identities=[Identity("ECID", "2")], now=T0
    )
    sb.put("p3", attributes={"homeAddress": {"countryCode": "FR"}}, now=T0)
    job = sb.segments.run_job(None, now=T0)
    m = job["metrics"]
    assert m["segmentedProfileCounter"] == {"us": 2, "bought_3h": 1, "us_buyer": 1}
    assert m["segmentedProfileByStatusCounter"]["us"] == {"realized": 2}
    assert m["segmentedProfileByNamespaceCounter"]["us"] == {"CRMID": 1, "ECID": 1}
    assert m["totalProfiles"] == 3 and m["totalTime"]["totalTimeInMs"] >= 0
    assert sb.segments.job(job["id"])["status"] == "SUCCEEDED"
    job2 = sb.segments.run_job([{"segmentId": "us"}, {"segmentId": "bought_3h"}], now=T0 + timedelta(hours=4))
    assert job2["metrics"]["segmentedProfileByStatusCounter"]["us"] == {"existing": 2}
    assert job2["metrics"]["segmentedProfileByStatusCounter"]["bought_3h"] == {"exited": 1}
    assert sb.segments.memberships_of("p1")["us"]["status"] == "existing"
    assert [j["id"] for j in sb.segments.jobs()][0] in {job["id"], job2["id"]}


def test_preview_and_estimate_are_exact_on_small_sandboxes(sb: FakeSandbox) -> None:
    for i in range(10):
        sb.put(f"p{i}", attributes={"homeAddress": {"countryCode": "US" if i < 4 else "FR"}}, now=T0)
    preview = sb.segments.preview("us", now=T0, sample_size=3)
    est = sb.segments.get_estimate(preview["previewId"])
    assert (
        est["estimatedSize"] == 4
        and est["standardError"] == 0.0
        and est["confidenceIntervalBounds"] == [4, 4]
    )
    assert est["estimatedNamespaceDistribution"] == [{"namespaceId": "CRMID", "profilesMatchedSoFar": 4}]
    assert len(sb.segments.get_preview(preview["previewId"])["results"]) == 3


def test_sampled_estimate_interval_covers_the_truth() -> None:
    rnd = random.Random(7)
    total, n, p = 5_000_000, 1_000_000, 0.123
    k = sum(1 for _ in range(n) if rnd.random() < p)
    est = estimate_size(total, n, k)
    low, high = est["confidenceIntervalBounds"]
    assert low <= round(p * total) <= high and not est["exact"]


def test_explain_lists_the_conditions(sb: FakeSandbox) -> None:
    sb.segments.create(definition("US", "us"), seg_id="us")
    sb.put("p1", attributes={"homeAddress": {"countryCode": "FR"}}, now=T0)
    out = sb.segments.explain("us", "p1", now=T0)
    assert out["qualifies"] is False
    assert out["explanation"]["conditions"] == [
        {"condition": 'homeAddress.countryCode = "US"', "held": False}
    ]


def test_computed_attribute_kept_current_and_used_by_segments(tmp_path: Path) -> None:
    segs = standard_segments()
    sb = FakeSandbox(tmp_path)
    ca = sb.segments.computed.create(
        {
            "name": "spend7d",
            "expression": {"format": "pql/text", "value": "spend7d"},
            "duration": {"count": 7, "unit": "DAYS"},
            "status": "PUBLISHED",
        }
    )
    assert ca["path"] == "computedAttributes.spend7d"
    sb.segments.create(definition("Big spender", "big_spender"), seg_id="big")
    sb.put(
        "p1",
        events=[event("e1", T0, "purchase", 30), event("e2", T0 + timedelta(days=2), "purchase", 40)],
        now=T0 + timedelta(days=2),
    )
    assert sb.segments.computed.values_of("p1") == {"spend7d": 70}
    assert sb.segments.memberships_of("p1")["big"]["status"] == "realized"
    # the first purchase leaves the 7-day lookback: value drops and the segment exits at tick time
    changes = sb.segments.tick(T0 + timedelta(days=7, milliseconds=1))
    assert [(c.segment_id, c.status) for c in changes] == [("big", "exited")]
    assert sb.segments.computed.values_of("p1") == {"spend7d": 40}
    assert "spend7d" in segs


def test_schedules_accept_quartz_and_run_jobs(sb: FakeSandbox) -> None:
    assert to_croniter("0 0 1 * * ?") == "0 1 * * * 0"
    assert next_run("0 0 1 * * ?", T0) == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    assert next_run("0 30 2 ? * 2", T0) == datetime(2026, 3, 2, 2, 30, tzinfo=UTC)  # 2 = Monday in Quartz
    sb.segments.create(definition("US", "us", continuous=False), seg_id="us")
    sb.put("p1", attributes={"homeAddress": {"countryCode": "US"}}, now=T0)
    sched = sb.segments.schedules.create(
        {"name": "daily", "type": "batch_segmentation", "schedule": "0 0 1 * * ?", "state": "active"}, now=T0
    )
    assert sb.segments.schedules.run_due(T0 + timedelta(hours=1)) == []
    started = sb.segments.schedules.run_due(T0 + timedelta(hours=13))
    assert len(started) == 1 and sb.segments.job(started[0])["source"] == "scheduler"
    assert sb.segments.job(started[0])["properties"]["scheduleId"] == sched["id"]
    assert sb.segments.memberships_of("p1")["us"]["status"] == "realized"
    assert sb.segments.schedules.get(sched["id"])["nextRunTime"] == "2026-03-03T01:00:00.000Z"
    with pytest.raises(Conflict):
        sb.segments.schedules.create({"type": "batch_segmentation", "schedule": "0 0 2 * * ?"})
    with pytest.raises(InvalidInput):
        sb.segments.schedules.create({"type": "export", "schedule": "not a cron"})


def test_fake_segments_are_consistent() -> None:
    assert isinstance(standard_segments()["us"], FakeSeg)


def test_computed_attribute_is_on_the_materialised_profile(tmp_path: Path) -> None:
    sb = FakeSandbox(tmp_path)
    sb.segments.computed.create(
        {
            "name": "spend7d",
            "expression": {"format": "pql/text", "value": "spend7d"},
            "duration": {"count": 7, "unit": "DAYS"},
        }
    )
    sb.put("p1", events=[event("e1", T0, "purchase", 30)], now=T0)
    import orjson

    doc = orjson.loads(sb.store.get("profiles", "p1") or b"{}")
    assert doc["attributes"]["computedAttributes"] == {"spend7d": 30}


def test_definitions_bulk_get_and_patch(sb: FakeSandbox) -> None:
    sb.segments.create(definition("US", "us"), seg_id="us")
    out = sb.segments.definitions.bulk_get(["us", "missing"])
    assert list(out["results"]) == ["us"]
    patched = sb.segments.definitions.patch("us", [{"op": "add", "path": "/name", "value": "United States"}])
    assert patched["name"] == "United States" and patched["version"] == 2


def test_batch_jobs_leave_each_profile_showing_exactly_its_memberships(sb: FakeSandbox) -> None:
    """After jobs that enter, keep and exit profiles, every profile as read shows exactly the
    memberships the membership records hold, and no job rewrote a profile document for it
    (memberships are stored once and joined in on read)."""
    from tessera.segments import memberships as ms

    for sid in ("us", "bought_3h", "spend_100_1d"):
        sb.segments.create(definition(sid, sid, continuous=False), seg_id=sid)
    for i in range(12):
        country = "US" if i % 3 else "FR"
        evs = [event(f"{i}-b", T0 - timedelta(hours=1), "purchase", 60 + i)] if i % 2 else []
        sb.put(f"p{i:02d}", attributes={"homeAddress": {"countryCode": country}}, events=evs, now=T0)
    sb.segments.run_job(None, now=T0)
    sb.segments.run_job(None, now=T0 + timedelta(hours=4))  # the 3-hour window closed
    sb.put("p01", attributes={"homeAddress": {"countryCode": "FR"}}, now=T0)  # leaves "us"
    # a job for one segment: the profiles keep their memberships of the others
    sb.segments.run_job([{"segmentId": "us"}], now=T0 + timedelta(hours=5))
    seen = 0
    for pid, raw in sb.store.scan("profiles"):
        held = ms.read(sb.store, pid)
        assert "segmentMembership" not in orjson.loads(raw), pid
        shown = sb.profiles.stored_document(pid)
        assert shown is not None and shown["segmentMembership"] == held, pid
        seen += bool(held)
    assert seen >= 8
    statuses = {rec["status"] for _, _, rec in ms.scan_all(sb.store)}
    assert {"existing", "exited"} <= statuses


def test_a_job_builds_changes_only_for_segments_a_listener_wants(sb: FakeSandbox) -> None:
    """Listeners that name the segments they act on get those segments' batch changes (a job
    builds no change object for the others); their memberships are written all the same."""
    from tessera.segments import memberships as ms

    for sid in ("us", "bought_3h"):
        sb.segments.create(definition(sid, sid, continuous=False), seg_id=sid)
    for i in range(6):
        evs = [event(f"{i}-b", T0 - timedelta(hours=1), "purchase", 60)] if i % 2 else []
        sb.put(f"p{i}", attributes={"homeAddress": {"countryCode": "US"}}, events=evs, now=T0)
    seen: list[ms.Change] = []
    sb.segments.add_listener(lambda store, wb, changes: seen.extend(changes), wants=lambda: {"bought_3h"})
    sb.segments.run_job(None, now=T0)
    assert {c.segment_id for c in seen} == {"bought_3h"}
    assert sorted(c.profile_id for c in seen) == ["p1", "p3", "p5"]
    assert {sid for _, sid, _ in ms.scan_all(sb.store)} == {"us", "bought_3h"}
    # a listener wanting every segment (the default) gets all of them again
    everything: list[ms.Change] = []
    sb.segments.add_listener(lambda store, wb, changes: everything.extend(changes))
    sb.segments.run_job(None, now=T0 + timedelta(hours=4))  # "bought_3h" members exit, "us" -> existing
    assert {c.segment_id for c in everything} == {"us", "bought_3h"}
