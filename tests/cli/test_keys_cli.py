"""`tessera keys` create / list / revoke."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tessera.api.keys import verify_key
from tessera.cli.keys import app
from tessera.platform import Platform
from tessera.settings import Settings


def test_create_list_revoke(tmp_path: Path) -> None:
    runner = CliRunner()
    home = str(tmp_path)
    created = runner.invoke(app, ["create", "--sandbox", "prod", "--name", "ci", "--home", home, "--json"])
    assert created.exit_code == 0, created.output
    record = json.loads(created.stdout)
    with Platform(Settings(home=home)) as platform:
        key = verify_key(platform.system, record["key"])
        assert key is not None and key.sandboxes == ("prod",)
    listed = json.loads(runner.invoke(app, ["list", "--home", home, "--json"]).stdout)
    assert [k["name"] for k in listed] == ["ci"] and "hash" not in listed[0]
    assert runner.invoke(app, ["revoke", record["id"], "--home", home]).exit_code == 0
    assert runner.invoke(app, ["revoke", record["id"], "--home", home]).exit_code == 1


def test_unknown_sandbox_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["create", "--sandbox", "nope", "--home", str(tmp_path)])
    assert result.exit_code == 1
