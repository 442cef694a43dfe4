"""Every error is JSON in the reference shapes; bad input is never a 500."""

from __future__ import annotations

import httpx
import orjson
import pytest
from fastapi import FastAPI

from tessera.platform import Platform
from tessera.settings import Settings

pytestmark = pytest.mark.anyio
DATASETS = "/data/foundation/catalog/dataSets"


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return dict(body)


async def test_malformed_json_is_400_with_position(client: httpx.AsyncClient) -> None:
    response = await client.post(
        DATASETS, content=b'{"name": "x",, }', headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 400)
    assert body["report"] == {"path": "body:13"}
    assert "Malformed JSON" in str(body["detail"])


async def test_wrong_field_type_is_400_with_field_path(client: httpx.AsyncClient) -> None:
    response = await client.post(DATASETS, json={"name": "x", "schemaRef": {"id": 7}})
    body = assert_problem(response, 400)
    assert body["report"]["path"] == "schemaRef.id"  # type: ignore[index]


async def test_missing_body_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(DATASETS)
    assert_problem(response, 400)


async def test_missing_content_type_is_400_and_wrong_one_415(client: httpx.AsyncClient) -> None:
    missing = await client.post(DATASETS, content=b'{"name": "x"}')
    assert assert_problem(missing, 400)["detail"] == "A valid content-type must be specified"
    wrong = await client.post(
        DATASETS, content=b"name=x", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert_problem(wrong, 415)


async def test_vendor_json_content_type_is_accepted(client: httpx.AsyncClient, platform: Platform) -> None:
    schema = platform.sandbox().schemas.ensure_standard_schemas()["profile"]
    response = await client.post(
        DATASETS,
        content=orjson.dumps({"name": "x", "schemaRef": {"id": schema}}),
        headers={"content-type": "application/vnd.adobe.xed+json;version=1"},
    )
    assert response.status_code == 201


async def test_unknown_sandbox_is_404(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get(DATASETS, headers={"x-sandbox-name": "nope"}), 404)
    assert body["report"] == {"path": "x-sandbox-name"}


async def test_unknown_route_and_method_are_json(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/data/core/nothing-here"), 404)
    assert_problem(await client.delete("/tessera/health"), 405)


async def test_bad_query_parameter_is_400(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get(DATASETS, params={"limit": "many"}), 400)
    assert body["report"]["path"] == "query:limit"  # type: ignore[index]


async def test_unexpected_exception_is_500_json_without_trace(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    body = assert_problem(await client.get("/boom"), 500)
    assert "secret" not in str(body) and "Traceback" not in str(body)


async def test_oversized_streaming_message_is_413(tmp_path: object) -> None:
    from tessera.api import create_app

    with Platform(Settings(home=str(tmp_path), max_streaming_message_bytes=1000)) as platform:
        transport = httpx.ASGITransport(app=create_app(platform), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            big = b'{"body": "' + b"x" * 2000 + b'"}'
            response = await c.post(
                "/collection/abc", content=big, headers={"content-type": "application/json"}
            )
            assert_problem(response, 413)
