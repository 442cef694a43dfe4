"""The builder's live estimate reads a bounded, uniform sample: however many profiles the sandbox
holds, it reads at most ``estimate_sample_size`` profiles and only those profiles' events, and its
95 % interval covers the true count. All on the real store and PQL engine."""

from __future__ import annotations

import statistics
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tessera.api import create_app
from tessera.model import Identity
from tessera.ops.migrations import CURRENT_FORMAT, FORMAT_KEY, META, stored_format
from tessera.platform import Platform, Sandbox
from tessera.profile import sample
from tessera.profile.service import EVENTS, PROFILES
from tessera.segments import service as segment_service
from tessera.settings import Settings
from tessera.store import WriteBatch

PEOPLE = 1000
SAMPLE_SIZE = 60
"""The builder's bound in these tests: under a tenth of the profiles, so the sample is drawn in
runs after random points rather than from a read of the whole order."""
SINGLE = 'person.maritalStatus = "single"'
BROWSED = 'xEvent[eventType = "web.webpagedetails.pageViews"].count() > 1'


def _person(i: int) -> dict[str, Any]:
    return {
        "identityMap": {"CRMID": [{"id": f"c{i}", "primary": True}], "Email": [{"id": f"p{i}@x.com"}]},
        "person": {"maritalStatus": "single" if i % 4 == 0 else "married"},
    }


def _events(i: int) -> list[dict[str, Any]]:
    """Two events per person, both page views for every third one."""
    kinds = ["web.webpagedetails.pageViews", "commerce.productViews"]
    return [
        {
            "_id": f"e{i}-{n}",
            "timestamp": f"2026-03-01T10:0{n}:00Z",
            "eventType": kinds[0] if i % 3 == 0 else kinds[n],
            "identityMap": {"CRMID": [{"id": f"c{i}", "primary": True}]},
        }
        for n in range(2)
    ]


def _load(sb: Sandbox) -> None:
    schemas = sb.schemas.ensure_standard_schemas()
    sb.datasets.create("CRM", schemas["profile"])
    sb.datasets.create("Web", schemas["event"])
    sb.ingest.ingest_records("CRM", [_person(i) for i in range(PEOPLE)])
    sb.ingest.ingest_records("Web", [e for i in range(PEOPLE) for e in _events(i)])


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    settings = Settings(home=str(tmp_path / "home"), group_commit_ms=0.0, estimate_sample_size=SAMPLE_SIZE)
    with Platform(settings) as opened:
        _load(opened.sandbox())
        yield opened


