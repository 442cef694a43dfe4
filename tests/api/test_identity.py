"""Identity Service (§b11), namespaces and Tessera's simulate/explain/stats."""

from __future__ import annotations

import orjson
import pytest
from api_world import World, person
from httpx import AsyncClient

pytestmark = pytest.mark.anyio
IDENTITY = "/data/core/identity"
NAMESPACES = "/data/core/idnamespace/identities"


@pytest.fixture
async def linked(client: AsyncClient, world: World) -> World:
    batch = (await client.post("/data/foundation/import/batches", json={"datasetId": world.crm})).json()["id"]
    rows = [person("alice@acme.com", "Alice", crm="C1"), person("bob@acme.com", "Bob")]
    await client.put(
        f"/data/foundation/import/batches/{batch}/datasets/{world.crm}/files/p.json",
        content=orjson.dumps(rows),
        headers={"content-type": "application/octet-stream"},
    )
    await client.post(f"/data/foundation/import/batches/{batch}", params={"action": "COMPLETE"})
    return world


async def test_xid_and_cluster_members(client: AsyncClient, linked: World) -> None:
    xid = (
        await client.get(f"{IDENTITY}/identity", params={"namespace": "Email", "id": "alice@acme.com"})
    ).json()["xid"]
    by_nsid = (await client.get(f"{IDENTITY}/identity", params={"nsId": 6, "id": "alice@acme.com"})).json()[
        "xid"
    ]
    assert xid == by_nsid
    cluster = (await client.get(f"{IDENTITY}/cluster/members", params={"xid": xid})).json()
    assert cluster["xid"] == xid
    assert {(m["namespace"], m["id"]) for m in cluster["members"]} == {
        ("Email", "alice@acme.com"),
        ("CRMID", "C1"),
    }
    alone = (
        await client.get(f"{IDENTITY}/cluster/members", params={"xid": xid, "graph-type": "None"})
    ).json()
    assert len(alone["members"]) == 1
    assert (
        await client.get(f"{IDENTITY}/cluster/members", params={"xid": xid, "graph-type": "odd"})
    ).status_code == 400


async def test_batch_clusters_one_entry_per_request(client: AsyncClient, linked: World) -> None:
    body = {
        "compositeXids": [
            {"ns": "Email", "id": "alice@acme.com"},
            {"ns": "CRMID", "id": "C1"},
            {"nsid": 6, "id": "bob@acme.com"},
        ],
        "graph-type": "Private Graph",
    }
    result = (await client.post(f"{IDENTITY}/clusters/members", json=body)).json()
    assert result["version"] == "1.0" and len(result["clusters"]) == 3
    assert len(result["clusters"][0]["members"]) == len(result["clusters"][1]["members"]) == 2
    too_many = {"xids": ["x"] * 1001}
    assert (await client.post(f"{IDENTITY}/clusters/members", json=too_many)).status_code == 400
    bad = (await client.post(f"{IDENTITY}/clusters/members", json={"xids": ["!!not-an-xid!!"]})).json()
    assert bad["unprocessedXids"] == ["!!not-an-xid!!"]


async def test_history_and_mapping(client: AsyncClient, linked: World) -> None:
    hist = (
        await client.get(f"{IDENTITY}/cluster/history", params={"namespace": "Email", "id": "alice@acme.com"})
    ).json()
    assert hist["clusterHistory"] and "cRecordedTS" in hist["clusterHistory"][0]
    posted = (
        await client.post(
            f"{IDENTITY}/clusters/history", json={"compositeXids": [{"ns": "Email", "id": "alice@acme.com"}]}
        )
    ).json()
    assert len(posted["xidsClusterHistory"]) == 1
    mapping = (
        await client.get(
            f"{IDENTITY}/mapping", params={"namespace": "Email", "id": "alice@acme.com", "targetNs": "CRMID"}
        )
    ).json()
    assert [m["compositeXid"]["id"] for m in mapping["mapping"]] == ["C1"]
    none = await client.get(
        f"{IDENTITY}/mapping", params={"namespace": "Email", "id": "bob@acme.com", "targetNs": "CRMID"}
    )
    assert none.status_code == 204
    batch = await client.post(
        f"{IDENTITY}/mappings",
        json={"compositeXids": [{"ns": "Email", "id": "alice@acme.com"}], "targetNs": "CRMID"},
    )
    assert (
        batch.status_code == 200 and batch.json()["mappings"][0]["mapping"][0]["compositeXid"]["id"] == "C1"
    )


async def test_namespaces(client: AsyncClient, world: World) -> None:
    listed = (await client.get(NAMESPACES)).json()
    email = next(n for n in listed if n["code"] == "Email")
    assert email["id"] == 6 and email["idType"] == "EMAIL"
    assert (await client.get(f"{NAMESPACES}/6")).json()["code"] == "Email"
    made = await client.post(
        NAMESPACES,
        json={"name": "User ID", "code": "UserID", "description": "shop login", "idType": "Cross_device"},
    )
    assert made.status_code == 200 and made.json()["custom"] is True and isinstance(made.json()["id"], int)
    assert (
        await client.post(NAMESPACES, json={"name": "again", "code": "UserID", "idType": "Cross_device"})
    ).status_code == 409
    bad = await client.post(NAMESPACES, json={"code": "X", "idType": "GALAXY"})
    assert bad.status_code == 400 and bad.json()["report"]["path"] == "idType"
    assert (await client.get(f"{NAMESPACES}/nope")).status_code == 404


async def test_simulate_explain_stats(client: AsyncClient, linked: World) -> None:
    body = {
        "text": "CRMID: Jane, ECID: 111\nCRMID: John, ECID: 111",
        "unique": ["CRMID"],
        "priority": ["CRMID", "ECID"],
    }
    result = (await client.post("/tessera/identity/simulate", json=body)).json()
    assert result["graphs"] == [
        {"identities": [{"namespace": "CRMID", "id": "John"}, {"namespace": "ECID", "id": "111"}]}
    ]
    bad = await client.post("/tessera/identity/simulate", json={"text": "CRMID Jane"})
    assert bad.status_code == 400 and bad.json()["report"]["path"] == "1:1"
    links = (
        await client.get(
            "/tessera/identity/explain", params={"from": "Email:alice@acme.com", "to": "CRMID:C1"}
        )
    ).json()["links"]
    assert len(links) == 1 and links[0]["datasetId"] == linked.crm
    stats = (await client.get("/tessera/stats")).json()
    assert stats["profiles"] == 2 and stats["datasets"] == 2 and stats["identity"]["graphs"] >= 1
