"""E2E fixtures: a real server per test module (open, and keyed with two sandboxes)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from e2e_server import Server, start


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start(tmp_path_factory.mktemp("open"), keyed=False)


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start(tmp_path_factory.mktemp("keyed"), keyed=True)


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    headers = {
        "Authorization": "Bearer {ACCESS_TOKEN}",
        "x-api-key": "{API_KEY}",
        "x-gw-ims-org-id": "{ORG_ID}",
        "x-sandbox-name": "prod",
    }
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        yield client
