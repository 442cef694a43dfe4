"""TesseraClient / AsyncTesseraClient: typed calls, retries with backoff, errors as TesseraError."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tessera.api import create_app
from tessera.client import AsyncTesseraClient, TesseraClient, error_from_response
from tessera.client._transport import backoff
from tessera.errors import Conflict, InvalidInput, NotFound, RateLimited, TesseraError, Unauthorized
from tessera.platform import Platform
from tessera.settings import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    with Platform(Settings(home=str(tmp_path))) as opened:
        yield opened


def flaky(statuses: list[int], seen: list[httpx.Request]) -> httpx.MockTransport:
    """Answers with ``statuses`` in turn (problem bodies for errors), then 200 ``{"status": "ok"}``."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) <= len(statuses):
            status = statuses[len(seen) - 1]
            return httpx.Response(
                status, json={"status": status, "detail": "busy"}, headers={"Retry-After": "0"}
            )
        return httpx.Response(200, json={"status": "ok"})

    return httpx.MockTransport(handler)


def test_retries_429_and_503_then_succeeds() -> None:
    seen: list[httpx.Request] = []
    client = TesseraClient("http://t", transport=flaky([429, 503], seen), backoff_s=0)
    assert client.health() == {"status": "ok"}
    assert len(seen) == 3


def test_gives_up_after_retries_with_the_matching_error() -> None:
    seen: list[httpx.Request] = []
    client = TesseraClient("http://t", transport=flaky([429] * 10, seen), retries=2, backoff_s=0)
    with pytest.raises(RateLimited):
        client.health()
    assert len(seen) == 3


def test_post_is_not_retried_on_500() -> None:
    seen: list[httpx.Request] = []
    client = TesseraClient("http://t", transport=flaky([500], seen), backoff_s=0)
    with pytest.raises(TesseraError):
        client.create_sandbox("x")
    assert len(seen) == 1


def test_backoff_doubles_and_honours_retry_after() -> None:
    assert 0.1 <= backoff(0, 0.1, None) <= 0.11
    assert 0.4 <= backoff(2, 0.1, None) <= 0.44
    assert backoff(5, 0.1, "2") == 2.0
    assert backoff(0, 0.1, "999") == 30.0


def test_error_mapping_keeps_message_and_path() -> None:
    problem = httpx.Response(
        400,
        json={
            "type": "https://tessera.dev/errors/InvalidInput",
            "status": 400,
            "title": "Bad request",
            "detail": "no",
            "report": {"path": "name"},
        },
    )
    err = error_from_response(problem)
    assert isinstance(err, InvalidInput) and err.message == "no" and err.path == "name"
    gateway = error_from_response(
        httpx.Response(401, json={"error_code": "401013", "message": "Oauth token is not valid"})
    )
    assert isinstance(gateway, Unauthorized) and gateway.message == "Oauth token is not valid"
    html = error_from_response(httpx.Response(409, text="<html>"))
    assert isinstance(html, Conflict)


def test_headers_carry_key_and_sandbox() -> None:
    seen: list[httpx.Request] = []
    TesseraClient("http://t", api_key="tsk_k", sandbox="dev", transport=flaky([], seen)).health()
    assert seen[0].headers["x-api-key"] == "tsk_k"
    assert seen[0].headers["authorization"] == "Bearer tsk_k"
    assert seen[0].headers["x-sandbox-name"] == "dev"


@pytest.mark.anyio
async def test_async_client_against_the_app(platform: Platform) -> None:
    transport = httpx.ASGITransport(app=create_app(platform))
    async with AsyncTesseraClient("http://t", transport=transport) as client:
        created = await client.create_sandbox("dev-a", "Dev A")
        assert created["name"] == "dev-a"
        schema = platform.sandbox().schemas.ensure_standard_schemas()["profile"]
        dataset_id = await client.request(
            "POST", "/data/foundation/catalog/dataSets", json={"name": "d", "schemaRef": {"id": schema}}
        )
        assert dataset_id[0].startswith("@/dataSets/")
        datasets = await client.list_datasets()
        assert len(datasets) == 1
        with pytest.raises(NotFound):
            await client.get_dataset("missing")
        namespaces = await client.list_namespaces()
        assert any(ns["code"] == "Email" for ns in namespaces)


def test_sync_client_typed_catalog_calls(platform: Platform) -> None:
    # httpx has no sync ASGI transport: forward each request to the app on a private event loop.
    import asyncio

    app = create_app(platform)
    loop = asyncio.new_event_loop()
    asgi = httpx.ASGITransport(app=app)

    def forward(request: httpx.Request) -> httpx.Response:
        async def go() -> httpx.Response:
            response = await asgi.handle_async_request(request)
            body = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        request.read()
        return loop.run_until_complete(go())

    try:
        client = TesseraClient("http://t", transport=httpx.MockTransport(forward))
        schema = platform.sandbox().schemas.ensure_standard_schemas()["profile"]
        with pytest.raises(InvalidInput) as no_schema:
            client.create_dataset("crm", "https://ns.adobe.com/tessera/schemas/x", upsert=True)
        assert no_schema.value.path == "schemaRef.id"
        dataset_id = client.create_dataset("crm", schema, upsert=True)
        doc = client.get_dataset(dataset_id)
        assert doc["tags"]["unifiedProfile"] == ["enabled:true", "isUpsert:true"]
        assert client.patch_dataset(dataset_id, {"description": "CRM"}) == [f"@/dataSets/{dataset_id}"]
        assert client.get_xid("Email", "a@b.c")
        with pytest.raises(InvalidInput) as raised:
            client.create_sandbox("Not Valid")
        assert raised.value.path == "name"
    finally:
        loop.close()
