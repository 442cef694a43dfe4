"""Profile Access (§b1) and merge policies (§b2) through the API, on data ingested via the API."""

from __future__ import annotations

import orjson
import pytest
from api_world import World, event, person
from httpx import AsyncClient

pytestmark = pytest.mark.anyio
IMPORT = "/data/foundation/import/batches"
ENTITIES = "/data/core/ups/access/entities"
POLICIES = "/data/core/ups/config/mergePolicies"


async def ingest(client: AsyncClient, dataset: str, rows: list[dict[str, object]]) -> str:
    batch = (
        await client.post(IMPORT, json={"datasetId": dataset, "inputFormat": {"format": "json"}})
    ).json()["id"]
    await client.put(
        f"{IMPORT}/{batch}/datasets/{dataset}/files/rows.json",
        content=orjson.dumps(rows),
        headers={"content-type": "application/octet-stream"},
    )
    assert (await client.post(f"{IMPORT}/{batch}", params={"action": "COMPLETE"})).status_code == 200
    return str(batch)


@pytest.fixture
async def people(client: AsyncClient, world: World) -> World:
    await ingest(
        client, world.crm, [person("alice@acme.com", "Alice", crm="C1"), person("bob@acme.com", "Bob")]
    )
    await ingest(
        client,
        world.events,
        [event(f"e{i}", "alice@acme.com", f"2024-01-0{i}T00:00:00Z") for i in range(1, 6)],
    )
    return world


async def test_profile_by_identity_in_reference_shape(client: AsyncClient, people: World) -> None:
    params = {"schema.name": "_xdm.context.profile", "entityId": "alice@acme.com", "entityIdNS": "email"}
    body = (await client.get(ENTITIES, params=params)).json()
    ((entity_id, entry),) = body.items()
    assert entry["entityId"] == entity_id
    assert entry["entity"]["person"]["name"]["firstName"] == "Alice"
    codes = {(i["namespace"]["code"], i["id"]) for i in entry["entity"]["identities"]}
    assert {("Email", "alice@acme.com"), ("CRMID", "C1")} <= codes
    assert entry["sources"] and entry["lastModifiedAt"].endswith("Z") and "id" in entry["mergePolicy"]
    by_crm = (await client.get(ENTITIES, params={**params, "entityId": "C1", "entityIdNS": "CRMID"})).json()
    assert list(by_crm) == [entity_id]


async def test_fields_projection(client: AsyncClient, people: World) -> None:
    params = {
        "schema.name": "_xdm.context.profile",
        "entityId": "alice@acme.com",
        "entityIdNS": "Email",
        "fields": "person.name",
    }
    entity = next(iter((await client.get(ENTITIES, params=params)).json().values()))["entity"]
    assert entity == {"person": {"name": {"firstName": "Alice"}}}


async def test_unknown_profile_is_404_and_bad_params_400(client: AsyncClient, people: World) -> None:
    params = {"schema.name": "_xdm.context.profile", "entityId": "nobody@acme.com", "entityIdNS": "Email"}
    assert (await client.get(ENTITIES, params=params)).status_code == 404
    missing = await client.get(ENTITIES, params={"schema.name": "_xdm.context.profile"})
    assert missing.status_code == 400 and missing.json()["report"]["path"] == "entityId"
    assert (await client.get(ENTITIES, params={**params, "entityIdNS": "NoSuchNS"})).status_code == 404
    assert (await client.get(ENTITIES, params={**params, "schema.name": "other"})).status_code == 400
    assert (await client.get(ENTITIES)).status_code == 400


async def test_events_page_through_links_next(client: AsyncClient, people: World) -> None:
    params = {
        "schema.name": "_xdm.context.experienceevent",
        "relatedSchema.name": "_xdm.context.profile",
        "relatedEntityId": "alice@acme.com",
        "relatedEntityIdNS": "Email",
        "limit": 2,
        "orderby": "-timestamp",
    }
    page = (await client.get(ENTITIES, params=params)).json()
    seen = [c["entityId"] for c in page["children"]]
    assert page["_page"]["count"] == 2
    while page["_links"]["next"]["href"]:
        href = page["_links"]["next"]["href"]
        assert href.startswith("entities?")
        page = (await client.get(f"/data/core/ups/access/{href}")).json()
        seen += [c["entityId"] for c in page["children"]]
    assert seen == ["e5", "e4", "e3", "e2", "e1"]
    child = page["children"][0]
    assert child["timestamp"] == 1704067200000 and child["entity"]["_id"] == "e1"
    windowed = (
        await client.get(
            ENTITIES, params={**params, "limit": 10, "startTime": 1704153600000, "endTime": 1704326400000}
        )
    ).json()
    assert [c["entityId"] for c in windowed["children"]] == ["e3", "e2"]


