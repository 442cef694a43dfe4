"""Ingestion through the public Python API: formats, counts, bad rows, identity refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from tests.conftest import crm_record, ecid, web_event

from tessera.model import Identity


def _write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_json_array_file_ingests_every_record(retail: dict[str, Any], tmp_path: Path) -> None:
    sb = retail["sandbox"]
    rows = [crm_record(f"c{i}", f"p{i}@example.com") for i in range(25)]
    path = tmp_path / "crm.json"
    path.write_text(json.dumps(rows))
    batch = sb.ingest.ingest_file("CRM", path)
    assert batch["status"] == "success"
    assert batch["metrics"]["outputRecordCount"] == 25 and batch["metrics"]["failedRecordCount"] == 0
    view = sb.profiles.get(Identity("Email", "p7@example.com"))
    assert view is not None and view.attributes["person"]["name"]["firstName"] == "Jane"


def test_mixed_batch_lands_exactly_the_good_records_and_reports_each_bad_one(
    retail: dict[str, Any], tmp_path: Path
) -> None:
    sb = retail["sandbox"]
    good = [crm_record(f"c{i}", f"p{i}@example.com") for i in range(10)]
    bad_birth = crm_record("b1", "b1@example.com", person={"birthDate": "not-a-date"})
    no_identity = {"person": {"name": {"firstName": "Ghost"}}}
    junk = {"identityMap": {"CRMID": [{"id": "null"}], "Email": [{"id": "anonymous"}]}}
    lines: list[Any] = [*good[:5], bad_birth, "{not json", no_identity, junk, *good[5:]]
    batch = sb.ingest.ingest_file("CRM", _write_jsonl(tmp_path / "mixed.jsonl", lines))
    m = batch["metrics"]
    assert (m["inputRecordCount"], m["outputRecordCount"], m["failedRecordCount"]) == (14, 10, 4)
    assert batch["partial"] is True
    errors = list(sb.batches.errors(batch["id"]))
    assert [e["row"] for e in errors] == [6, 7, 8, 9]
    by_row = {e["row"]: e for e in errors}
    assert by_row[6]["path"] == "person.birthDate"
    assert "JSON" in by_row[7]["message"] or "json" in by_row[7]["message"].lower()
    assert "identity" in by_row[8]["message"]
    assert "placeholder" in by_row[9]["message"] or "refused" in by_row[9]["message"]
    for i in range(10):
        assert sb.profiles.get(Identity("CRMID", f"c{i}")) is not None
    assert sb.profiles.get(Identity("CRMID", "b1")) is None


def test_csv_with_column_mapping(retail: dict[str, Any], tmp_path: Path) -> None:
    from tessera.xdm import PROFILE

    sb = retail["sandbox"]
    schema = sb.schemas.change(
        lambda reg: reg.create_schema(
            "CRM CSV",
            PROFILE,
            ["IdentityMap", "Demographic Details", "Personal Contact Details"],
            identities=[{"path": "personalEmail.address", "namespace": "Email", "primary": True}],
            profile_enabled=True,
        )
    )
    sb.datasets.create("CRM CSV", schema.id)
    path = tmp_path / "crm.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["crm", "mail", "first"])
        for i in range(12):
            writer.writerow([f"c{i}", f"p{i}@example.com", f"Name{i}"])
    mapping = {"mail": "personalEmail.address", "first": "person.name.firstName"}
    batch = sb.ingest.ingest_file("CRM CSV", path, mapping=mapping)
    assert batch["metrics"]["outputRecordCount"] == 12, list(sb.batches.errors(batch["id"]))
    view = sb.profiles.get(Identity("Email", "p3@example.com"))
    assert view is not None and view.attributes["person"]["name"]["firstName"] == "Name3"


def test_parquet_with_nested_columns(retail: dict[str, Any], tmp_path: Path) -> None:
    sb = retail["sandbox"]
    events = [web_event(f"e{i}", ecid(i % 4), f"2024-01-0{1 + i % 9}T10:00:00Z") for i in range(40)]
    table = pa.Table.from_pylist(events)
    path = tmp_path / "web.parquet"
    pq.write_table(table, path)
    batch = sb.ingest.ingest_file("Web", path)
    assert batch["metrics"]["outputRecordCount"] == 40, list(sb.batches.errors(batch["id"]))
    events_of_0, _ = sb.profiles.events(Identity("ECID", ecid(0)))
    assert len(events_of_0) == 10


def test_repeated_event_id_is_one_event(retail: dict[str, Any]) -> None:
    sb = retail["sandbox"]
    ev = web_event("same", ecid(1), "2024-01-01T00:00:00Z")
    sb.ingest.ingest_records("Web", [ev, ev])
    sb.ingest.ingest_records("Web", [ev])
    events, _ = sb.profiles.events(Identity("ECID", ecid(1)))
    assert len(events) == 1


def test_events_need_id_and_timestamp(retail: dict[str, Any]) -> None:
    sb = retail["sandbox"]
    no_ts = web_event("x", ecid(2), "2024-01-01T00:00:00Z")
    del no_ts["timestamp"]
    no_id = web_event("y", ecid(2), "2024-01-01T00:00:00Z")
    del no_id["_id"]
    batch = sb.ingest.ingest_records("Web", [no_ts, no_id])
    assert batch["status"] == "failed"
    paths = {e["path"] for e in sb.batches.errors(batch["id"])}
    assert paths == {"timestamp", "_id"}


def test_identity_refusal_rules(retail: dict[str, Any]) -> None:
    sb = retail["sandbox"]
    short_ecid = web_event("a", "12345", "2024-01-01T00:00:00Z")
    long_value = crm_record("x" * 1025, "long@example.com")
    too_many = crm_record("many", "many@example.com")
    too_many["identityMap"]["Phone"] = [{"id": f"+1555000{i:04d}"} for i in range(20)]
    dup = crm_record("dup", "dup@example.com")
    dup["identityMap"]["Email"].append({"id": "dup@example.com"})
    events = sb.ingest.ingest_records("Web", [short_ecid])
    assert events["metrics"]["failedRecordCount"] == 1
    assert "38 digits" in next(sb.batches.errors(events["id"]))["message"]
    batch = sb.ingest.ingest_records("CRM", [long_value, too_many, dup])
    errors = list(sb.batches.errors(batch["id"]))
    assert (
        batch["metrics"]["outputRecordCount"] == 2
    )  # the 1025-char CRMID is dropped; Email still identifies
    assert len(errors) == 1 and "at most 20" in errors[0]["message"]
    view = sb.profiles.get(Identity("Email", "dup@example.com"))
    assert view is not None and len([i for i in view.identities if i["namespace"]["code"] == "Email"]) == 1


def test_oversized_records_are_refused(retail: dict[str, Any]) -> None:
    sb = retail["sandbox"]
    big = crm_record("big", "big@example.com", person={"name": {"firstName": "x" * 120_000}})
    batch = sb.ingest.ingest_records("CRM", [big])
    assert batch["status"] == "failed"
    assert "limit" in next(sb.batches.errors(batch["id"]))["message"]


def test_streaming_envelope_one_and_many(retail: dict[str, Any]) -> None:
    sb = retail["sandbox"]
    web = retail["web"]

    def envelope(entity: dict[str, Any]) -> dict[str, Any]:
        ref = {
            "id": retail["schemas"]["event"],
            "contentType": "application/vnd.adobe.xed-full+json;version=1",
        }
        return {
            "header": {"schemaRef": ref, "datasetId": web["id"]},
            "body": {"xdmMeta": {"schemaRef": ref}, "xdmEntity": entity},
        }

    good = envelope(web_event("s1", ecid(5), "2024-02-01T00:00:00Z"))
    bad = envelope({"_id": "s2", "identityMap": {"ECID": [{"id": ecid(5)}]}})
    results = sb.ingest.stream([good, bad, {"nonsense": True}])
    assert "xactionId" in results[0]
    assert results[1]["statusCode"] == 400 and "timestamp" in results[1]["message"]
    assert results[2]["statusCode"] == 400
    events, _ = sb.profiles.events(Identity("ECID", ecid(5)))
    assert [e["record"]["_id"] for e in events] == ["s1"]


def test_a_batch_of_many_chunks_counts_rows_across_chunks_even_under_a_held_write_lock(
    retail: dict[str, Any], tmp_path: Path, monkeypatch: Any
) -> None:
    """Chunks are read on a helper thread and applied on the caller's: a caller already holding
    the sandbox's write lock (startup recovery resumes batches that way) must not wait on itself,
    and bad rows keep their row numbers whichever chunk they fall in."""
    import gc

    import tessera.ingest.service as ingest_service

    monkeypatch.setattr(ingest_service, "CHUNK_ROWS", 3)
    sb = retail["sandbox"]
    lines: list[Any] = [crm_record(f"c{i}", f"p{i}@example.com") for i in range(10)]
    lines[4] = "{not json"
    lines[8] = {"person": {"name": {"firstName": "Ghost"}}}
    path = _write_jsonl(tmp_path / "chunks.jsonl", lines)
    with sb.write_lock:
        batch = sb.ingest.ingest_file("CRM", path)
    m = batch["metrics"]
    assert (m["inputRecordCount"], m["outputRecordCount"], m["failedRecordCount"]) == (10, 8, 2)
    assert [e["row"] for e in sb.batches.errors(batch["id"])] == [5, 9]
    assert sb.profiles.get(Identity("CRMID", "c9")) is not None
    assert gc.isenabled()  # the collector paused per chunk is running again
