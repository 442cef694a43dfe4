"""Export jobs to files and datasets, file destinations (full/incremental), audience lifecycle."""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "segments"))
from segfakes import FakeSandbox, definition, event

from tessera.errors import Conflict, InvalidInput
from tessera.model import Identity

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def sb(tmp_path: Path) -> FakeSandbox:
    s = FakeSandbox(tmp_path)
    s.segments.create(definition("US", "us"), seg_id="us")
    s.segments.create(definition("Bought", "bought_3h"), seg_id="bought_3h")
    s.put("p1", attributes={"homeAddress": {"countryCode": "US"}, "person": {"name": "Ann"}}, now=T0)
    s.put(
        "p2",
        attributes={"homeAddress": {"countryCode": "US"}, "person": {"name": "Bob"}},
        events=[event("e1", T0)],
        now=T0,
    )
    s.put("p3", attributes={"homeAddress": {"countryCode": "FR"}}, events=[event("e2", T0)], now=T0)
    s.segments.tick(T0 + timedelta(hours=4))  # p2, p3 exit bought_3h
    return s


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_export_job_writes_members_with_chosen_fields(sb: FakeSandbox, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"us.{fmt}"
    job = sb.segments.activation.exports.create(
        {
            "fields": "person.name,identities",
            "filter": {"segments": [{"segmentId": "us"}]},
            "destination": {"format": fmt, "path": out.name},
        }
    )
    out = Path(job["destination"]["path"])
    assert job["status"] == "SUCCEEDED" and job["metrics"]["totalExportedProfileCounter"] == 2
    assert job["metrics"]["exportedProfileByNamespaceCounter"] == {"CRMID": 2}
    if fmt == "csv":
        rows = list(csv.DictReader(out.open()))
    elif fmt == "parquet":
        rows = pq.read_table(out).to_pylist()
    else:
        rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [(r["profileId"], r["person.name"]) for r in rows] == [("p1", "Ann"), ("p2", "Bob")]


def test_export_status_filter_and_dataset_destination(sb: FakeSandbox) -> None:
    job = sb.segments.activation.exports.create(
        {
            "filter": {"segments": [{"segmentId": "bought_3h", "status": ["exited"]}]},
            "destination": {"datasetId": "ds1"},
        }
    )
    assert job["metrics"]["totalExportedProfileCounter"] == 2
    dataset, records = sb.ingested[0]
    assert dataset == "ds1"
    assert [r["segmentMembership"]["ups"]["bought_3h"]["status"] for r in records] == ["exited", "exited"]
    assert records[0]["identityMap"]["CRMID"][0] == {"id": "p2", "primary": True}
    with pytest.raises(InvalidInput):
        sb.segments.activation.exports.create({"filter": {"segments": []}})


def test_export_can_evaluate_segments_first(tmp_path: Path) -> None:
    s = FakeSandbox(tmp_path)
    s.put("p1", attributes={"homeAddress": {"countryCode": "US"}}, now=T0)
    s.segments.create(definition("US", "us", continuous=False), seg_id="us")  # batch only: no members yet
    body = {
        "filter": {"segments": [{"segmentId": "us"}]},
        "destination": {"format": "jsonl", "path": "o.jsonl"},
    }
    assert s.segments.activation.exports.create(body)["metrics"]["totalExportedProfileCounter"] == 0
    job = s.segments.activation.exports.create({**body, "evaluationInfo": {"segmentation": True}})
    assert job["metrics"]["totalExportedProfileCounter"] == 1


def test_file_destination_full_then_incremental(sb: FakeSandbox, tmp_path: Path) -> None:
    dests = sb.segments.activation.destinations
    full = dests.create(
        {
            "type": "file",
            "segments": ["us"],
            "format": "jsonl",
            "mode": "full",
            "folder": "full",
        }
    )
    inc = dests.create(
        {
            "type": "file",
            "segments": ["bought_3h"],
            "format": "csv",
            "mode": "incremental",
            "folder": "inc",
        }
    )
    assert dests.run_file(full["id"], T0 + timedelta(hours=5))["profiles"] == 2
    assert dests.run_file(inc["id"], T0 + timedelta(hours=5))["profiles"] == 2  # the two exits
    assert dests.run_file(inc["id"], T0 + timedelta(hours=6))["profiles"] == 0  # nothing changed since
    sb.put("p1", events=[event("e3", T0 + timedelta(hours=7))], now=T0 + timedelta(hours=7))
    assert dests.run_file(inc["id"], T0 + timedelta(hours=8))["profiles"] == 1
    # on a schedule of type export
    sched = sb.segments.schedules.create(
        {
            "type": "export",
            "schedule": "0 0 * * * ?",
            "state": "active",
            "properties": {"destinationId": full["id"]},
        },
        now=T0,
    )
    paths = sb.segments.schedules.run_due(T0 + timedelta(hours=2))
    assert len(paths) == 1 and Path(paths[0]).exists() and sched["type"] == "export"
    with pytest.raises(Conflict):
        sb.segments.delete("us")  # activated to a destination


def test_audience_lifecycle_and_external_audiences(sb: FakeSandbox) -> None:
    aud = sb.segments.activation.audiences
    draft = aud.create(
        {
            "name": "US again",
            "expression": {"format": "pql/text", "value": "us"},
            "evaluationInfo": {"continuous": {"enabled": True}},
        }
    )
    assert draft["lifecycleState"] == "draft" and draft["type"] == "SegmentDefinition"
    assert aud.set_state(draft["id"], "published")["lifecycleState"] == "published"
    with pytest.raises(Conflict):
        aud.set_state(draft["id"], "draft")
    sb.identity.graph["p9"] = [Identity("Email", "z@example.com")]
    ext = aud.create(
        {
            "name": "Uploaded",
            "lifecycleState": "published",
            "identities": [{"namespace": "CRMID", "id": "p1"}, {"namespace": "Email", "id": "z@example.com"}],
        }
    )
    assert ext["type"] == "ExternalSegment"
    assert sb.segments.memberships_of("p1")[ext["id"]]["status"] == "realized"
    assert sb.segments.memberships_of("p9")[ext["id"]]["status"] == "realized"
    assert {a["id"] for a in aud.list()} >= {draft["id"], ext["id"], "us"}
    # uploaded audiences expire 30 days after publication unless refreshed
    sb.segments.expire_memberships(datetime.now(UTC) + timedelta(days=29))
    assert sb.segments.memberships_of("p1")[ext["id"]]["status"] == "realized"
    sb.segments.expire_memberships(datetime.now(UTC) + timedelta(days=31))
    assert sb.segments.memberships_of("p1")[ext["id"]]["status"] == "exited"
    aud.set_state(ext["id"], "inactive")
    assert sb.segments.memberships_of("p1")[ext["id"]]["status"] == "exited"
