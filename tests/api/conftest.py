"""In-process API tests: the app over ``httpx.ASGITransport`` (no Starlette TestClient)."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from api_world import TAGS, World
from fastapi import FastAPI

from tessera.api import create_app
from tessera.ops.logs import JsonFormatter
from tessera.platform import Platform
from tessera.settings import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    with Platform(Settings(home=str(tmp_path / "home"), group_commit_ms=0.0)) as opened:
        yield opened


@pytest.fixture
def app(platform: Platform) -> FastAPI:
    return create_app(platform)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def world(platform: Platform, client: httpx.AsyncClient) -> World:
    ids = platform.sandbox().schemas.ensure_standard_schemas()
    made = []
    for name, schema in (("crm", ids["profile"]), ("web", ids["event"])):
        response = await client.post(
            "/data/foundation/catalog/dataSets",
            json={"name": name, "schemaRef": {"id": schema}, "tags": TAGS},
        )
        assert response.status_code == 201, response.text
        made.append(response.json()[0].removeprefix("@/dataSets/"))
    return World(ids["profile"], ids["event"], made[0], made[1])


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every log line written during the test, as JSON lines."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(old_level)
