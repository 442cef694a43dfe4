"""What one process writes during ordinary work must not make the others re-open the whole
sandbox: every table that streaming ingestion, streaming segmentation and batch segment jobs
write is either read through (every read goes to the store) or handled by a change note."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import crm_record, ecid, web_event

from tessera.platform import Platform
from tessera.scaleout.coordination import READ_THROUGH, ChangeNote
from tessera.settings import Settings
from tessera.store import WriteBatch


def test_streaming_and_segment_jobs_write_only_tables_other_processes_read_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Platform(Settings(home=str(tmp_path / "home"))) as platform:
        sb = platform.sandbox()
        schemas = sb.schemas.ensure_standard_schemas()
        crm = sb.datasets.create("CRM", schemas["profile"])
        web = sb.datasets.create("Web", schemas["event"])
        for name, continuous in (("janes", True), ("all", False)):
            sb.segments.create(
                {
                    "name": name,
                    "expression": {
                        "type": "PQL",
                        "format": "pql/text",
                        "value": 'person.name.firstName = "Jane"',
                    },
                    "evaluationInfo": {"batch": {"enabled": True}, "continuous": {"enabled": continuous}},
                },
                seg_id=name,
            )
        sb.merge_policies.default_for()  # set-up, created on first use: written once
        written: list[WriteBatch] = []
        write = sb.store.write

        def recording(batch: WriteBatch) -> None:
            written.append(batch)
            write(batch)

        monkeypatch.setattr(sb.store, "write", recording)
        sb.ingest.stream(
            [crm_record(f"c{i}", f"p{i}@x.com", "Jane" if i % 2 else "Ann") for i in range(6)],
            dataset_id=crm["id"],
        )
        sb.ingest.stream(
            [web_event(f"e{i}", ecid(i), "2026-03-01T12:00:00.000Z", CRMID=f"c{i}") for i in range(6)],
            dataset_id=web["id"],
        )
        sb.segments.run_job(None)
        sb.ingest.stream([crm_record("c1", "p1@x.com", "Ann")], dataset_id=crm["id"])  # leaves "janes"
        sb.segments.run_job(None)

        tables = {table for batch in written for table, _, _ in batch.ops}
        assert {
            "profile_memberships",
            "membership_index",
            "membership_index_dirty",
            "segment_rounds",
        } <= tables
        assert not any(ChangeNote.of(batch).full for batch in written), sorted(
            tables - READ_THROUGH - ChangeNote.HANDLED
        )