async def test_post_entities_marks_unknown_identities(client: AsyncClient, people: World) -> None:
    body = {
        "schema": {"name": "_xdm.context.profile"},
        "fields": ["person.name"],
        "identities": [
            {"entityId": "bob@acme.com", "entityIdNS": {"code": "Email"}},
            {"entityId": "ghost@acme.com", "entityIdNS": {"code": "Email"}},
        ],
    }
    result = (await client.post(ENTITIES, json=body)).json()
    assert len(result) == 2
    by_request = {v["requestedIdentity"]["entityId"]: v for v in result.values()}
    assert by_request["bob@acme.com"]["entity"]["person"]["name"]["firstName"] == "Bob"
    ghost = by_request["ghost@acme.com"]
    assert (
        ghost["sources"] == [""]
        and ghost["entity"] == {}
        and ghost["lastModifiedAt"] == "1970-01-01T00:00:00Z"
    )
    assert (await client.post(ENTITIES, json={**body, "identities": []})).status_code == 400


async def test_delete_entity_is_202_and_profile_is_gone(client: AsyncClient, people: World) -> None:
    params = {"schema.name": "_xdm.context.profile", "entityId": "bob@acme.com", "entityIdNS": "Email"}
    response = await client.delete(ENTITIES, params=params)
    assert response.status_code == 202 and response.content == b""
    assert (await client.get(ENTITIES, params=params)).status_code == 404
    assert (
        await client.delete(ENTITIES, params={**params, "schema.name": "_xdm.context.experienceevent"})
    ).status_code == 400


async def test_merge_policy_lifecycle(client: AsyncClient, people: World) -> None:
    listed = (await client.get(POLICIES)).json()
    assert (
        listed["_links"]["next"]["href"] == ""
        and listed["_page"]["totalCount"] == len(listed["children"]) >= 1
    )
    body = {
        "name": "crm-first",
        "identityGraph": {"type": "pdg"},
        "attributeMerge": {"type": "dataSetPrecedence", "order": [people.crm]},
        "schema": {"name": "_xdm.context.profile"},
        "isActiveOnEdge": False,
        "default": False,
    }
    created = (await client.post(POLICIES, json=body)).json()
    pid = created["id"]
    assert created["version"] == 1 and created["attributeMerge"]["order"] == [people.crm]
    patched = (
        await client.patch(f"{POLICIES}/{pid}", json={"op": "add", "path": "/name", "value": "renamed"})
    ).json()
    assert patched["name"] == "renamed" and patched["version"] == 2
    replaced = (await client.put(f"{POLICIES}/{pid}", json={**body, "name": "replaced"})).json()
    assert replaced["name"] == "replaced" and replaced["version"] == 3
    bulk = await client.post(f"{POLICIES}/bulk-get", json={"ids": [{"id": pid}, {"id": "missing"}]})
    assert bulk.status_code == 207
    results = bulk.json()["results"]
    assert results[pid]["name"] == "replaced" and results["missing"]["status"] == 404
    params = {
        "schema.name": "_xdm.context.profile",
        "entityId": "alice@acme.com",
        "entityIdNS": "Email",
        "mergePolicyId": pid,
    }
    assert next(iter((await client.get(ENTITIES, params=params)).json().values()))["mergePolicy"]["id"] == pid
    page = (await client.get(POLICIES, params={"limit": 1})).json()
    assert len(page["children"]) == 1 and "start=1" in page["_links"]["next"]["href"]
    deleted = await client.delete(f"{POLICIES}/{pid}")
    assert deleted.status_code == 200 and deleted.content == b""
    assert (await client.get(f"{POLICIES}/{pid}")).status_code == 404


async def test_merge_policy_bad_bodies_are_400(client: AsyncClient, people: World) -> None:
    bad = await client.post(
        POLICIES,
        json={
            "name": "x",
            "attributeMerge": {"type": "dataSetPrecedence"},
            "schema": {"name": "_xdm.context.profile"},
            "identityGraph": {"type": "pdg"},
        },
    )
    assert bad.status_code == 400 and "report" in bad.json()
    assert (await client.get(POLICIES, params={"default": "maybe"})).status_code == 400
