"""The CLI end to end on a data directory: schemas, datasets, ingestion, profiles, rules, privacy."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import crm_record, ecid, web_event
from typer.testing import CliRunner

from tessera.cli.main import app

runner = CliRunner()


def run(home: Path, *args: str, stdin: str | None = None) -> str:
    result = runner.invoke(app, [*args, "--home", str(home)], input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_workflow(tmp_path: Path) -> None:
    home = tmp_path / "home"
    schemas = json.loads(run(home, "schema", "standard", "--json"))
    run(home, "dataset", "create", "CRM", "--schema", schemas["profile"])
    run(home, "dataset", "create", "Web", "--schema", "Tessera ExperienceEvent")
    crm = tmp_path / "crm.jsonl"
    crm.write_text(
        "\n".join(json.dumps(crm_record(f"c{i}", f"p{i}@example.com", first=f"N{i}")) for i in range(5))
        + "\n{bad\n"
    )
    batches = json.loads(run(home, "ingest", "file", "CRM", str(crm), "--json"))
    assert batches[0]["metrics"]["outputRecordCount"] == 5 and batches[0]["metrics"]["failedRecordCount"] == 1
    events = "\n".join(
        json.dumps(web_event(f"e{i}", ecid(7), f"2024-01-0{i + 1}T00:00:00Z", CRMID="c1")) for i in range(3)
    )
    summary = json.loads(run(home, "ingest", "stream", "--dataset", "Web", "--json", stdin=events + "\n"))
    assert summary == {"ingested": 3, "rejected": 0}
    profile = json.loads(run(home, "profile", "get", "ECID", ecid(7), "--json"))
    assert profile["attributes"]["person"]["name"]["firstName"] == "N1"
    listed = json.loads(run(home, "profile", "events", "Email", "p1@example.com", "--json"))
    assert [e["_id"] for e in listed] == ["e0", "e1", "e2"]
    rules = json.loads(
        run(home, "namespace", "rules", "--unique", "CRMID", "--priority", "CRMID,Email,ECID", "--json")
    )
    assert rules["unique"] == ["CRMID"] and rules["priority"][0] == "CRMID"
    deleted = json.loads(run(home, "privacy", "delete", "Email", "p1@example.com", "--yes", "--json"))
    assert deleted["status"] == "complete"
    result = runner.invoke(app, ["profile", "get", "ECID", ecid(7), "--home", str(home)])
    assert result.exit_code == 1 and "no profile" in result.output


def test_cli_errors_are_explained(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dataset", "create", "X", "--schema", "nope", "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "nope" in result.output


def test_cli_segments(tmp_path: Path) -> None:
    home = tmp_path / "home"
    schemas = json.loads(run(home, "schema", "standard", "--json"))
    run(home, "dataset", "create", "CRM", "--schema", schemas["profile"])
    crm = tmp_path / "crm.jsonl"
    rows = [
        crm_record(f"c{i}", f"p{i}@example.com", homeAddress={"countryCode": "US" if i % 2 else "FR"})
        for i in range(6)
    ]
    crm.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    run(home, "ingest", "file", "CRM", str(crm))
    seg = json.loads(run(home, "segment", "create", "US", 'homeAddress.countryCode = "US"', "--json"))
    estimate = json.loads(run(home, "segment", "estimate", 'homeAddress.countryCode = "US"', "--json"))
    assert estimate["estimate"]["estimatedSize"] == 3
    job = json.loads(run(home, "segment", "evaluate", seg["id"], "--json"))
    assert job["metrics"]["segmentedProfileCounter"][seg["id"]] == 3
    explained = json.loads(run(home, "segment", "explain", seg["id"], "Email", "p1@example.com", "--json"))
    assert explained["qualifies"] is True and explained["explanation"]["held"] is True
    exported = json.loads(run(home, "segment", "export", seg["id"], "--format", "csv", "--json"))
    assert exported["status"] == "SUCCEEDED"
    assert len(Path(exported["destination"]["path"]).read_text().strip().splitlines()) == 4  # header + 3
    listed = json.loads(run(home, "segment", "list", "--json"))
    assert [s["name"] for s in listed] == ["US"]


def test_sandbox_is_chosen_by_option_or_environment(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run(home, "sandbox", "create", "dev")
    run(home, "schema", "standard", "--sandbox", "dev")
    run(home, "dataset", "create", "Only-in-dev", "--schema", "Tessera Profile", "--sandbox", "dev")
    by_option = json.loads(run(home, "dataset", "list", "--sandbox", "dev", "--json"))
    by_env = runner.invoke(
        app, ["dataset", "list", "--json", "--home", str(home)], env={"TESSERA_SANDBOX": "dev"}
    )
    assert [d["name"] for d in by_option] == [d["name"] for d in json.loads(by_env.stdout)] == ["Only-in-dev"]
    assert json.loads(run(home, "dataset", "list", "--json")) == []  # prod is untouched
    missing = runner.invoke(app, ["dataset", "list", "--sandbox", "nosuch", "--home", str(home)])
    assert missing.exit_code == 2 and "nosuch" in missing.output


def test_a_policy_that_is_not_json_is_a_usage_error(tmp_path: Path) -> None:
    # checked before anything is opened, so --url to a dead port gives the same answer
    for target in (["--home", str(tmp_path)], ["--url", "http://127.0.0.1:1"]):
        result = runner.invoke(app, ["merge-policy", "create", '{"name": "p"', *target])
        assert result.exit_code == 2, result.output
        assert isinstance(result.exception, SystemExit)  # a message, not a traceback
        assert "not JSON" in result.output