class Reads:
    """Rows the sandbox's store hands out, per table (gets and scans)."""

    def __init__(self, sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rows: Counter[str] = Counter()
        self.profiles_with_events: set[str] = set()
        store = sb.store
        get, get_many, scan = store.get, store.get_many, store.scan

        def counted_get(table: str, k: str) -> bytes | None:
            value = get(table, k)
            self.rows[table] += value is not None
            return value

        def counted_get_many(table: str, keys: Any) -> dict[str, bytes]:
            found = get_many(table, keys)
            self.rows[table] += len(found)
            return found

        def counted_scan(table: str, prefix: str = "", **kw: Any) -> Iterator[tuple[str, bytes]]:
            for item in scan(table, prefix, **kw):
                self.rows[table] += 1
                if table == EVENTS:
                    self.profiles_with_events.add(sb.identity.profile_id_of(_identity_of(item[0])))
                yield item

        monkeypatch.setattr(store, "get", counted_get)
        monkeypatch.setattr(store, "get_many", counted_get_many)
        monkeypatch.setattr(store, "scan", counted_scan)


def _identity_of(event_key: str) -> Identity:
    ns, value = event_key.split("\x1f")[:2]
    return Identity(ns, value)


def _truth(sb: Sandbox, expr: str) -> int:
    exact = sb.segments.preview(expr, max_profiles=PEOPLE)["estimate"]
    assert exact["exact"] is True and exact["totalRows"] == PEOPLE
    return int(exact["estimatedSize"])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_builder_estimate_reads_at_most_the_sample_and_only_its_events(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = platform.sandbox()
    app = create_app(platform)
    for thread in threading.enumerate():  # the UI's cache warm-up samples events once at start
        if thread.name == "tessera-ui-warm-up":
            thread.join()
    reads = Reads(sb, monkeypatch)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post("/tessera/ui-api/estimate", json={"pql": BROWSED})
    assert response.status_code == 200, response.text
    est = response.json()["estimate"]
    assert est["exact"] is False and est["totalRows"] == PEOPLE
    assert est["profilesReadSoFar"] == SAMPLE_SIZE
    # the sampled profiles, plus the (at most 10) matching ones listed in the answer
    assert reads.rows[PROFILES] <= SAMPLE_SIZE + 10
    assert reads.rows[sample.SAMPLE] <= 4 * SAMPLE_SIZE  # keys of a few dozen bytes, some spare
    assert reads.rows[EVENTS] <= 2 * SAMPLE_SIZE and len(reads.profiles_with_events) <= SAMPLE_SIZE
    assert max(reads.rows.values()) < PEOPLE  # no table was walked whole


def test_attribute_only_estimate_reads_no_events(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    sb = platform.sandbox()
    reads = Reads(sb, monkeypatch)
    est = sb.segments.preview(SINGLE, max_profiles=50, seed=1)["estimate"]
    assert est["profilesReadSoFar"] == 50 and reads.rows[EVENTS] == 0


@pytest.mark.parametrize("expr", [SINGLE, BROWSED])
@pytest.mark.parametrize("size", [SAMPLE_SIZE, 150], ids=["runs after random points", "from the whole order"])
def test_sampled_intervals_cover_the_true_count_and_centre_on_it(
    platform: Platform, expr: str, size: int
) -> None:
    sb = platform.sandbox()
    truth = _truth(sb, expr)
    runs = [sb.segments.preview(expr, max_profiles=size, seed=seed)["estimate"] for seed in range(60)]
    assert all(r["profilesReadSoFar"] == size and r["exact"] is False for r in runs)
    covered = sum(r["confidenceIntervalBounds"][0] <= truth <= r["confidenceIntervalBounds"][1] for r in runs)
    assert covered >= 52  # a 95 % interval: 57 of 60 on average (Wald: a little fewer)
    # unbiased: the mean of 60 estimates is within a few standard errors of the mean of the truth
    se = statistics.mean(r["standardError"] for r in runs)
    assert abs(statistics.mean(r["estimatedSize"] for r in runs) - truth) < 3 * se / 60**0.5 + 1
    assert len({r["estimatedSize"] for r in runs}) > 3  # each seed draws another sample


def test_profiles_over_the_event_cap_widen_the_interval(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = platform.sandbox()
    truth = _truth(sb, BROWSED)
    monkeypatch.setattr(segment_service, "EVENT_CAP", 1)  # every profile has 2 events
    est = sb.segments.preview(BROWSED, max_profiles=PEOPLE)["estimate"]
    assert est["profilesTruncated"] == PEOPLE and est["exact"] is False
    low, high = est["confidenceIntervalBounds"]
    assert low <= truth <= high


def test_event_budget_stops_the_sample_early(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    sb = platform.sandbox()
    monkeypatch.setattr(segment_service, "EVENTS_PER_PROFILE", 1)  # budget: 100 events for 100 profiles
    est = sb.segments.preview(BROWSED, max_profiles=100, seed=3)["estimate"]
    assert est["profilesReadSoFar"] == 50 and est["totalRows"] == PEOPLE and est["exact"] is False


def test_store_written_before_the_sample_order_is_migrated_on_open(tmp_path: Path) -> None:
    settings = Settings(home=str(tmp_path / "home"), group_commit_ms=0.0)
    with Platform(settings) as opened:
        sb = opened.sandbox()
        _load(sb)
        # as format 2 left it: profiles, no sample order
        wb = WriteBatch().put_json(META, FORMAT_KEY, {"version": 2, "migrated": []})
        for k, _ in list(sb.store.scan(sample.SAMPLE)):
            wb.delete(sample.SAMPLE, k)
        sb.store.write(wb)
        assert sample.count(sb.store) == 0
    with Platform(settings) as opened:
        sb = opened.sandbox()
        assert stored_format(sb.store) == CURRENT_FORMAT
        assert sample.count(sb.store) == sb.profiles.count() == PEOPLE
        assert sb.segments.preview(SINGLE, max_profiles=PEOPLE)["estimate"]["estimatedSize"] == PEOPLE // 4


def test_sample_order_follows_profile_deletes(platform: Platform) -> None:
    sb = platform.sandbox()
    crm = sb.datasets.find("CRM")["id"]
    sb.profiles.delete_dataset_data(crm)
    web = sb.datasets.find("Web")["id"]
    sb.profiles.delete_dataset_data(web)
    assert sb.profiles.count() == sample.count(sb.store) == 0
    est = sb.segments.preview(SINGLE)["estimate"]
    assert est["estimatedSize"] == 0 and est["totalRows"] == 0
