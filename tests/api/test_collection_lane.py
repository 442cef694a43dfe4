"""Streaming collection answered by the lane (no framework routing) exactly as by the routes."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from api_world import World, envelope, event, open_inlet, person
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import Receive, Scope, Send

from tessera.api import create_key
from tessera.platform import Platform

pytestmark = pytest.mark.anyio
VOLATILE = {"xactionId", "receivedTimeMs", "batchId"}


def framework_only(app: FastAPI) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The same application with every request going through FastAPI's routing."""

    async def call(scope: Scope, receive: Receive, send: Send) -> None:
        await FastAPI.__call__(app, scope, receive, send)

    return call


def stable(value: Any) -> Any:
    """The answer without what differs between two calls (times, transaction and batch ids)."""
    if isinstance(value, dict):
        return {k: ("<volatile>" if k in VOLATILE else stable(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


async def test_the_lane_answers_every_case_like_the_routes(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    inlet = await open_inlet(client)
    bare = await open_inlet(client, dataset=world.events)
    good = envelope(world, world.crm, person("a@x.com", "Ann", crm="c1"), is_event=False)
    refused = envelope(world, world.events, {"eventType": "x", "identityMap": {}})
    json_headers = {"content-type": "application/json"}
    cases: list[tuple[str, dict[str, Any]]] = [
        (f"/collection/{inlet}", {"json": good}),
        (f"/collection/{inlet}?syncValidation=true", {"json": good}),
        (f"/collection/{inlet}?syncValidation=false&syncValidation=TRUE", {"json": good}),
        (f"/collection/{bare}", {"json": event("e1", "a@x.com", "2024-01-01T00:00:00Z")}),
        (f"/collection/{inlet}", {"json": refused}),
        (f"/collection/{inlet}", {"content": b'{"header": ,}', "headers": json_headers}),
        (f"/collection/{inlet}", {"content": b"{}", "headers": {"content-type": "text/plain"}}),
        (f"/collection/{inlet}", {"content": b"{}"}),
        ("/collection/no-such-inlet", {"json": good}),
        (f"/collection/{inlet}", {"json": good, "headers": {"x-sandbox-name": "nowhere"}}),
        (f"/collection/batch/{inlet}", {"json": {"messages": [good, refused, good]}}),
        (f"/collection/batch/{inlet}", {"json": {"messages": "nope"}}),
        (f"/collection/batch/{inlet}", {"json": [good]}),
        ("/collection/batch/no-such-inlet", {"json": {"messages": [good]}}),
    ]
    transport = httpx.ASGITransport(app=framework_only(app), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as routed:
        for path, kwargs in cases:
            lane = await client.post(path, **kwargs)
            route = await routed.post(path, **kwargs)
            assert lane.status_code == route.status_code, (path, lane.text, route.text)
            assert stable(lane.json()) == stable(route.json()), path
            assert lane.headers["content-type"] == route.headers["content-type"]
            assert lane.headers["x-request-id"] and route.headers["x-request-id"]
    statuses = [(await client.post(path, **kwargs)).status_code for path, kwargs in cases]
    assert statuses == [200, 200, 200, 200, 400, 400, 415, 400, 404, 404, 207, 400, 400, 404]


async def test_the_lane_logs_and_measures_each_request_under_its_route_template(
    client: httpx.AsyncClient, world: World, captured: io.StringIO
) -> None:
    inlet = await open_inlet(client)
    message = envelope(world, world.crm, person("b@x.com", "Bo"), is_event=False)
    one = await client.post(f"/collection/{inlet}", json=message, headers={"x-request-id": "lane-1"})
    many = await client.post(f"/collection/batch/{inlet}", json={"messages": [message]})
    assert one.status_code == 200 and one.headers["x-request-id"] == "lane-1"
    assert many.status_code == 207
    lines = [orjson.loads(line) for line in captured.getvalue().splitlines()]
    access = [d for d in lines if d["logger"] == "tessera.access" and d["route"].startswith("/collection/")]
    assert [(d["route"], d["status"]) for d in access] == [
        ("/collection/{inletId}", 200),
        ("/collection/batch/{inletId}", 207),
    ]
    assert access[0]["request_id"] == "lane-1"
    metrics = (await client.get("/metrics")).text
    routes = {
        (s.labels["route"], s.labels["status"])
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name == "tessera_http_request_seconds_count"
    }
    assert {("/collection/{inletId}", "200"), ("/collection/batch/{inletId}", "207")} <= routes
    assert inlet not in metrics


async def test_collection_requests_take_the_lane(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    inlet = await open_inlet(client)
    lane = app.collection  # type: ignore[attr-defined]
    seen: list[str] = []

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["path"])
        await lane(scope, receive, send)

    app.collection = counting  # type: ignore[attr-defined]
    message = envelope(world, world.crm, person("l@x.com", "Lu"), is_event=False)
    assert (await client.post(f"/collection/{inlet}", json=message)).status_code == 200
    assert (await client.post(f"/collection/batch/{inlet}", json={"messages": [message]})).status_code == 207
    assert (await client.get("/tessera/health")).status_code == 200
    assert seen == [f"/collection/{inlet}", f"/collection/batch/{inlet}"]


async def test_other_methods_and_spellings_still_reach_the_framework(
    client: httpx.AsyncClient, world: World
) -> None:
    inlet = await open_inlet(client)
    wrong_method = await client.get(f"/collection/{inlet}")
    assert wrong_method.status_code == 405 and wrong_method.json()["status"] == 405
    nested = await client.post(f"/collection/{inlet}/extra", json={})
    assert nested.status_code == 404 and nested.json()["status"] == 404


async def test_keys_and_sandboxes_apply_to_the_lane(
    platform: Platform, client: httpx.AsyncClient, world: World
) -> None:
    inlet = await open_inlet(client)
    platform.sandboxes.create("dev")
    dev_key, _ = create_key(platform.system, ["dev"], "dev")
    message = envelope(world, world.crm, person("k@x.com", "Kim"), is_event=False)
    missing = await client.post(f"/collection/{inlet}", json=message)
    assert missing.status_code == 401 and missing.json()["error_code"] == "401013"
    elsewhere = await client.post(f"/collection/{inlet}", json=message, headers={"x-api-key": dev_key})
    assert elsewhere.status_code == 403  # the key is for dev, the inlet is in prod
    in_dev = await client.post(
        f"/collection/{inlet}", json=message, headers={"x-api-key": dev_key, "x-sandbox-name": "dev"}
    )
    assert in_dev.status_code == 404  # prod's inlet does not exist in dev: nothing leaks across


async def test_a_fault_in_the_lane_is_a_500_without_internals(
    platform: Platform, client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    inlet = await open_inlet(client)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(platform.sandbox().ingest, "stream", broken)
    response = await client.post(
        f"/collection/{inlet}", json=envelope(world, world.crm, person("f@x.com", "F"), is_event=False)
    )
    assert response.status_code == 500 and response.json()["status"] == 500
    assert "secret" not in response.text
