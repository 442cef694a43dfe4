"""Batch ingestion (§b13) and streaming collection (§b12) through the API."""

from __future__ import annotations

import orjson
import pytest
from api_world import World, envelope, event, open_inlet, person
from httpx import AsyncClient

pytestmark = pytest.mark.anyio
IMPORT = "/data/foundation/import/batches"
BATCH = "/data/foundation/catalog/batches"


async def new_batch(client: AsyncClient, dataset: str, fmt: str = "json") -> str:
    response = await client.post(IMPORT, json={"datasetId": dataset, "inputFormat": {"format": fmt}})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "loading" and body["relatedObjects"] == [{"type": "dataSet", "id": dataset}]
    return str(body["id"])


async def test_put_file_complete_then_catalog_shows_counts_and_failed_records(
    client: AsyncClient, world: World
) -> None:
    batch = await new_batch(client, world.crm)
    rows = [person("alice@acme.com", "Alice"), person("bob@acme.com", 5)]
    put = await client.put(
        f"{IMPORT}/{batch}/datasets/{world.crm}/files/people.json",
        content=orjson.dumps(rows),
        headers={"content-type": "application/octet-stream"},
    )
    assert put.status_code == 200 and put.content == b""
    done = await client.post(f"{IMPORT}/{batch}", params={"action": "COMPLETE"})
    assert done.status_code == 200 and done.content == b""
    doc = (await client.get(f"{BATCH}/{batch}")).json()[batch]
    assert doc["status"] == "success"
    assert doc["metrics"]["inputRecordCount"] == 2 and doc["metrics"]["failedRecordCount"] == 1
    (failed,) = doc["failedRecords"]
    assert failed["path"] == "person.name.firstName"
    assert (await client.post(f"{IMPORT}/{batch}", params={"action": "COMPLETE"})).status_code == 409


async def test_multipart_upload_in_chunks(client: AsyncClient, world: World) -> None:
    batch = await new_batch(client, world.crm, "jsonl")
    data = b"\n".join(orjson.dumps(person(f"p{i}@acme.com", f"P{i}")) for i in range(20))
    base = f"{IMPORT}/{batch}/datasets/{world.crm}/files/big.jsonl"
    assert (await client.post(base, params={"action": "INITIALIZE"})).status_code == 201
    half = len(data) // 2
    for start, chunk in ((0, data[:half]), (half, data[half:])):
        headers = {
            "content-type": "application/octet-stream",
            "Content-Range": f"bytes {start}-{start + len(chunk) - 1}/*",
        }
        assert (await client.patch(base, content=chunk, headers=headers)).status_code == 200
    wrong = await client.patch(
        base,
        content=b"x",
        headers={"content-type": "application/octet-stream", "Content-Range": "bytes 0-0/*"},
    )
    assert wrong.status_code == 400 and wrong.json()["report"]["path"] == "Content-Range"
    assert (await client.post(base, params={"action": "COMPLETE"})).status_code == 201
    assert (await client.post(f"{IMPORT}/{batch}", params={"action": "COMPLETE"})).status_code == 200
    doc = (await client.get(f"{BATCH}/{batch}")).json()[batch]
    assert doc["metrics"]["outputRecordCount"] == 20


async def test_abort_and_revert(client: AsyncClient, world: World) -> None:
    batch = await new_batch(client, world.crm)
    assert (await client.post(f"{IMPORT}/{batch}", params={"action": "ABORT"})).status_code == 200
    assert (await client.get(f"{BATCH}/{batch}")).json()[batch]["status"] == "aborted"
    events = await new_batch(client, world.events)
    body = orjson.dumps([event("e1", "alice@acme.com", "2024-01-01T00:00:00Z")])
    await client.put(
        f"{IMPORT}/{events}/datasets/{world.events}/files/e.json",
        content=body,
        headers={"content-type": "application/octet-stream"},
    )
    await client.post(f"{IMPORT}/{events}", params={"action": "COMPLETE"})
    assert (await client.post(f"{IMPORT}/{events}", params={"action": "REVERT"})).status_code == 200
    assert (await client.get(f"{BATCH}/{events}")).json()[events]["status"] == "reverted"


