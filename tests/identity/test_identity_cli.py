from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tessera.cli.identity import app

runner = CliRunner()

SHARED_DEVICE = "CRMID: Jane, ECID: 111\nCRMID: John, ECID: 111\nECID: 111\n"


def test_simulate_json_from_stdin() -> None:
    result = runner.invoke(
        app, ["simulate", "-", "--unique", "CRMID", "--priority", "CRMID,ECID", "--json"], input=SHARED_DEVICE
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["graphs"] == [
        {"identities": [{"namespace": "CRMID", "id": "John"}, {"namespace": "ECID", "id": "111"}]}
    ]
    assert body["rows"] == [
        {"primary": {"namespace": "CRMID", "id": "Jane"}, "rejected": None},
        {"primary": {"namespace": "CRMID", "id": "John"}, "rejected": None},
        {"primary": {"namespace": "ECID", "id": "111"}, "rejected": None},
    ]


def test_simulate_without_rules_is_plain_connected_components(tmp_path: Path) -> None:
    path = tmp_path / "rows.txt"
    path.write_text(SHARED_DEVICE, encoding="utf-8")
    result = runner.invoke(app, ["simulate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    (graph,) = json.loads(result.stdout)["graphs"]
    assert len(graph["identities"]) == 3


def test_simulate_reports_rejections_and_renders_tables() -> None:
    text = "GAID: a, GAID: b, ECID: e\n"
    result = runner.invoke(app, ["simulate", "--priority", "CRMID,GAID,ECID", "--json"], input=text)
    row = json.loads(result.stdout)["rows"][0]
    assert row["primary"] is None and "GAID" in row["rejected"]
    pretty = runner.invoke(
        app, ["simulate", "--unique", "CRMID", "--priority", "CRMID,ECID"], input=SHARED_DEVICE
    )
    assert pretty.exit_code == 0 and "CRMID:John" in pretty.stdout and "1 graph(s)" in pretty.stdout


def test_simulate_bad_line_is_a_clear_error() -> None:
    result = runner.invoke(app, ["simulate", "--json"], input="CRMID: Tom, ECID\n")
    assert result.exit_code == 1
    assert "Namespace: value" in result.output and "1:13" in result.output


def test_simulate_limit_option() -> None:
    text = "".join(f"CRMID: P, ECID: {k}\n" for k in range(5))
    result = runner.invoke(app, ["simulate", "--limit", "3", "--json"], input=text)
    (graph,) = json.loads(result.stdout)["graphs"]
    assert len(graph["identities"]) == 3


def test_simulate_reads_a_file_with_comments() -> None:
    path = Path(__file__).parents[1] / "data" / "identity" / "ioa2_shared_device.txt"
    args = ["simulate", str(path), "--unique", "CRMID,Email", "--priority", "CRMID,Email,ECID", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    graphs = {
        frozenset(f"{i['namespace']}:{i['id']}" for i in g["identities"])
        for g in json.loads(result.stdout)["graphs"]
    }
    assert graphs == {
        frozenset({"CRMID:Jane", "Email:jane@x"}),
        frozenset({"CRMID:John", "Email:john@x", "ECID:111"}),
    }


def test_simulate_missing_file() -> None:
    result = runner.invoke(app, ["simulate", "/nonexistent/rows.txt"])
    assert result.exit_code == 2 and "Cannot read" in result.output
