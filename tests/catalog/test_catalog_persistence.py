"""The catalog survives restarts and explains its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera.errors import Conflict, InvalidInput, NotFound, SemanticError
from tessera.platform import Platform


def test_catalog_persists_across_restart(tmp_path: Path) -> None:
    with Platform.open(tmp_path) as p:
        p.sandboxes.create("dev", "Development")
        sb = p.sandbox("dev")
        schemas = sb.schemas.ensure_standard_schemas()
        ds = sb.datasets.create("CRM", schemas["profile"], upsert=True)
        batch = sb.batches.create(ds["id"], "json")
    with Platform.open(tmp_path) as p:
        assert {s["name"] for s in p.sandboxes.list()} == {"prod", "dev"}
        sb = p.sandbox("dev")
        again = sb.datasets.get(ds["id"])
        assert again["name"] == "CRM" and "isUpsert:true" in again["tags"]["unifiedProfile"]
        assert sb.batches.get(batch["id"])["status"] == "loading"
        assert sb.schemas.get(schemas["profile"])["title"]
        assert p.sandbox("prod").datasets.list() == []


def test_catalog_errors_name_the_problem(tmp_path: Path) -> None:
    with Platform.open(tmp_path) as p:
        with pytest.raises(InvalidInput) as bad_name:
            p.sandboxes.create("Not Valid!")
        assert bad_name.value.path == "name"
        with pytest.raises(SemanticError):
            p.sandboxes.delete("prod")
        with pytest.raises(NotFound):
            p.sandbox("missing")
        sb = p.sandbox()
        with pytest.raises(InvalidInput, match="does not exist") as no_schema:
            sb.datasets.create("CRM", "schema-x")
        assert no_schema.value.path == "schemaRef.id"
        profile = sb.schemas.ensure_standard_schemas()["profile"]
        sb.datasets.create("CRM", profile)
        with pytest.raises(Conflict):
            sb.datasets.create("CRM", profile)
        with pytest.raises(NotFound):
            sb.datasets.get("nope")


def test_deleting_a_sandbox_removes_its_data(tmp_path: Path) -> None:
    with Platform.open(tmp_path) as p:
        p.sandboxes.create("tmp")
        tmp = p.sandbox("tmp")
        tmp.datasets.create("x", tmp.schemas.ensure_standard_schemas()["profile"])
        folder = tmp_path / "sandboxes" / "tmp"
        assert folder.exists()
        p.delete_sandbox("tmp")
        assert not folder.exists()
        assert [s["name"] for s in p.sandboxes.list()] == ["prod"]
