"""Two platform processes writing one sandbox on Redis stay consistent (lock + write epochs).

Each :class:`DistributedPlatform` here stands for a separate process: its own data directory and
its own in-memory identity graph; only Redis is shared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.conftest import crm_record, ecid, web_event

from tessera.errors import InvalidInput
from tessera.model import Identity
from tessera.platform import Platform
from tessera.scaleout.distributed import DistributedPlatform
from tessera.scaleout.servers import RedisServer
from tessera.settings import Settings, read_settings_file


def _settings(tmp_path: Path, redis: RedisServer, home: str) -> Settings:
    return Settings(
        home=str(tmp_path / home),
        point_store="redis",
        redis_url=redis.url,
        redis_namespace=f"co-{tmp_path.name}",
    )


def _graph(platform: Platform) -> list[list[str]]:
    comps = platform.sandbox().identity.graph.components().values()
    return sorted(sorted(str(i) for i in g) for g in comps)


def _two_workers(tmp_path: Path, redis: RedisServer) -> tuple[DistributedPlatform, DistributedPlatform]:
    """Two "processes" on one Redis namespace (each with its own directory and in-memory graph)."""
    return (
        DistributedPlatform(_settings(tmp_path, redis, "a"), role="worker"),
        DistributedPlatform(_settings(tmp_path, redis, "b"), role="worker"),
    )


def _datasets(platform: Platform) -> dict[str, dict[str, Any]]:
    """CRM, Loyalty (records) and Web (events) datasets, and the unique-CRMID linking rules."""
    sandbox = platform.sandbox()
    schemas = sandbox.schemas.ensure_standard_schemas()
    made = {name: sandbox.datasets.create(name, schemas[kind]) for name, kind in DATASETS}
    sandbox.identity.set_rules(unique=["CRMID"], priority=["CRMID", "Email", "ECID"])
    return made


DATASETS = (("CRM", "profile"), ("Loyalty", "profile"), ("Web", "event"))


@pytest.mark.timeout(60)
def test_second_process_sees_the_first_ones_links(redis_standalone: RedisServer, tmp_path: Path) -> None:
    a, b = _two_workers(tmp_path, redis_standalone)
    try:
        sa = a.sandbox()
        made = _datasets(a)
        crm, web = made["CRM"], made["Web"]
        sb = b.sandbox()  # opened now: b's graph is empty and stays in memory
        sa.ingest.stream([crm_record("kevin", "k@x.com", "Kevin")], dataset_id=crm["id"])
        # b links the browser to Kevin's email: only correct if b sees a's CRM link first.
        ts = "2026-11-01T10:00:00Z"
        sb.ingest.stream([web_event("e1", ecid(1), ts, Email="k@x.com")], dataset_id=web["id"])
        sa.ingest.stream([web_event("e2", ecid(2), ts, CRMID="kevin")], dataset_id=web["id"])
        # b re-opened (a had created the default merge policy), a took b's link from its change note
        assert b.coordinators["prod"].refreshes >= 1 and a.coordinators["prod"].catch_ups >= 1
        expected = [sorted(["CRMID:kevin", "Email:k@x.com", f"ECID:{ecid(1)}", f"ECID:{ecid(2)}"])]
        assert _graph(a) == expected
        b.sandbox().identity  # noqa: B018 - b catches up on read
        b.refresh_if_stale("prod")
        assert _graph(b) == expected
        kevin = b.sandbox().profiles.get(Identity("ECID", ecid(2)))
        assert kevin is not None and kevin.attributes["person"]["name"]["firstName"] == "Kevin"
        events, _ = b.sandbox().profiles.events(Identity("CRMID", "kevin"))
        assert sorted(e["record"]["_id"] for e in events) == ["e1", "e2"]
    finally:
        a.close()
        b.close()
    fresh = Platform(_settings(tmp_path, redis_standalone, "c"))  # a new process: state from Redis only
    try:
        assert _graph(fresh) == expected
    finally:
        fresh.close()


def _state(platform: Platform) -> tuple[Any, ...]:
    graph = platform.sandbox().identity.graph
    comps = {pid: sorted(str(i) for i in members) for pid, members in graph.components().items()}
    links = sorted((str(li.a), str(li.b), li.first_seen, li.last_seen, li.seq) for li in graph.links())
    return comps, links, graph.seq, graph.profile_history(), graph.refused_counts()


@pytest.mark.timeout(120)
def test_processes_take_each_others_commits_from_change_notes(
    redis_standalone: RedisServer, tmp_path: Path
) -> None:
    a, b = _two_workers(tmp_path, redis_standalone)
    try:
        sa = a.sandbox()
        made = _datasets(a)
        crm, loyalty, web = made["CRM"], made["Loyalty"], made["Web"]
        sa.ingest.stream([crm_record("setup", "setup@x.com")], dataset_id=crm["id"])  # default policy made
        sb = b.sandbox()
        ca, cb = a.coordinators["prod"], b.coordinators["prod"]
        reopened = (ca.refreshes, cb.refreshes)
        ts = "2026-11-01T10:00:00Z"
        steps = [
            (sa, crm, crm_record("kevin", "k@x.com", "Kevin")),
            (sb, web, web_event("e1", ecid(1), ts, Email="k@x.com")),  # joins a's component
            (sa, web, web_event("e2", ecid(2), ts)),
            (sb, web, web_event("e3", ecid(2), ts, Email="k@x.com")),  # merges two components
            (sa, loyalty, crm_record("kevin", "k@x.com", "Kev", loyalty={"tier": "gold"})),
            (sb, crm, crm_record("ann", "k@x.com", "Ann")),  # a second CRMID: the rules split it off
            (sa, web, web_event("e4", ecid(3), ts, CRMID="ann")),
        ]
        for sandbox, dataset, record in steps:
            [result] = sandbox.ingest.stream([record], dataset_id=dataset["id"])
            assert "xactionId" in result, result
        b.refresh_if_stale("prod")
        a.refresh_if_stale("prod")
        assert (ca.refreshes, cb.refreshes) == reopened  # nothing re-opened after the set-up
        assert ca.catch_ups >= 3 and cb.catch_ups >= 3
        fresh = Platform(_settings(tmp_path, redis_standalone, "c"))
        try:
            assert _state(a) == _state(fresh) == _state(b)
        finally:
            fresh.close()
        # b's fragment index learnt of a's loyalty fragment: its merged view has both datasets
        kevin = b.sandbox().profiles.get(Identity("CRMID", "kevin"))
        assert kevin is not None
        assert set(kevin.sources) == {crm["id"], loyalty["id"]}
    finally:
        a.close()
        b.close()


def test_distributed_platform_refuses_the_embedded_store(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot share the embedded SQLite"):
        DistributedPlatform(Settings(home=str(tmp_path)))


def test_settings_file_selects_backends(tmp_path: Path) -> None:
    path = tmp_path / "tessera.toml"
    path.write_text(
        'point_store = "redis"\nredis_url = "redis://10.0.0.5:6379/0"\nredis_cluster = true\n'
        'kafka_bootstrap = "10.0.0.7:9092"\nstream_partitions = 16\nsandbox_lock_ttl_s = 5\n'
    )
    s = Settings.from_env({"TESSERA_SETTINGS": str(path), "TESSERA__STREAM_TOPIC": "t2"})
    assert (s.point_store, s.redis_cluster, s.kafka_bootstrap, s.stream_partitions) == (
        "redis",
        True,
        "10.0.0.7:9092",
        16,
    )
    assert s.stream_topic == "t2" and s.sandbox_lock_ttl_s == 5.0 and s.distributed
    path.write_text('stream_partitions = "many"\n')
    with pytest.raises(InvalidInput, match="expects int"):
        read_settings_file(path)
    path.write_text('point_stor = "redis"\n')
    with pytest.raises(InvalidInput, match="Unknown setting 'point_stor'"):
        read_settings_file(path)


@pytest.mark.parametrize("command", [["serve", "--workers", "2"], ["worker", "--index", "0"]])
def test_cli_refuses_several_processes_on_the_embedded_store(tmp_path: Path, command: list[str]) -> None:
    from typer.testing import CliRunner

    from tessera.cli.main import app

    result = CliRunner().invoke(app, [*command, "--home", str(tmp_path)], env={"TESSERA_SETTINGS": ""})
    assert result.exit_code == 2
    assert "cannot share the embedded SQLite" in " ".join(result.output.split())
