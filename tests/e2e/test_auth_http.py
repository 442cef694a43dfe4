"""Auth and sandbox isolation on a keyed server, over HTTP."""

from __future__ import annotations

import re

import httpx
from e2e_server import Server

from tessera.client import TesseraClient
from tessera.errors import Forbidden, Unauthorized


def test_no_key_is_401_in_gateway_shape(keyed_server: Server) -> None:
    response = httpx.get(keyed_server.url + "/data/foundation/catalog/dataSets")
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == "401013"
    assert httpx.get(keyed_server.url + "/tessera/health").status_code == 200


def test_every_route_without_key_is_refused(keyed_server: Server) -> None:
    spec = httpx.get(
        keyed_server.url + "/openapi.json", headers={"x-api-key": keyed_server.keys["admin"]}
    ).json()
    for path, item in spec["paths"].items():
        for method in item:
            if path == "/tessera/health":
                continue
            url = keyed_server.url + re.sub(r"\{[^}]+\}", "x", path)
            response = httpx.request(method.upper(), url, json={}, headers={"x-sandbox-name": "team-b"})
            assert response.status_code in (401, 403), (method, path, response.status_code)


def test_key_for_a_sees_nothing_of_b(keyed_server: Server) -> None:
    admin = TesseraClient(keyed_server.url, api_key=keyed_server.keys["admin"], sandbox="team-b")
    secret = admin.create_dataset("b-secret", keyed_server.schemas["team-b profile"])
    with TesseraClient(
        keyed_server.url, api_key=keyed_server.keys["a"], sandbox="team-a", retries=0
    ) as client:
        assert client.list_datasets() == {}
        assert [s["name"] for s in client.list_sandboxes()["sandboxes"]] == ["team-a"]
    with TesseraClient(
        keyed_server.url, api_key=keyed_server.keys["a"], sandbox="team-b", retries=0
    ) as client:
        try:
            client.get_dataset(secret)
        except Forbidden as err:
            assert "team-b" in err.message
        else:
            raise AssertionError("a key for team-a read team-b")
    with TesseraClient(keyed_server.url, api_key="tsk_0123456789abcdef_" + "x" * 43, retries=0) as client:
        try:
            client.list_datasets()
        except Unauthorized:
            pass
        else:
            raise AssertionError("an unknown key was accepted")
    admin.close()
