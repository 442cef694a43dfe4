"""The membership index a batch job plans from: kept up to date by jobs, re-read for profiles
other writers changed (streaming, expiry), and giving the same records and changes as reading
every document."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from segfakes import FakeSandbox, definition, event

from tessera.segments import memberships as ms
from tessera.store import PointStore, WriteBatch

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _sandbox(path: Path) -> FakeSandbox:
    sb = FakeSandbox(path)
    # "us" also streams (its records change between jobs); "bought_3h" expires after a day
    sb.segments.create(definition("us", "us", continuous=True), seg_id="us")
    sb.segments.create(
        definition("bought_3h", "bought_3h", continuous=False) | {"ttlInDays": 1}, seg_id="bought_3h"
    )
    sb.segments.create(definition("spend_100_1d", "spend_100_1d", continuous=True), seg_id="spend_100_1d")
    return sb


def _records(store: PointStore) -> dict[tuple[str, str], dict[str, Any]]:
    return {(pid, sid): rec for pid, sid, rec in ms.scan_all(store)}


def _groups(index: ms.MembershipIndex) -> dict[str, dict[ms.GroupKey, set[str]]]:
    return {sid: {k: g for k, g in groups.items() if g} for sid, groups in index.groups.items()}


def _stored_index(store: PointStore) -> dict[str, dict[ms.GroupKey, set[str]]]:
    return _groups(ms.MembershipIndex.load(store))


def _from_documents(store: PointStore) -> dict[str, dict[ms.GroupKey, set[str]]]:
    return _groups(ms.MembershipIndex._from_documents(store, []))


def test_jobs_planned_from_the_index_match_jobs_reading_every_document(tmp_path: Path) -> None:
    """Two sandboxes get the same streaming updates and jobs; one drops its index before every
    job (so each job reads every document). Records and changes stay identical, and the index
    after each job is what reading every document gives."""
    indexed, scanned = _sandbox(tmp_path / "a"), _sandbox(tmp_path / "b")
    heard: dict[str, list[ms.Change]] = {"a": [], "b": []}
    indexed.segments.add_listener(lambda store, wb, changes: heard["a"].extend(changes))
    scanned.segments.add_listener(lambda store, wb, changes: heard["b"].extend(changes))
    rnd = random.Random(11)
    re_read = 0
    for step, hours in enumerate([0, 5, 13, 30, 31, 60, 90]):
        now = T0 + timedelta(hours=hours)
        for i in range(25):
            if rnd.random() < 0.5:
                evs = [event(f"{step}-{i}", now - timedelta(hours=1), "purchase", rnd.randint(30, 90))]
                attrs = {"homeAddress": {"countryCode": rnd.choice(["US", "FR"])}}
                for sb in (indexed, scanned):
                    sb.put(f"p{i:02d}", attributes=attrs, events=evs, now=now)
        wb = WriteBatch()
        ms.MembershipIndex.drop(wb)
        scanned.store.write(wb)
        re_read += len(list(indexed.store.scan(ms.DIRTY)))
        job_a = indexed.segments.run_job(None, now=now)
        job_b = scanned.segments.run_job(None, now=now)

        assert _records(indexed.store) == _records(scanned.store)
        assert heard["a"] == heard["b"]
        assert (
            job_a["metrics"]["segmentedProfileByStatusCounter"]
            == job_b["metrics"]["segmentedProfileByStatusCounter"]
        )
        assert _stored_index(indexed.store) == _from_documents(indexed.store)
        assert list(indexed.store.scan(ms.DIRTY)) == []  # read again and cleared by the job
    assert re_read > 0  # streaming wrote between jobs: those profiles were read again
    statuses = {rec["status"] for rec in _records(indexed.store).values()}
    assert statuses == {"realized", "existing", "exited"}


def test_streaming_writes_mark_profiles_for_the_next_job(tmp_path: Path) -> None:
    sb = _sandbox(tmp_path)
    sb.put("p1", attributes={"homeAddress": {"countryCode": "US"}}, now=T0)
    assert [pid for pid, _ in sb.store.scan(ms.DIRTY)] == ["p1"]
    sb.segments.run_job(None, now=T0)
    assert list(sb.store.scan(ms.DIRTY)) == []
    # confirmed by the job without a write: stored as streaming wrote it, read as existing
    assert _stored_index(sb.store)["us"] == {("realized", "2026-03-31T12:00:00.000Z", 0): {"p1"}}
    assert ms.read(sb.store, "p1")["us"]["status"] == "existing"
    sb.put("p1", attributes={"homeAddress": {"countryCode": "FR"}}, now=T0 + timedelta(hours=1))
    assert [pid for pid, _ in sb.store.scan(ms.DIRTY)] == ["p1"]
    job = sb.segments.run_job(None, now=T0 + timedelta(hours=2))
    # the stored index still put p1 in "us"; the job read p1 again and saw it had exited
    assert job["metrics"]["segmentedProfileByStatusCounter"]["us"] == {}
    assert _records(sb.store)[("p1", "us")]["status"] == "exited"


def test_a_job_deciding_records_one_by_one_drops_the_index(tmp_path: Path) -> None:
    """A status the set-difference planner does not know (written by another tool) makes the job
    decide that segment one membership at a time; it does not keep the index up to date then,
    so it invalidates it and the next job reads every document."""
    sb = _sandbox(tmp_path)
    for i in range(3):
        sb.put(f"p{i}", attributes={"homeAddress": {"countryCode": "US"}}, now=T0)
    sb.segments.run_job(None, now=T0)
    assert sb.store.get(ms.INDEX, ms.INDEX_VALID) is not None
    pending = {"us": {"status": "pending"}}
    sb.store.write(WriteBatch().put_json(ms.MEMBERSHIPS, "p9", pending).put(ms.DIRTY, "p9", b""))
    seen: list[ms.Change] = []
    sb.segments.add_listener(lambda store, wb, changes: seen.extend(changes))

    sb.segments.run_job(None, now=T0 + timedelta(hours=1))

    assert sb.store.get(ms.INDEX, ms.INDEX_VALID) is None
    assert {(c.profile_id, c.status, c.previous) for c in seen if c.segment_id == "us"} == set()
    sb.segments.run_job(None, now=T0 + timedelta(hours=2))
    assert _stored_index(sb.store) == _from_documents(sb.store)
    assert {pid: rec["status"] for (pid, sid), rec in _records(sb.store).items() if sid == "us"} == {
        "p0": "existing",
        "p1": "existing",
        "p2": "existing",
        "p9": "pending",
    }
