"""Export jobs cannot write outside the sandbox's exports folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.conftest import crm_record

from tessera.errors import InvalidInput


@pytest.mark.parametrize("path", ["/tmp/evil.csv", "../../evil.csv", "sub/evil.csv", "..", "/etc/passwd"])
def test_export_refuses_paths_outside_the_exports_folder(
    retail: dict[str, Any], path: str, tmp_path: Path
) -> None:
    sb = retail["sandbox"]
    sb.ingest.ingest_records("CRM", [crm_record("x1", "x1@example.com")])
    seg = sb.segments.create(
        {
            "name": "All",
            "expression": {"type": "PQL", "format": "pql/text", "value": 'person.name.firstName = "Jane"'},
        }
    )
    sb.segments.run_job([{"segmentId": seg["id"]}])
    body = {
        "filter": {"segments": [{"segmentId": seg["id"]}]},
        "destination": {"format": "csv", "path": path},
    }
    with pytest.raises(InvalidInput):
        sb.segments.activation.exports.create(body)


def test_export_file_name_lands_in_the_sandbox(retail: dict[str, Any]) -> None:
    sb = retail["sandbox"]
    sb.ingest.ingest_records("CRM", [crm_record("x2", "x2@example.com")])
    seg = sb.segments.create(
        {
            "name": "All",
            "expression": {"type": "PQL", "format": "pql/text", "value": 'person.name.firstName = "Jane"'},
        }
    )
    sb.segments.run_job([{"segmentId": seg["id"]}])
    job = sb.segments.activation.exports.create(
        {
            "filter": {"segments": [{"segmentId": seg["id"]}]},
            "destination": {"format": "csv", "path": "jane.csv"},
        }
    )
    target = Path(job["destination"]["path"])
    assert target.name == "jane.csv" and sb.folder in target.parents
