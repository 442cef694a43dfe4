"""Schema Registry and Privacy Service through the API."""

from __future__ import annotations

from urllib.parse import quote

import orjson
import pytest
from api_world import World, person
from httpx import AsyncClient

pytestmark = pytest.mark.anyio
SR = "/data/foundation/schemaregistry"
PROFILE = "https://ns.adobe.com/xdm/context/profile"


async def test_classes_and_field_groups(client: AsyncClient, world: World) -> None:
    classes = (await client.get(f"{SR}/global/classes")).json()
    assert PROFILE in {c["$id"] for c in classes["results"]}
    assert set(classes["results"][0]) == {"$id", "meta:altId", "version", "title"}
    full = (
        await client.get(f"{SR}/global/classes", headers={"Accept": "application/vnd.adobe.xed+json"})
    ).json()
    assert "properties" in full["results"][0]
    one = (await client.get(f"{SR}/global/classes/{quote(PROFILE, safe='')}")).json()
    assert one["meta:behaviorType"] == "record"
    assert (await client.get(f"{SR}/global/classes/_xdm.context.profile")).json()["$id"] == PROFILE
    assert (await client.get(f"{SR}/global/classes/nope")).status_code == 404
    groups = (await client.get(f"{SR}/global/fieldgroups")).json()["results"]
    assert any(g["title"] == "IdentityMap" for g in groups)


async def test_create_field_group_schema_descriptor_and_union(client: AsyncClient, world: World) -> None:
    group_body = {
        "title": "Loyalty",
        "meta:intendedToExtend": [PROFILE],
        "definitions": {
            "loyalty": {
                "properties": {
                    "_tessera": {
                        "type": "object",
                        "properties": {"loyaltyId": {"type": "string"}, "tier": {"type": "string"}},
                    }
                }
            }
        },
        "allOf": [{"$ref": "#/definitions/loyalty"}],
    }
    made = await client.post(f"{SR}/tenant/fieldgroups", json=group_body)
    assert made.status_code == 201, made.text
    group_id = made.json()["$id"]
    tenant_groups = (await client.get(f"{SR}/tenant/fieldgroups")).json()["results"]
    assert [g["$id"] for g in tenant_groups if g["title"] == "Loyalty"] == [group_id]

    schema_body = {"title": "Loyalty members", "allOf": [{"$ref": PROFILE}, {"$ref": group_id}]}
    schema = (await client.post(f"{SR}/tenant/schemas", json=schema_body)).json()
    sid = schema["$id"]
    descriptor = {
        "@type": "xdm:descriptorIdentity",
        "xdm:sourceSchema": sid,
        "xdm:sourceVersion": 1,
        "xdm:sourceProperty": "/_tessera/loyaltyId",
        "xdm:namespace": "CRMID",
        "xdm:property": "xdm:code",
        "xdm:isPrimary": True,
    }
    assert (await client.post(f"{SR}/tenant/descriptors", json=descriptor)).status_code == 201
    patched = await client.patch(
        f"{SR}/tenant/schemas/{quote(sid, safe='')}",
        json=[{"op": "add", "path": "/meta:immutableTags", "value": ["union"]}],
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["meta:immutableTags"] == ["union"]
    resolved = (
        await client.get(
            f"{SR}/tenant/schemas/{quote(sid, safe='')}",
            headers={"Accept": "application/vnd.adobe.xed-full+json;version=1"},
        )
    ).json()
    assert "loyaltyId" in resolved["properties"]["_tessera"]["properties"]
    unions = (await client.get(f"{SR}/tenant/unions")).json()["results"]
    assert any(u["meta:class"] == PROFILE for u in unions)
    union = (await client.get(f"{SR}/tenant/unions/{quote(PROFILE, safe='')}")).json()
    assert "_tessera" in union["properties"]
    # removing from a Profile-enabled schema is a breaking change
    disable = await client.patch(
        f"{SR}/tenant/schemas/{quote(sid, safe='')}",
        json=[{"op": "replace", "path": "/meta:immutableTags", "value": []}],
    )
    assert disable.status_code in (400, 409, 422)


async def test_schema_errors(client: AsyncClient, world: World) -> None:
    missing_class = await client.post(
        f"{SR}/tenant/schemas", json={"title": "x", "allOf": [{"$ref": "https://nope"}]}
    )
    assert missing_class.status_code == 404
    no_title = await client.post(f"{SR}/tenant/schemas", json={"allOf": []})
    assert no_title.status_code == 400 and no_title.json()["report"]["path"] == "title"
    bad_patch = await client.patch(f"{SR}/tenant/schemas/x", json=[{"op": "remove", "path": "/allOf/0"}])
    assert bad_patch.status_code in (400, 404)


async def test_privacy_access_then_delete(client: AsyncClient, world: World) -> None:
    batch = (await client.post("/data/foundation/import/batches", json={"datasetId": world.crm})).json()["id"]
    await client.put(
        f"/data/foundation/import/batches/{batch}/datasets/{world.crm}/files/p.json",
        content=orjson.dumps([person("alice@acme.com", "Alice", crm="C1")]),
        headers={"content-type": "application/octet-stream"},
    )
    await client.post(f"/data/foundation/import/batches/{batch}", params={"action": "COMPLETE"})
    body = {
        "companyContexts": [{"namespace": "imsOrgID", "value": "{ORG_ID}"}],
        "users": [
            {
                "key": "user-1",
                "action": ["access", "delete"],
                "userIDs": [{"namespace": "email", "value": "alice@acme.com", "type": "standard"}],
            }
        ],
        "include": ["ProfileService", "identity"],
        "expandIds": True,
        "regulation": "gdpr",
    }
    created = (await client.post("/data/core/privacy/jobs", json=body)).json()
    assert created["totalRecords"] == 1
    job = created["jobs"][0]
    assert job["status"] == "complete" and job["customer"]["user"]["key"] == "user-1"
    assert (await client.get(f"/data/core/privacy/jobs/{job['jobId']}")).json()["jobId"] == job["jobId"]
    assert [
        j["jobId"]
        for j in (await client.get("/data/core/privacy/jobs", params={"regulation": "gdpr"})).json()["jobs"]
    ] == [job["jobId"]]
    params = {"schema.name": "_xdm.context.profile", "entityId": "C1", "entityIdNS": "CRMID"}
    assert (await client.get("/data/core/ups/access/entities", params=params)).status_code == 404
    bad = await client.post("/data/core/privacy/jobs", json={"users": []})
    assert bad.status_code == 400 and bad.json()["report"]["path"] == "users"
