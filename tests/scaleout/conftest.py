"""Servers for the scale-out tests, started on random loopback ports and stopped afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tessera.scaleout.broker import Broker, start_broker
from tessera.scaleout.errors import MissingExtra
from tessera.scaleout.servers import (
    RedisClusterServers,
    RedisServer,
    redis_server_binary,
    start_redis,
    start_redis_cluster,
)

NO_REDIS = "redis-server is not installed (Debian: apt-get install -y redis-server redis-tools)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Spark tests run only when selected (``-m spark``) or with ``TESSERA_SPARK=1``."""
    try:
        import pyspark  # noqa: F401

        have_spark = True
    except ImportError:
        have_spark = False
    selected = "spark" in (config.getoption("markexpr") or "") or os.environ.get("TESSERA_SPARK") == "1"
    for item in items:
        if item.get_closest_marker("spark") is None:
            continue
        if not have_spark:
            item.add_marker(pytest.mark.skip(reason='pyspark missing: pip install "tessera-cdp[spark]"'))
        elif not selected:
            item.add_marker(
                pytest.mark.skip(reason="Spark tests run with `pytest -m spark` or TESSERA_SPARK=1")
            )


@pytest.fixture(scope="session")
def redis_standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if redis_server_binary() is None:
        pytest.skip(NO_REDIS)
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    if redis_server_binary() is None:
        pytest.skip(NO_REDIS)
    servers = start_redis_cluster(Path(tmp_path_factory.mktemp("rcluster")))
    yield servers
    servers.stop()


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    pytest.importorskip(
        "confluent_kafka", reason='confluent-kafka missing: pip install "tessera-cdp[distributed]"'
    )
    try:
        b = start_broker()
    except MissingExtra as exc:
        pytest.skip(str(exc))
    yield b
    b.stop()
