"""A privacy delete leaves nothing of the person in any file the platform wrote: the stores, the
staged uploads, export files in every format, destination files and pending webhook deliveries.
Other people's rows stay."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from tessera import Platform
from tessera.activation.exports import read_export_file

ZED = {"crm": "zed-crm-77", "email": "zed.secret@example.com", "name": "Zebulon", "event": "ev-zed-1"}
AMY = {"crm": "amy-crm-12", "email": "amy@example.com", "name": "Amaryllis", "event": "ev-amy-1"}


def _record(p: dict[str, str]) -> dict[str, object]:
    return {
        "identityMap": {"CRMID": [{"id": p["crm"], "primary": True}], "Email": [{"id": p["email"]}]},
        "person": {"name": {"firstName": p["name"]}},
        "homeAddress": {"countryCode": "US"},
    }


def _event(p: dict[str, str]) -> dict[str, object]:
    return {
        "_id": p["event"],
        "timestamp": "2024-05-01T10:00:00Z",
        "eventType": "web.webpagedetails.pageViews",
        "identityMap": {"Email": [{"id": p["email"], "primary": True}]},
    }


def _files_mentioning(home: Path, needles: list[bytes]) -> list[tuple[str, bytes]]:
    hits = []
    for root, _, files in os.walk(home):
        for name in files:
            data = (Path(root) / name).read_bytes()
            hits += [(str(Path(root, name).relative_to(home)), n) for n in needles if n in data]
    return hits


def test_privacy_delete_leaves_nothing_of_the_person_in_any_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Platform.open(home) as platform:
        sb = platform.sandbox()
        schemas = sb.schemas.ensure_standard_schemas()
        crm = sb.datasets.create("CRM", schemas["profile"])
        web = sb.datasets.create("Web", schemas["event"])
        batch = sb.ingest.create_batch(crm["id"])  # a staged upload, not just records in memory
        sb.ingest.upload(batch["id"], "people.json", orjson.dumps([_record(ZED), _record(AMY)]))
        assert sb.ingest.complete(batch["id"])["status"] == "success"
        sb.ingest.stream([_event(ZED), _event(AMY)], dataset_id=web["id"])
        seg = sb.segments.create(
            {
                "name": "US",
                "expression": {
                    "type": "PQL",
                    "format": "pql/text",
                    "value": 'homeAddress.countryCode = "US"',
                },
                "schema": {"name": "_xdm.context.profile"},
                "evaluationInfo": {"continuous": {"enabled": True}},
            }
        )
        activation = sb.segments.activation
        # a webhook nobody answers keeps its deliveries pending; created before the job so it sees them
        activation.destinations.create(
            {"type": "webhook", "name": "down", "url": "http://127.0.0.1:9/", "secret": "s3cret-s3cret",
             "segments": [seg["id"]]}
        )  # fmt: skip
        sb.segments.run_job([{"segmentId": seg["id"]}])
        exported = []
        for fmt in ("jsonl", "csv", "parquet"):
            job = activation.exports.create(
                {
                    "fields": "identities,person.name.firstName",
                    "filter": {"segments": [{"segmentId": seg["id"]}]},
                    "destination": {"format": fmt},
                }
            )
            assert job["status"] == "SUCCEEDED", job
            exported.append(Path(job["destination"]["path"]))
        files = activation.destinations.create(
            {"type": "file", "name": "nightly", "segments": [seg["id"]], "format": "csv"}
        )
        exported.append(Path(activation.destinations.run_file(files["id"])["path"]))
        needles = [v.encode() for v in ZED.values()]
        assert len({path for path, _ in _files_mentioning(home, needles)}) >= len(exported)

        sb.privacy.run(
            {
                "users": [{"key": "u1", "action": ["delete"],
                           "userIDs": [{"namespace": "Email", "value": ZED["email"], "type": "standard"}]}],
                "expandIds": True,
            }
        )  # fmt: skip
        for path in exported:  # the other person is still exported
            rows = read_export_file(path)
            assert len(rows) == 1 and AMY["crm"] in orjson.dumps(rows[0]).decode(), path
        assert _files_mentioning(home, needles) == []  # while the platform runs
    assert _files_mentioning(home, needles) == []  # and after it closed
