"""Backup and restore of a sandbox: the restored copy answers every query as the original does."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from tests.ops.sandbox_answers import PEOPLE, answers_of, assert_same_answers, populate
from typer.testing import CliRunner

from tessera.cli.main import app as cli
from tessera.errors import Conflict, InvalidInput
from tessera.ops.backup import backup_sandbox, read_manifest, restore_sandbox
from tessera.ops.migrations import CURRENT_FORMAT
from tessera.platform import Platform
from tessera.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def platform(home: Path) -> Iterator[Platform]:
    with Platform(Settings(home=str(home), group_commit_ms=0.0)) as opened:
        yield opened


async def test_restored_sandbox_answers_every_query_identically(platform: Platform, tmp_path: Path) -> None:
    platform.sandboxes.create("shop")
    made = populate(platform.sandbox("shop"))
    manifest = backup_sandbox(platform, "shop", tmp_path / "bk")
    assert manifest["storeFormat"] == CURRENT_FORMAT and manifest["counts"]["rows"] > PEOPLE * 3
    # the tables are plain Parquet: a reader outside Tessera sees every row
    fragments = pq.read_table(tmp_path / "bk" / manifest["tables"]["profile_memberships"]["file"])
    assert fragments.num_rows == manifest["tables"]["profile_memberships"]["rows"] > 0

    result = restore_sandbox(platform, tmp_path / "bk", as_name="shop-copy")
    assert result["rows"] == manifest["counts"]["rows"]
    original = await answers_of(platform, "shop", made)
    copy = await answers_of(platform, "shop-copy", made)
    assert_same_answers(original, copy, "shop", "shop-copy", made)


def test_restore_into_another_installation_via_cli(platform: Platform, tmp_path: Path) -> None:
    made = populate(platform.sandbox())
    before = platform.sandbox().profiles.count()
    platform.close()
    runner = CliRunner()
    backup = runner.invoke(
        cli, ["sandbox", "backup", "prod", str(tmp_path / "bk"), "--home", str(platform.home), "--json"]
    )
    assert backup.exit_code == 0, backup.output
    assert orjson.loads(backup.output)["rows"] > 0
    other = tmp_path / "other-home"
    restored = runner.invoke(
        cli, ["sandbox", "restore", str(tmp_path / "bk"), "--home", str(other), "--json"]
    )
    assert restored.exit_code == 2 and "already exists" in restored.output  # prod always exists
    restored = runner.invoke(
        cli, ["sandbox", "restore", str(tmp_path / "bk"), "--as", "copy", "--home", str(other), "--json"]
    )
    assert restored.exit_code == 0, restored.output
    with Platform(Settings(home=str(other))) as second:
        sb = second.sandbox("copy")
        assert sb.profiles.count() == before
        assert sb.merge_policies.get(made["policy"]).name == "crm-first"
        assert [p.name for p in sb.merge_policies.list()].count("crm-first") == 1


def test_damaged_or_foreign_backups_are_refused_before_anything_is_created(
    platform: Platform, tmp_path: Path
) -> None:
    populate(platform.sandbox())
    backup_sandbox(platform, "prod", tmp_path / "bk")
    with pytest.raises(Conflict):
        backup_sandbox(platform, "prod", tmp_path / "bk")  # not empty
    with pytest.raises(Conflict):
        restore_sandbox(platform, tmp_path / "bk")  # prod exists
    damaged = tmp_path / "damaged"
    shutil.copytree(tmp_path / "bk", damaged)
    table = next((damaged / "tables").iterdir())
    table.write_bytes(table.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(InvalidInput, match="damaged"):
        restore_sandbox(platform, damaged, as_name="x")
    assert not platform.sandboxes.exists("x")
    escaping = tmp_path / "escaping"
    shutil.copytree(tmp_path / "bk", escaping)
    manifest = orjson.loads((escaping / "manifest.json").read_bytes())
    manifest["files"]["../../evil"] = {"bytes": 1, "sha256": "0"}
    (escaping / "manifest.json").write_bytes(orjson.dumps(manifest))
    with pytest.raises(InvalidInput, match="outside"):
        read_manifest(escaping)
    with pytest.raises(InvalidInput, match="not a Tessera"):
        (tmp_path / "foreign").mkdir()
        (tmp_path / "foreign" / "manifest.json").write_bytes(b"{}")
        restore_sandbox(platform, tmp_path / "foreign", as_name="y")
