"""Backup and restore of a Redis-backed sandbox: the copy answers every query as the original.

The backup is taken from a sandbox on a real redis-server and restored twice: into an embedded
(SQLite) installation, and into a fresh Redis namespace under another name. A restore that would
land on a Redis namespace already holding data (here: the original's own) is refused untouched.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest
from tests.ops.sandbox_answers import answers_of, assert_same_answers, populate

from tessera.errors import Conflict, InvalidInput
from tessera.ops.backup import backup_sandbox, restore_sandbox
from tessera.platform import Platform, open_point_store
from tessera.scaleout.servers import RedisServer
from tessera.settings import Settings

pytest.importorskip("redis", reason='redis-py missing: pip install "tessera-cdp[distributed]"')

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def on_redis(home: Path, server: RedisServer, namespace: str) -> Settings:
    return Settings(
        home=str(home),
        point_store="redis",
        redis_url=server.url,
        redis_namespace=namespace,
        group_commit_ms=0.0,
    )


@pytest.mark.timeout(240)
async def test_redis_sandbox_restores_into_embedded_and_fresh_redis_identically(
    redis_standalone: RedisServer, tmp_path: Path
) -> None:
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    with Platform(on_redis(tmp_path / "source", redis_standalone, namespace)) as source:
        source.sandboxes.create("shop")
        made = populate(source.sandbox("shop"))
        original = await answers_of(source, "shop", made)
        store = source.sandbox("shop").store
        manifest = backup_sandbox(source, "shop", tmp_path / "bk")
        assert list(manifest["tables"]) == store.tables()
        assert {"fragments", "events", "profile_memberships"} <= set(manifest["tables"])
        assert all(info["rows"] == store.count(table) for table, info in manifest["tables"].items())

    with Platform(Settings(home=str(tmp_path / "embedded"), group_commit_ms=0.0)) as embedded:
        result = restore_sandbox(embedded, tmp_path / "bk")
        assert result["rows"] == manifest["counts"]["rows"]
        assert_same_answers(original, await answers_of(embedded, "shop", made), "shop", "shop", made)

    fresh = on_redis(tmp_path / "fresh", redis_standalone, f"{namespace}-fresh")
    with Platform(fresh) as other:
        restore_sandbox(other, tmp_path / "bk", as_name="shop-copy")
        assert_same_answers(original, await answers_of(other, "shop-copy", made), "shop", "shop-copy", made)

    # Another installation on the same Redis namespace: sandbox "shop" there IS the original's data.
    with Platform(on_redis(tmp_path / "clash", redis_standalone, namespace)) as clash:
        with pytest.raises(Conflict, match="already holds data"):
            restore_sandbox(clash, tmp_path / "bk")
        assert not clash.sandboxes.exists("shop")
    with Platform(on_redis(tmp_path / "source", redis_standalone, namespace)) as reopened:
        assert await answers_of(reopened, "shop", made) == original


def test_deleting_a_redis_sandbox_deletes_its_data_in_redis(
    redis_standalone: RedisServer, tmp_path: Path
) -> None:
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    settings = on_redis(tmp_path / "home", redis_standalone, namespace)
    with Platform(settings) as platform:
        platform.sandboxes.create("shop")
        populate(platform.sandbox("shop"))
        platform.sandboxes.create("other")
        populate(platform.sandbox("other"))
        kept = {t: platform.sandbox("other").store.count(t) for t in platform.sandbox("other").store.tables()}
        platform.delete_sandbox("shop")
        with pytest.raises(Exception, match="cannot be deleted"):
            platform.delete_sandbox("prod")
        # the other sandbox on the same Redis server keeps every row
        assert {t: platform.sandbox("other").store.count(t) for t in kept} == kept
    leftover = open_point_store(settings, "shop", tmp_path / "probe")
    try:
        assert leftover.tables() == []
    finally:
        leftover.close()


def test_a_restore_that_fails_partway_leaves_nothing_in_redis(
    redis_standalone: RedisServer, tmp_path: Path
) -> None:
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    with Platform(on_redis(tmp_path / "source", redis_standalone, namespace)) as source:
        source.sandboxes.create("shop")
        populate(source.sandbox("shop"))
        backup_sandbox(source, "shop", tmp_path / "bk")
    manifest_file = tmp_path / "bk" / "manifest.json"
    good = manifest_file.read_bytes()
    damaged = orjson.loads(good)
    last = sorted(damaged["tables"])[-1]  # every other table is written before the damage shows
    damaged["tables"][last]["rows"] += 1
    manifest_file.write_bytes(orjson.dumps(damaged))

    target = on_redis(tmp_path / "target", redis_standalone, f"{namespace}-target")
    with Platform(target) as platform:
        with pytest.raises(InvalidInput, match="damaged"):
            restore_sandbox(platform, tmp_path / "bk")
        assert not platform.sandboxes.exists("shop")
        probe = open_point_store(target, "shop", tmp_path / "probe")
        try:
            assert probe.tables() == []
        finally:
            probe.close()
        manifest_file.write_bytes(good)
        restored = restore_sandbox(platform, tmp_path / "bk")  # the same name is free again
        assert restored["rows"] == damaged["counts"]["rows"]
