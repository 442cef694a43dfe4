"""A batch job's membership writes: every record and every change is what the per-membership rule
(``memberships.transition``) says, in order, whether the job decides them in bulk (segments
without ttl) or one by one (ttl); memberships stored one row per (profile, segment) by store
formats up to 3 are migrated into the per-profile documents."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from segfakes import FakeSandbox, definition, event

from tessera.model import Identity
from tessera.ops import migrations
from tessera.ops.migrations import CURRENT_FORMAT, FORMAT_KEY, META, stored_format
from tessera.platform import Platform
from tessera.segments import memberships as ms
from tessera.settings import Settings
from tessera.store import PointStore, WriteBatch, key

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SEGMENTS = ("us", "bought_3h", "spend_100_1d")


def _records(store: PointStore) -> dict[tuple[str, str], dict[str, Any]]:
    return {(pid, sid): rec for pid, sid, rec in ms.scan_all(store)}


def _expected(
    before: dict[tuple[str, str], dict[str, Any]],
    members: dict[str, set[str]],
    ttl: dict[str, int],
    now: datetime,
    order: list[str],
) -> tuple[dict[tuple[str, str], dict[str, Any]], list[tuple[str, str, str, str | None]]]:
    """The records and changes of a job that found ``members`` (segments in the job's ``order``),
    one membership at a time; changes are delivered by profile, then segment in that order."""
    after = dict(before)
    changes = []
    for sid in order:
        recorded = {pid for pid, s in before if s == sid}
        for pid in sorted(members[sid] | recorded):
            old = before.get((pid, sid))
            if old is not None and ms.expired(old, now) and pid not in members[sid]:
                new = ms.transition(old, False, now)
            else:
                old = ms.as_seen(old, now) if old is not None else None
                new = ms.transition(old, pid in members[sid], now, batch=True, ttl_days=ttl[sid])
            if new is not None:
                after[(pid, sid)] = new
                previous = old.get("status") if old else None
                if new["status"] != previous:
                    changes.append((pid, sid, new["status"], previous))
    changes.sort(key=lambda c: (c[0], order.index(c[1])))
    return after, changes


@pytest.mark.parametrize(("us_ttl", "slice_size"), [(30, 20_000), (3, 20_000), (1, 20_000), (1, 3)])
def test_job_records_and_changes_follow_the_per_membership_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, us_ttl: int, slice_size: int
) -> None:
    """Jobs at uneven intervals over profiles that change between them: with a 1-day ttl, "us"
    memberships expire between some jobs (and enter again or exit); with 3 days a confirmation
    moves validUntil forward; 30 days is the default. With slices of 3 profiles a job applies
    and writes its changes in several slices (as large jobs do): same records, same order."""
    from tessera.segments import service

    monkeypatch.setattr(service, "_PROFILES_PER_SLICE", slice_size)
    sb = FakeSandbox(tmp_path)
    ttl = {sid: 30 for sid in SEGMENTS} | {"us": us_ttl}
    for sid in SEGMENTS:
        sb.segments.create(definition(sid, sid, continuous=False) | {"ttlInDays": ttl[sid]}, seg_id=sid)
    seen: list[ms.Change] = []
    sb.segments.add_listener(lambda store, wb, changes: seen.extend(changes))
    rnd = random.Random(7)
    all_changes: list[tuple[str, str, str, str | None]] = []
    for step, hours in enumerate([0, 13, 26, 60, 73, 110, 123]):
        now = T0 + timedelta(hours=hours)
        for i in range(20):
            if rnd.random() < 0.6:
                evs = [event(f"{step}-{i}", now - timedelta(hours=1), "purchase", rnd.randint(30, 90))]
                country = rnd.choice(["US", "FR"])
                sb.put(f"p{i:02d}", attributes={"homeAddress": {"countryCode": country}}, events=evs, now=now)
        before = _records(sb.store)
        seen.clear()
        job = sb.segments.run_job(None, now=now)
        after = _records(sb.store)
        # who the job found in each segment: for a job over every segment, the members after it
        members = {
            sid: {pid for (pid, s), rec in after.items() if s == sid and rec["status"] in ms.IN}
            for sid in SEGMENTS
        }
        order = [s["segmentId"] for s in job["segments"]]
        want, changes = _expected(before, members, ttl, now, order)
        assert after == want
        assert [(c.profile_id, c.segment_id, c.status, c.previous) for c in seen] == changes
        all_changes.extend(changes)
        for _, raw in sb.store.scan("profiles"):  # memberships are stored once, not on profiles
            assert "segmentMembership" not in orjson.loads(raw)
    kinds = {(status, previous) for _, _, status, previous in all_changes}
    assert {
        ("realized", None),
        ("existing", "realized"),
        ("exited", "existing"),
        ("realized", "exited"),
    } <= kinds


def test_job_that_changes_nothing_emits_nothing_and_keeps_every_record(tmp_path: Path) -> None:
    sb = FakeSandbox(tmp_path)
    for sid in SEGMENTS:
        sb.segments.create(definition(sid, sid, continuous=False), seg_id=sid)
    for i in range(10):
        country = "US" if i % 2 else "FR"
        sb.put(f"p{i}", attributes={"homeAddress": {"countryCode": country}}, now=T0)
    sb.segments.run_job(None, now=T0)
    sb.segments.run_job(None, now=T0 + timedelta(hours=1))  # realized -> existing
    held = _records(sb.store)
    seen: list[ms.Change] = []
    sb.segments.add_listener(lambda store, wb, changes: seen.extend(changes))
    job = sb.segments.run_job(None, now=T0 + timedelta(hours=2))
    assert seen == [] and _records(sb.store) == held
    assert job["metrics"]["segmentedProfileByStatusCounter"]["us"] == {"existing": 5}


def _person(i: int) -> dict[str, Any]:
    return {
        "identityMap": {"CRMID": [{"id": f"c{i}", "primary": True}]},
        "person": {"maritalStatus": "single" if i % 2 else "married"},
    }


def _to_format_3(store: PointStore, *, half_moved: str) -> None:
    """Store the memberships as format 3 did, one row per (profile, segment); ``half_moved`` keeps
    one segment in its new document, as an interrupted upgrade would leave it. (Format 3 had
    no segment rounds: its realized records had not been confirmed yet.)"""
    wb = (
        WriteBatch()
        .put_json(META, FORMAT_KEY, {"version": 3, "migrated": []})
        .delete(ms.ROUNDS, ms.ROUNDS_KEY)
    )
    for pid, ups in list(ms.scan_profiles(store)):
        first = min(ups)
        for sid, rec in ups.items():
            if pid == half_moved and sid == first:
                continue
            wb.put_json(ms.LEGACY, key(pid, sid), rec)
        if pid == half_moved:
            wb.put_json(ms.MEMBERSHIPS, pid, {first: ups[first]})
        else:
            wb.delete(ms.MEMBERSHIPS, pid)
    store.write(wb)


def test_format_3_memberships_are_moved_into_profile_documents_on_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=str(tmp_path / "home"), group_commit_ms=0.0)
    with Platform(settings) as opened:
        sb = opened.sandbox()
        schemas = sb.schemas.ensure_standard_schemas()
        sb.datasets.create("CRM", schemas["profile"])
        sb.ingest.ingest_records("CRM", [_person(i) for i in range(9)])
        for name, pql in (("single", 'person.maritalStatus = "single"'), ("any", "true")):
            sb.segments.create(
                {
                    "name": name,
                    "expression": {"type": "PQL", "format": "pql/text", "value": pql},
                    "evaluationInfo": {"batch": {"enabled": True}, "continuous": {"enabled": False}},
                },
                seg_id=name,
            )
        job = sb.segments.run_job(None, now=T0)
        # namespaces noted while the job read the documents for the SQL evaluation
        assert job["metrics"]["segmentedProfileByNamespaceCounter"] == {
            "single": {"CRMID": 4},
            "any": {"CRMID": 9},
        }
        held = _records(sb.store)
        assert len(held) == 9 + 4
        pid = sb.identity.profile_id_of(Identity("CRMID", "c1"))
        _to_format_3(sb.store, half_moved=pid)
        assert not ms.any_stored(sb.store) or ms.read(sb.store, pid) == {"any": held[(pid, "any")]}
    # small chunks: the step writes several of them, each ending between two profiles
    monkeypatch.setitem(migrations.MIGRATIONS, 3, lambda store, wb: migrations._v3_to_v4(store, wb, chunk=4))
    with Platform(settings) as opened:
        sb = opened.sandbox()
        assert stored_format(sb.store) == CURRENT_FORMAT == 4
        assert list(sb.store.scan(ms.LEGACY)) == []
        assert _records(sb.store) == held
        view = sb.profiles.get(pid)
        assert view is not None and set(view.memberships) == {"single", "any"}
        # the next job continues from the moved memberships: nobody enters again
        job = sb.segments.run_job(None, now=T0 + timedelta(days=1))
        assert job["metrics"]["segmentedProfileByStatusCounter"] == {
            "single": {"existing": 4},
            "any": {"existing": 9},
        }


def _stored(store: PointStore) -> dict[str, bytes]:
    return dict(store.scan(ms.MEMBERSHIPS))


def test_a_confirming_job_rewrites_no_document_yet_reads_existing(tmp_path: Path) -> None:
    """The second job confirms every realized member: they read ``existing`` with the time they
    entered and destinations hear of it, but no membership document is written for it — at a
    million profiles that rewrite was most of the job. A profile whose document is written for
    another segment's change keeps its confirmed records ``existing``."""
    sb = FakeSandbox(tmp_path)
    for sid in SEGMENTS:
        sb.segments.create(definition(sid, sid, continuous=False), seg_id=sid)
    for i in range(6):
        sb.put(f"p{i}", attributes={"homeAddress": {"countryCode": "US"}}, now=T0)
    evs = [event("e1", T0 - timedelta(hours=1), "purchase", 50)]
    sb.put("p0", attributes={"homeAddress": {"countryCode": "US"}}, events=evs, now=T0)
    sb.segments.run_job(None, now=T0)
    assert {rec["status"] for rec in _records(sb.store).values()} == {"realized"}
    stored = _stored(sb.store)
    sb.put("p5", attributes={"homeAddress": {"countryCode": "FR"}}, now=T0)  # leaves "us"
    seen: list[ms.Change] = []
    sb.segments.add_listener(lambda store, wb, changes: seen.extend(changes))

    job = sb.segments.run_job(None, now=T0 + timedelta(hours=1))

    after = _stored(sb.store)
    assert {pid for pid in stored if after[pid] != stored[pid]} == {"p5"}
    records = _records(sb.store)
    assert records[("p0", "us")]["status"] == "existing"
    assert records[("p0", "us")]["lastQualificationTime"] == "2026-03-01T12:00:00.000Z"  # when it entered
    assert records[("p0", "bought_3h")]["status"] == "existing"
    assert records[("p5", "us")]["status"] == "exited"
    assert {rec["status"] for (pid, _), rec in records.items() if pid != "p5"} == {"existing"}
    assert sorted((c.profile_id, c.segment_id, c.status, c.previous) for c in seen) == sorted(
        [(f"p{i}", "us", "existing", "realized") for i in range(5)]
        + [("p0", "bought_3h", "existing", "realized"), ("p5", "us", "exited", "realized")]
    )
    assert job["metrics"]["segmentedProfileByStatusCounter"]["us"] == {"existing": 5, "exited": 1}
    assert sb.segments.memberships_of("p1")["us"]["status"] == "existing"


def test_a_realized_record_written_after_a_job_waits_for_the_next_one(tmp_path: Path) -> None:
    """Streaming enters a profile after a job whose evaluation time is later than the entry (a
    job run for a future ``now``, or clocks apart): it reads ``realized`` until a job confirms
    it — what confirms a record is the job's round, not a comparison of times."""
    sb = FakeSandbox(tmp_path)
    sb.segments.create(definition("us", "us", continuous=True), seg_id="us")
    sb.put("p0", attributes={"homeAddress": {"countryCode": "US"}}, now=T0)
    sb.segments.run_job(None, now=T0 + timedelta(days=2))
    assert sb.segments.memberships_of("p0")["us"]["status"] == "existing"

    sb.put("p1", attributes={"homeAddress": {"countryCode": "US"}}, now=T0 + timedelta(hours=1))

    assert sb.segments.memberships_of("p1")["us"]["status"] == "realized"
    assert sb.segments.memberships_of("p0")["us"]["status"] == "existing"
    sb.segments.run_job(None, now=T0 + timedelta(days=3))
    assert {pid: rec["status"] for (pid, _), rec in _records(sb.store).items()} == {
        "p0": "existing",
        "p1": "existing",
    }
    assert _records(sb.store)[("p1", "us")]["lastQualificationTime"] == "2026-03-01T13:00:00.000Z"


def test_records_stored_before_rounds_are_confirmed_by_the_next_job(tmp_path: Path) -> None:
    """Stores written before segments had rounds hold realized records with no round: they read
    ``realized`` until the next job, which confirms them without rewriting them."""
    sb = FakeSandbox(tmp_path)
    sb.segments.create(definition("us", "us", continuous=False), seg_id="us")
    for i in range(3):
        sb.put(f"p{i}", attributes={"homeAddress": {"countryCode": "US"}}, now=T0)
    old = {
        "us": {
            "status": "realized",
            "lastQualificationTime": "2026-02-01T00:00:00.000Z",
            "validUntil": "2026-03-25T00:00:00.000Z",  # the default 30-day ttl: not due for a rewrite
        }
    }
    wb = WriteBatch()
    for i in range(3):
        wb.put_json(ms.MEMBERSHIPS, f"p{i}", old)
    sb.store.write(wb)
    assert sb.segments.memberships_of("p0") == old
    stored = _stored(sb.store)

    sb.segments.run_job(None, now=T0)

    assert _stored(sb.store) == stored
    confirmed = sb.segments.memberships_of("p0")["us"]
    assert (confirmed["status"], confirmed["lastQualificationTime"]) == (
        "existing",
        "2026-02-01T00:00:00.000Z",
    )


def test_a_job_exits_an_expired_membership_even_when_every_live_one_is_confirmed(tmp_path: Path) -> None:
    """Streaming entered p0 and p1 at different times (one day's ttl); by the job p0's membership
    has expired and p0 no longer qualifies, while p1 still does. The members the job finds are
    exactly the live ones, and p0 must still exit (not be taken for "nothing changes")."""
    sb = FakeSandbox(tmp_path)
    sb.segments.create(
        definition("bought_3h", "bought_3h", continuous=True) | {"ttlInDays": 1}, seg_id="bought_3h"
    )
    sb.put("p0", events=[event("a", T0 - timedelta(minutes=5))], now=T0)
    later = T0 + timedelta(hours=29)
    sb.put("p1", events=[event("b", later - timedelta(minutes=5))], now=later)
    assert {pid: rec["status"] for (pid, _), rec in _records(sb.store).items()} == {
        "p0": "realized",
        "p1": "realized",
    }
    seen: list[ms.Change] = []
    sb.segments.add_listener(lambda store, wb, changes: seen.extend(changes))

    at = T0 + timedelta(hours=30)
    job = sb.segments.run_job(None, now=at)

    assert [(c.profile_id, c.status, c.previous) for c in seen] == [
        ("p0", "exited", "realized"),
        ("p1", "existing", "realized"),
    ]
    records = _records(sb.store)
    assert records[("p0", "bought_3h")]["status"] == "exited"
    assert records[("p1", "bought_3h")]["status"] == "existing"
    assert job["metrics"]["segmentedProfileByStatusCounter"]["bought_3h"] == {"existing": 1, "exited": 1}
