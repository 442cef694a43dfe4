"""API keys: hashed at rest, required once any exists, scoped to sandboxes, rate-limited."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tessera.api import create_app, create_key, list_keys, revoke_key
from tessera.api.keys import API_KEYS, verify_key
from tessera.platform import Platform
from tessera.settings import Settings

pytestmark = pytest.mark.anyio
DATASETS = "/data/foundation/catalog/dataSets"
SANDBOXES = "/data/foundation/sandbox-management/sandboxes"


@pytest.fixture
def keys(platform: Platform) -> dict[str, str]:
    platform.sandboxes.create("sb-a")
    platform.sandboxes.create("sb-b")
    key_a, _ = create_key(platform.system, ["sb-a"], "a")
    admin, _ = create_key(platform.system, ["*"], "admin")
    return {"a": key_a, "admin": admin}


def operations(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, concrete path) of the OpenAPI document, path parameters filled in."""
    ops = []
    for path, item in app.openapi()["paths"].items():
        for method in item:
            if method in {"get", "post", "put", "patch", "delete"}:
                ops.append((method.upper(), re.sub(r"\{[^}]+\}", "sb-b", path)))
    return ops


def test_keys_are_stored_hashed_and_verify(platform: Platform) -> None:
    token, record = create_key(platform.system, ["prod"], "ci")
    raw = b"".join(v for _, v in platform.system.scan(API_KEYS))
    secret = token.split("_", 2)[2]  # tsk_<id>_<secret>; the secret itself may hold "_"
    assert secret.encode() not in raw
    assert "hash" not in list_keys(platform.system)[0]
    verified = verify_key(platform.system, token)
    assert verified is not None and verified.sandboxes == ("prod",)
    assert verify_key(platform.system, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert verify_key(platform.system, "garbage") is None
    revoke_key(platform.system, record["id"])
    assert verify_key(platform.system, token) is None


async def test_open_server_needs_no_key(client: httpx.AsyncClient) -> None:
    assert (await client.get(DATASETS)).status_code == 200


async def test_no_key_is_401_in_gateway_shape(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    response = await client.get(DATASETS, headers={"x-sandbox-name": "sb-a"})
    assert response.status_code == 401
    assert response.json() == {"error_code": "401013", "message": response.json()["message"]}
    wrong = await client.get(
        DATASETS, headers={"x-sandbox-name": "sb-a", "x-api-key": "tsk_0000000000000000_" + "x" * 43}
    )
    assert wrong.status_code == 401 and wrong.json()["error_code"] == "401013"


async def test_health_stays_open(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    assert (await client.get("/tessera/health")).status_code == 200
    assert (await client.get("/tessera/ready")).status_code == 401


async def test_key_works_as_x_api_key_and_bearer(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    for headers in ({"x-api-key": keys["a"]}, {"Authorization": f"Bearer {keys['a']}"}):
        response = await client.get(DATASETS, headers={**headers, "x-sandbox-name": "sb-a"})
        assert response.status_code == 200, response.text
    # reference clients send a client id as x-api-key and the token as Bearer: either may carry the key
    both = {"x-api-key": "client-id", "Authorization": f"Bearer {keys['a']}", "x-sandbox-name": "sb-a"}
    assert (await client.get(DATASETS, headers=both)).status_code == 200


async def test_key_for_a_cannot_read_b_or_prod(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    for sandbox in ("sb-b", None):
        headers = {"x-api-key": keys["a"], **({"x-sandbox-name": sandbox} if sandbox else {})}
        response = await client.get(DATASETS, headers=headers)
        assert response.status_code == 403
        assert response.json()["error_code"] == "403003"
    assert (await client.get(f"{SANDBOXES}/sb-b", headers={"x-api-key": keys["a"]})).status_code == 403


async def test_sandbox_list_shows_only_the_keys_sandboxes(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    mine = (await client.get(SANDBOXES, headers={"x-api-key": keys["a"]})).json()["sandboxes"]
    assert [s["name"] for s in mine] == ["sb-a"]
    every = (await client.get(SANDBOXES, headers={"x-api-key": keys["admin"]})).json()["sandboxes"]
    assert {s["name"] for s in every} == {"prod", "sb-a", "sb-b"}


async def test_only_admin_keys_manage_sandboxes(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    denied = await client.post(SANDBOXES, json={"name": "new"}, headers={"x-api-key": keys["a"]})
    assert denied.status_code == 403
    assert (await client.delete(f"{SANDBOXES}/sb-a", headers={"x-api-key": keys["a"]})).status_code == 403
    allowed = await client.post(SANDBOXES, json={"name": "new"}, headers={"x-api-key": keys["admin"]})
    assert allowed.status_code == 201


async def test_every_route_without_key_is_401(
    app: FastAPI, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    checked = 0
    for method, path in operations(app):
        if path == "/tessera/health":
            continue
        response = await client.request(method, path, json={}, headers={"x-sandbox-name": "sb-a"})
        assert response.status_code == 401, (method, path, response.text)
        checked += 1
    assert checked >= 10


async def test_every_route_refuses_other_sandbox(
    app: FastAPI, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    """A key for sb-a gets 403 on every operation aimed at sb-b: nothing of sb-b leaks."""
    for method, path in operations(app):
        if path.startswith("/tessera/") or path == SANDBOXES:
            continue
        headers = {"x-api-key": keys["a"], "x-sandbox-name": "sb-b"}
        response = await client.request(method, path, json={}, headers=headers)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error_code"] == "403003"


async def test_rate_limit_per_key_is_429(tmp_path: Path) -> None:
    with Platform(Settings(home=str(tmp_path), rate_limit_per_s=2.0)) as platform:
        key, _ = create_key(platform.system, ["prod"])
        other, _ = create_key(platform.system, ["prod"])
        transport = httpx.ASGITransport(app=create_app(platform), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            statuses = [(await c.get(DATASETS, headers={"x-api-key": key})).status_code for _ in range(5)]
            assert statuses[:2] == [200, 200] and 429 in statuses
            limited = await c.get(DATASETS, headers={"x-api-key": key})
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
            assert limited.json()["status"] == 429
            assert (await c.get(DATASETS, headers={"x-api-key": other})).status_code == 200
