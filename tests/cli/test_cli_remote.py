"""Every CLI command documents an example and ``--json``; the command groups of issue 7 exist;
and the commands work against a real server with ``--url`` as they do on a data directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from tests.conftest import crm_record, ecid, web_event
from tests.e2e.e2e_server import Server, start
from typer.testing import CliRunner

from tessera.cli.main import app

runner = CliRunner()
GROUPS = {"sandbox", "namespace", "schema", "dataset", "ingest", "profile", "identity", "merge-policy",
          "segment", "job", "export", "keys", "privacy"}  # fmt: skip
# commands that print no result (they run a server or change local files only)
NO_JSON = {("serve",), ("demo",), ("worker",)}  # long-running services print logs, not a result
# commands that act on the data directory itself: API keys are minted where the server keeps them,
# and linking rules and the standard schemas have no REST operation to go through
LOCAL_ONLY = {"keys", "serve", "demo", "ops", "backup", "worker"}
# backups are files on the server's own disk: they run where the data directory is
LOCAL_ONLY_COMMANDS = {
    ("namespace", "rules"),
    ("schema", "standard"),
    ("sandbox", "backup"),
    ("sandbox", "restore"),
}


def commands() -> Iterator[tuple[tuple[str, ...], Any]]:
    def walk(path: tuple[str, ...], command: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
        if hasattr(command, "commands"):  # Typer groups are not always click.Group
            for name, sub in command.commands.items():
                yield from walk((*path, name), sub)
        else:
            yield path, command

    yield from walk((), typer.main.get_command(app))


def test_every_command_group_of_the_issue_exists() -> None:
    group: Any = typer.main.get_command(app)
    assert set(group.commands) >= GROUPS
    names = {path for path, _ in commands()}
    for wanted in [("profile", "get"), ("profile", "events"), ("identity", "graph"), ("identity", "simulate"),
                   ("identity", "explain"), ("segment", "create"), ("segment", "list"), ("segment", "evaluate"),
                   ("segment", "estimate"), ("segment", "explain"), ("job", "watch"), ("export", "run")]:  # fmt: skip
        assert wanted in names


@pytest.mark.parametrize("path", [p for p, _ in commands()], ids=" ".join)
def test_every_command_has_help_with_an_example_json_and_url(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, path
    options = {opt for p in dict(commands())[path].params for opt in getattr(p, "opts", [])}
    if path not in NO_JSON:
        assert "--json" in options, path
    if path[0] not in LOCAL_ONLY and path not in LOCAL_ONLY_COMMANDS:
        assert "--url" in options, path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start(tmp_path_factory.mktemp("cli-remote"), keyed=False)


def remote(server: Server, *args: str, stdin: str | None = None, code: int = 0) -> str:
    result = runner.invoke(app, [*args, "--url", server.url], input=stdin)
    assert result.exit_code == code, result.output
    return result.output


def test_cli_against_a_server(server: Server, tmp_path: Path) -> None:
    assert "prod" in {s["name"] for s in json.loads(remote(server, "sandbox", "list", "--json"))}
    titles = {s["title"] for s in json.loads(remote(server, "schema", "list", "--json"))}
    assert "Tessera Profile" in titles
    crm = json.loads(remote(server, "dataset", "create", "CRM", "--schema", "Tessera Profile", "--json"))
    assert crm["name"] == "CRM"
    remote(server, "dataset", "create", "Web", "--schema", server.schemas["event"])
    assert {d["name"] for d in json.loads(remote(server, "dataset", "list", "--json"))} >= {"CRM", "Web"}

    rows = tmp_path / "crm.jsonl"
    rows.write_text(
        "\n".join(json.dumps(crm_record(f"c{i}", f"p{i}@example.com", first=f"N{i}")) for i in range(3))
    )
    (batch,) = json.loads(remote(server, "ingest", "file", "CRM", str(rows), "--json"))
    assert batch["status"] == "success" and batch["metrics"]["outputRecordCount"] == 3
    events = "\n".join(
        json.dumps(web_event(f"e{i}", ecid(7), f"2024-01-0{i + 1}T00:00:00Z", CRMID="c1")) for i in range(3)
    )
    summary = json.loads(
        remote(server, "ingest", "stream", "--dataset", "Web", "--json", stdin=events + "\n")
    )
    assert summary == {"ingested": 3, "rejected": 0}

    profile = json.loads(remote(server, "profile", "get", "Email", "p1@example.com", "--json"))
    (entry,) = profile.values()
    assert entry["entity"]["person"]["name"]["firstName"] == "N1"
    listed = json.loads(remote(server, "profile", "events", "Email", "p1@example.com", "--json"))
    assert [e["_id"] for e in listed] == ["e0", "e1", "e2"]
    graph = json.loads(remote(server, "identity", "graph", "CRMID", "c1", "--json"))
    assert {m["namespace"] for m in graph} >= {"CRMID", "ECID", "Email"}
    links = json.loads(remote(server, "identity", "explain", "CRMID:c1", f"ECID:{ecid(7)}", "--json"))
    assert links["links"]
    assert "Email" in {n["code"] for n in json.loads(remote(server, "namespace", "list", "--json"))}
    assert json.loads(remote(server, "merge-policy", "list", "--json"))

    segment = json.loads(remote(server, "segment", "create", "N1s", 'person.name.firstName = "N1"', "--json"))
    assert segment["id"] in {s["id"] for s in json.loads(remote(server, "segment", "list", "--json"))}
    job = json.loads(remote(server, "segment", "evaluate", segment["id"], "--json"))
    watched = json.loads(remote(server, "job", "watch", job["id"], "--json"))
    assert watched["status"] == "SUCCEEDED"
    assert watched["metrics"]["segmentedProfileCounter"][segment["id"]] == 1
    estimate = json.loads(remote(server, "segment", "estimate", 'person.name.firstName = "N1"', "--json"))
    assert estimate["estimatedSize"] >= 1
    explained = json.loads(
        remote(server, "segment", "explain", segment["id"], "Email", "p1@example.com", "--json")
    )
    assert explained["qualifies"] is True
    export = json.loads(remote(server, "export", "run", segment["id"], "--format", "csv", "--json"))
    assert export["status"] == "SUCCEEDED"
    assert export["id"] in {e["id"] for e in json.loads(remote(server, "export", "list", "--json"))}
    access = json.loads(remote(server, "privacy", "access", "Email", "p2@example.com", "--json"))
    assert access["status"] == "complete"

    # nobody holding an identity is an answer, the same as on a data directory: status 1, in words
    missing = remote(server, "profile", "get", "Email", "nobody@example.com", code=1)
    assert "no profile holds Email:nobody@example.com" in missing
    unexplained = remote(server, "segment", "explain", segment["id"], "Email", "nobody@example.com", code=1)
    assert "no profile holds" in unexplained
    # a segment that does not exist is still an error (status 2)
    assert "error" in remote(
        server, "segment", "explain", "no-such-segment", "Email", "p1@example.com", code=2
    )
