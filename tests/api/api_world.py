"""Shared test data for the API tests: standard schemas, datasets and XDM payloads."""

from __future__ import annotations

import httpx

TAGS = {"unifiedProfile": ["enabled:true"], "unifiedIdentity": ["enabled:true"]}


class World:
    """Standard schemas and one profile-enabled record and event dataset in ``prod``."""

    def __init__(self, profile_schema: str, event_schema: str, crm: str, events: str) -> None:
        self.profile_schema = profile_schema
        self.event_schema = event_schema
        self.crm = crm
        self.events = events


def person(email: str, first: object, crm: str | None = None) -> dict[str, object]:
    identity_map: dict[str, object] = {"Email": [{"id": email, "primary": True}]}
    if crm:
        identity_map["CRMID"] = [{"id": crm}]
    return {"identityMap": identity_map, "person": {"name": {"firstName": first}}}


def event(event_id: str, email: str, when: str) -> dict[str, object]:
    return {
        "_id": event_id,
        "timestamp": when,
        "eventType": "web.webpagedetails.pageViews",
        "identityMap": {"Email": [{"id": email, "primary": True}]},
    }


def envelope(
    world: World, dataset: str, entity: dict[str, object], *, is_event: bool = True
) -> dict[str, object]:
    schema = world.event_schema if is_event else world.profile_schema
    ref = {"id": schema, "contentType": "application/vnd.adobe.xed-full+json;version=1"}
    return {
        "header": {"schemaRef": ref, "imsOrgId": "tessera", "datasetId": dataset, "source": {"name": "test"}},
        "body": {"xdmMeta": {"schemaRef": ref}, "xdmEntity": entity},
    }


async def open_inlet(client: httpx.AsyncClient, dataset: str | None = None) -> str:
    """Create a streaming connection (``dataset``: its default dataset); returns the inlet id."""
    params: dict[str, object] = {
        "sourceId": "web",
        "dataType": "xdm",
        "name": "web",
        "authenticationRequired": False,
    }
    if dataset:
        params["datasetId"] = dataset
    body = {
        "name": "web",
        "connectionSpec": {"id": "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb", "version": "1.0"},
        "auth": {"specName": "Streaming Connection", "params": params},
    }
    response = await client.post("/data/foundation/flowservice/connections", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
