"""The UI's caches: filled when the server starts, shared by concurrent first requests, and an
autocomplete index that follows new and deleted identities without re-sorting everything."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.conftest import crm_record

from tessera.api import create_app
from tessera.model import Identity
from tessera.platform import Platform, Sandbox
from tessera.ui import routes


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def started(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app`` after its start-up ran, as under uvicorn (shut down on exit)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def _suggest(client: httpx.AsyncClient, prefix: str, limit: int = 10) -> list[str]:
    res = await client.get(
        "/tessera/ui-api/identities/suggest", params={"namespace": "Email", "prefix": prefix, "limit": limit}
    )
    assert res.status_code == 200, res.text
    values: list[str] = res.json()["values"]
    return values


@pytest.mark.anyio
async def test_server_start_warms_every_cache_the_first_visits_read(
    platform: Platform, retail: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sb: Sandbox = retail["sandbox"]
    sb.ingest.ingest_records("CRM", [crm_record(f"c{i}", f"p{i}@example.com") for i in range(30)])
    sb.segments.create(
        {
            "name": "Janes",
            "expression": {"type": "PQL", "format": "pql/text", "value": 'person.name.firstName = "Jane"'},
        }
    )
    calls: dict[str, int] = {"stats": 0, "full reads": 0, "estimates": 0}
    stats, values, preview = sb.identity.stats, sb.identity.graph.values, sb.segments.preview

    def counted_stats(top: int = 10) -> dict[str, Any]:
        calls["stats"] += 1
        return stats(top)

    def counted_values(namespace: str, since: int = 0) -> tuple[list[str], int]:
        calls["full reads"] += since == 0 and namespace == "Email"
        return values(namespace, since)

    def counted_preview(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls["estimates"] += 1
        return preview(*args, **kwargs)

    monkeypatch.setattr(sb.identity, "stats", counted_stats)
    monkeypatch.setattr(sb.identity.graph, "values", counted_values)
    monkeypatch.setattr(sb.segments, "preview", counted_preview)
    app = create_app(platform)
    async with started(app) as client:
        assert app.state.ui_warm.is_set()  # before the first request is accepted
        assert calls == {"stats": 1, "full reads": 1, "estimates": 1}
        overview = (await client.get("/tessera/ui-api/overview")).json()
        assert overview["identity"]["identitiesPerNamespace"]["Email"] == 30
        emails = sorted(f"p{i}@example.com" for i in range(30))
        assert await _suggest(client, "p1") == [e for e in emails if e.startswith("p1")][:10]
        # the first visits were served from what the warm-up computed
        assert calls == {"stats": 1, "full reads": 1, "estimates": 1}


def test_an_app_used_without_its_start_up_warms_nothing(platform: Platform, retail: dict[str, Any]) -> None:
    app = create_app(platform)
    assert not app.state.ui_warm.is_set()
    assert not any(t.name == "tessera-ui-warm-up" for t in threading.enumerate())


def test_a_request_arriving_during_a_computation_waits_for_it_instead_of_repeating_it(
    platform: Platform,
) -> None:
    sb = platform.sandbox()
    memo = routes._Memo()
    release, started = threading.Event(), threading.Event()
    runs: list[int] = []

    def slow() -> str:
        runs.append(1)
        started.set()
        assert release.wait(10)
        return "value"

    results: list[str] = []
    first = threading.Thread(target=lambda: results.append(memo.get("x", sb, 1, slow, stale_ok=True)))
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=lambda: results.append(memo.get("x", sb, 1, slow, stale_ok=True)))
    second.start()
    second.join(0.2)
    assert second.is_alive()  # waiting on the first computation, not running its own
    release.set()
    first.join(10)
    second.join(10)
    assert results == ["value", "value"] and len(runs) == 1


@pytest.mark.anyio
async def test_autocomplete_follows_new_and_deleted_identities(
    platform: Platform, retail: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sb: Sandbox = retail["sandbox"]
    monkeypatch.setattr(routes._Suggestions, "TAIL", 3)  # merge the new values into the sorted part often
    sb.ingest.ingest_records("CRM", [crm_record(f"c{i}", f"m{i}@example.com") for i in (5, 1, 3)])
    async with started(create_app(platform)) as client:
        assert await _suggest(client, "m") == ["m1@example.com", "m3@example.com", "m5@example.com"]
        sb.ingest.ingest_records("CRM", [crm_record("c2", "m2@example.com")])
        assert await _suggest(client, "m") == [
            "m1@example.com",
            "m2@example.com",
            "m3@example.com",
            "m5@example.com",
        ]
        sb.ingest.ingest_records("CRM", [crm_record(f"c{i}", f"m{i}@example.com") for i in (9, 0, 7, 4)])
        assert await _suggest(client, "m", limit=50) == [
            f"m{i}@example.com" for i in (0, 1, 2, 3, 4, 5, 7, 9)
        ]
        assert await _suggest(client, "m", limit=2) == ["m0@example.com", "m1@example.com"]
        # a privacy delete takes the identity out of the graph: it is not offered any more
        sb.privacy.delete([Identity("Email", "m3@example.com")])
        assert "m3@example.com" not in await _suggest(client, "m", limit=50)
        assert await _suggest(client, "m3") == []
