"""Sandbox management and isolation through x-sandbox-name (spec/aep.md §a8, §b16)."""

from __future__ import annotations

import httpx
import pytest

from tessera.platform import Platform

pytestmark = pytest.mark.anyio
SANDBOXES = "/data/foundation/sandbox-management/sandboxes"
DATASETS = "/data/foundation/catalog/dataSets"


async def test_list_has_prod_in_documented_shape(client: httpx.AsyncClient) -> None:
    body = (await client.get(SANDBOXES)).json()
    (prod,) = body["sandboxes"]
    assert {k: prod[k] for k in ("name", "title", "state", "type", "isDefault")} == {
        "name": "prod",
        "title": "Production",
        "state": "active",
        "type": "production",
        "isDefault": True,
    }
    assert "region" in prod and "_page" in body and body["_links"]["next"]["href"] == ""


async def test_create_get_delete_development_sandbox(client: httpx.AsyncClient) -> None:
    created = await client.post(SANDBOXES, json={"name": "dev-1", "title": "Dev 1", "type": "development"})
    assert created.status_code == 201
    assert created.json()["type"] == "development"
    assert (await client.get(f"{SANDBOXES}/dev-1")).json()["title"] == "Dev 1"
    assert (await client.post(SANDBOXES, json={"name": "dev-1"})).status_code == 409
    bad = await client.post(SANDBOXES, json={"name": "Bad Name"})
    assert bad.status_code == 400 and bad.json()["report"]["path"] == "name"
    assert (await client.delete(f"{SANDBOXES}/dev-1")).json()["state"] == "deleted"
    assert (await client.get(f"{SANDBOXES}/dev-1")).status_code == 404
    assert (await client.delete(f"{SANDBOXES}/prod")).status_code == 422


async def test_data_of_one_sandbox_is_invisible_in_another(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    await client.post(SANDBOXES, json={"name": "dev", "type": "development"})
    schema = {"id": platform.sandbox("dev").schemas.ensure_standard_schemas()["profile"]}
    made = await client.post(
        DATASETS, json={"name": "only-dev", "schemaRef": schema}, headers={"x-sandbox-name": "dev"}
    )
    dataset_id = made.json()[0].removeprefix("@/dataSets/")
    assert (await client.get(DATASETS)).json() == {}
    assert (await client.get(f"{DATASETS}/{dataset_id}")).status_code == 404
    in_dev = (await client.get(f"{DATASETS}/{dataset_id}", headers={"x-sandbox-name": "dev"})).json()
    assert in_dev[dataset_id]["name"] == "only-dev"
