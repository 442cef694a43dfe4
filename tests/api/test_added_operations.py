"""Bad input on the operations added for issue 7 is a 400/404/422 naming the field, never a 500;
edge evaluation reads stored profiles."""

from __future__ import annotations

import orjson
import pytest
from api_world import World, envelope, person
from httpx import AsyncClient

pytestmark = pytest.mark.anyio
UPS = "/data/core/ups"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"expression": {"type": "PQL", "format": "pql/xml", "value": "a = 1"}}, "expression.format"),
        ({"expression": {"type": "ARL", "format": "pql/text", "value": "a = 1"}}, "expression.type"),
        ({"expression": "a = 1"}, "expression"),
        ({"expression": {"type": "PQL", "format": "pql/json", "value": "{not json"}}, None),
        ({"expression": {"type": "PQL", "format": "pql/json", "value": 5}}, "expression.value"),
        (
            {"expression": {"type": "PQL", "format": "pql/text", "value": "a = 1"}, "ttlInDays": "x"},
            "ttlInDays",
        ),
        (
            {"expression": {"type": "PQL", "format": "pql/text", "value": "a = 1"}, "schema": []},
            "schema.name",
        ),
    ],
)
async def test_conversion_rejects_bad_bodies(
    client: AsyncClient, body: dict[str, object], path: str | None
) -> None:
    response = await client.post(f"{UPS}/segment/conversion", json=body)
    assert response.status_code == 400, response.text
    if path:
        assert response.json()["report"]["path"] == path


async def test_conversion_accepts_a_decoded_json_document(client: AsyncClient) -> None:
    doc = {"nodeType": "literal", "literalType": "integer", "value": "6"}
    response = await client.post(
        f"{UPS}/segment/conversion", json={"expression": {"type": "PQL", "format": "pql/json", "value": doc}}
    )
    assert response.status_code == 200
    assert response.json()["expression"] == {"type": "PQL", "format": "pql/text", "value": "6"}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"dataSetId": "a", "batchId": "b"}, 400),
        ({"dataSetId": 5}, 400),
        ({"batchId": ""}, 400),
        ({"dataSetId": "nope"}, 404),
        ({"batchId": "nope"}, 404),
    ],
)
async def test_system_jobs_reject_bad_bodies(
    client: AsyncClient, body: dict[str, object], status: int
) -> None:
    response = await client.post(f"{UPS}/system/jobs", json=body)
    assert response.status_code == status, response.text
    assert response.json()["status"] == status


async def test_system_job_list_sorts_and_pages(client: AsyncClient, world: World) -> None:
    ids = [
        (await client.post(f"{UPS}/system/jobs", json={"dataSetId": world.events})).json()["id"]
        for _ in range(3)
    ]
    newest = (await client.get(f"{UPS}/system/jobs", params={"limit": 2})).json()
    assert [j["id"] for j in newest["children"]] == ids[::-1][:2]
    assert newest["_page"]["next"] == "/system/jobs?start=2&limit=2"
    oldest = (
        await client.get(f"{UPS}/system/jobs", params={"sort": "createEpoch:asc", "page": 1, "limit": 2})
    ).json()
    assert [j["id"] for j in oldest["children"]] == ids[2:]
    assert (await client.get(f"{UPS}/system/jobs", params={"sort": "name"})).status_code == 400
    assert (await client.delete(f"{UPS}/system/jobs/nope")).status_code == 404


async def test_edge_evaluation_uses_stored_attributes(client: AsyncClient, world: World) -> None:
    inlet = (
        await client.post(
            "/data/foundation/flowservice/connections",
            json={
                "name": "edge",
                "auth": {"specName": "Streaming Connection", "params": {"dataType": "xdm"}},
            },
        )
    ).json()["id"]
    sent = await client.post(
        f"/collection/{inlet}", json=envelope(world, world.crm, person("ann@acme.com", "Ann"), is_event=False)
    )
    assert sent.status_code == 200, sent.text
    seg = await client.post(
        f"{UPS}/segment/definitions",
        json={
            "name": "Anns",
            "schema": {"name": "_xdm.context.profile"},
            "expression": {"type": "PQL", "format": "pql/text", "value": 'person.name.firstName = "Ann"'},
            "evaluationInfo": {"synchronous": {"enabled": True}},
        },
    )
    assert seg.status_code == 200, seg.text
    sid = seg.json()["id"]

    async def verdict(body: dict[str, object]) -> bool:
        response = await client.post("/tessera/edge/evaluate", json=body)
        assert response.status_code == 200, response.text
        return {s["segmentId"]: s["qualifies"] for s in response.json()["segments"]}[sid]

    assert await verdict({"identity": {"namespace": "email", "id": "ann@acme.com"}}) is True
    assert await verdict({"identity": {"namespace": "Email", "id": "bob@acme.com"}}) is False
    assert await verdict({"profile": {"person": {"name": {"firstName": "Ann"}}}}) is True


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({}, "body"),
        ({"event": []}, "event"),
        ({"event": {"xdm": "x"}}, "event.xdm"),
        ({"event": {"xdm": {"timestamp": 5}}}, "event.xdm.timestamp"),
        ({"event": {"xdm": {"timestamp": "yesterday"}}}, "event.xdm.timestamp"),
        ({"event": {"xdm": {"identityMap": {"Email": "a"}}}}, "event.xdm.identityMap.Email"),
        ({"identity": {"id": 5}}, "identity"),
        ({"profile": [1]}, "profile"),
    ],
)
async def test_edge_evaluation_rejects_bad_bodies(
    client: AsyncClient, body: dict[str, object], path: str
) -> None:
    response = await client.post(
        "/tessera/edge/evaluate", content=orjson.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["report"]["path"] == path


async def test_audience_put_and_bulk_get_errors(client: AsyncClient) -> None:
    assert (await client.put(f"{UPS}/audiences/nope", json={"name": "x"})).status_code == 404
    assert (await client.post(f"{UPS}/audiences/bulk-get", json={"ids": "x"})).status_code == 400
    made = (
        await client.post(
            f"{UPS}/audiences", json={"name": "a", "identities": [{"namespace": "Email", "id": "a@b.c"}]}
        )
    ).json()
    bad = await client.put(f"{UPS}/audiences/{made['id']}", json={"name": " "})
    assert bad.status_code == 400 and bad.json()["report"]["path"] == "name"
    assert (await client.delete(f"{UPS}/export/jobs/nope")).status_code == 404