async def test_batch_errors(client: AsyncClient, world: World) -> None:
    assert (await client.post(IMPORT, json={"datasetId": "nope"})).status_code == 404
    bad_format = await client.post(IMPORT, json={"datasetId": world.crm, "inputFormat": {"format": "xml"}})
    assert bad_format.status_code == 400 and bad_format.json()["report"]["path"] == "inputFormat.format"
    batch = await new_batch(client, world.crm)
    assert (await client.post(f"{IMPORT}/{batch}", params={"action": "COMPLETE"})).status_code == 422
    assert (await client.post(f"{IMPORT}/{batch}", params={"action": "EXPLODE"})).status_code == 400
    other = await client.put(
        f"{IMPORT}/{batch}/datasets/{world.events}/files/a.json",
        content=b"[]",
        headers={"content-type": "application/octet-stream"},
    )
    assert other.status_code == 404


async def test_connection_exposes_inlet_url(client: AsyncClient, world: World) -> None:
    inlet = await open_inlet(client)
    (item,) = (await client.get(f"/data/foundation/flowservice/connections/{inlet}")).json()["items"]
    assert item["auth"]["params"]["inletUrl"] == f"/collection/{inlet}"
    assert [
        i["id"] for i in (await client.get("/data/foundation/flowservice/connections")).json()["items"]
    ] == [inlet]
    wrong_spec = await client.post(
        "/data/foundation/flowservice/connections", json={"name": "x", "connectionSpec": {"id": "other"}}
    )
    assert wrong_spec.status_code == 400


async def test_single_message_is_acknowledged_or_refused_with_path(client: AsyncClient, world: World) -> None:
    inlet = await open_inlet(client)
    message = envelope(world, world.events, event("e1", "alice@acme.com", "2024-01-01T00:00:00Z"))
    accepted = await client.post(f"/collection/{inlet}", params={"syncValidation": "true"}, json=message)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["inletId"] == inlet and accepted.json()["syncValidation"] == {"status": "pass"}
    assert "xactionId" in accepted.json()
    bad = envelope(world, world.events, {**event("e2", "alice@acme.com", "x"), "timestamp": None})
    refused = await client.post(f"/collection/{inlet}", json=bad)
    assert refused.status_code == 400 and refused.json()["report"]["path"] == "timestamp"
    assert (await client.post("/collection/unknown-inlet", json=message)).status_code == 404


async def test_batch_messages_get_207_with_one_result_each(client: AsyncClient, world: World) -> None:
    inlet = await open_inlet(client, world.events)
    good = envelope(world, world.events, event("e1", "alice@acme.com", "2024-01-01T00:00:00Z"))
    bare = event(
        "e2", "alice@acme.com", "2024-01-02T00:00:00Z"
    )  # a bare record goes to the connection's dataset
    bad = envelope(
        world, world.events, {"_id": "e3", "identityMap": {"Email": [{"id": "a@b.c", "primary": True}]}}
    )
    response = await client.post(f"/collection/batch/{inlet}", json={"messages": [good, bad, bare]})
    assert response.status_code == 207
    results = response.json()["responses"]
    assert "xactionId" in results[0] and "xactionId" in results[2]
    assert results[1]["statusCode"] == 400 and results[1]["path"] == "timestamp"
    not_list = await client.post(f"/collection/batch/{inlet}", json={"messages": {}})
    assert not_list.status_code == 400 and not_list.json()["report"]["path"] == "messages"


async def test_oversized_message_in_a_batch_gets_413_entry(
    client: AsyncClient, world: World, platform: object
) -> None:
    inlet = await open_inlet(client, world.events)
    huge = {**event("big", "alice@acme.com", "2024-01-01T00:00:00Z"), "blob": "x" * 1_100_000}
    small = event("small", "alice@acme.com", "2024-01-01T00:00:00Z")
    response = await client.post(f"/collection/batch/{inlet}", json={"messages": [huge, small]})
    assert response.status_code == 207
    results = response.json()["responses"]
    assert results[0]["statusCode"] == 413 and "xactionId" in results[1]
    single = await client.post(f"/collection/{inlet}", json=huge)
    assert single.status_code == 413 and single.json()["status"] == 413
