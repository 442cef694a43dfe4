"""Catalog datasets and batches in the reference's id-keyed shapes (spec/aep.md §b13-§b14)."""

from __future__ import annotations

import httpx
import pytest

from tessera.platform import Platform
from tessera.store import WriteBatch

pytestmark = pytest.mark.anyio
DATASETS = "/data/foundation/catalog/dataSets"
BATCHES = "/data/foundation/catalog/batches"
SCHEMA = {"id": "", "contentType": "application/vnd.adobe.xed+json;version=1"}


@pytest.fixture(autouse=True)
def crm_schema(platform: Platform) -> None:
    """Datasets need a schema that exists: the sandbox's standard profile schema."""
    SCHEMA["id"] = platform.sandbox().schemas.ensure_standard_schemas()["profile"]


async def test_a_dataset_for_a_schema_that_does_not_exist_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        DATASETS, json={"name": "CRM", "schemaRef": {"id": "https://x/schemas/nope"}}
    )
    assert response.status_code == 400
    assert response.json()["report"]["path"] == "schemaRef.id"
    assert "does not exist" in response.json()["detail"]
    assert (await client.get(DATASETS)).json() == {}


async def create(client: httpx.AsyncClient, name: str, **extra: object) -> str:
    response = await client.post(DATASETS, json={"name": name, "schemaRef": SCHEMA, **extra})
    assert response.status_code == 201, response.text
    (ref,) = response.json()
    assert ref.startswith("@/dataSets/")
    return str(ref.removeprefix("@/dataSets/"))


async def test_create_enabled_dataset_then_read_it(client: httpx.AsyncClient) -> None:
    tags = {"unifiedProfile": ["enabled:true", "isUpsert:true"], "unifiedIdentity": ["enabled:true"]}
    dataset_id = await create(client, "CRM", tags=tags)
    body = (await client.get(f"{DATASETS}/{dataset_id}")).json()
    assert list(body) == [dataset_id]
    doc = body[dataset_id]
    assert doc["name"] == "CRM"
    assert doc["schemaRef"]["id"] == SCHEMA["id"]
    assert doc["tags"]["unifiedProfile"] == ["enabled:true", "isUpsert:true"]
    assert doc["tags"]["unifiedIdentity"] == ["enabled:true"]


async def test_dataset_without_tags_is_not_enabled_and_patch_enables_it(client: httpx.AsyncClient) -> None:
    dataset_id = await create(client, "Plain", tags={"acp_validationContext": ["disabled"]})
    doc = (await client.get(f"{DATASETS}/{dataset_id}")).json()[dataset_id]
    assert doc["tags"]["unifiedProfile"] == ["enabled:false"]
    assert doc["tags"]["acp_validationContext"] == ["disabled"]
    patch = {"tags": {"unifiedProfile": ["enabled:true"], "unifiedIdentity": ["enabled:true"]}}
    response = await client.patch(f"{DATASETS}/{dataset_id}", json=patch)
    assert response.status_code == 200
    assert response.json() == [f"@/dataSets/{dataset_id}"]
    doc = (await client.get(f"{DATASETS}/{dataset_id}")).json()[dataset_id]
    assert doc["tags"]["unifiedProfile"] == ["enabled:true"]


async def test_list_is_id_keyed_paged_and_filtered(client: httpx.AsyncClient) -> None:
    ids = [await create(client, f"ds-{i}") for i in range(3)]
    listed = (await client.get(DATASETS)).json()
    assert set(listed) == set(ids)
    page = (await client.get(DATASETS, params={"limit": 2, "start": 2})).json()
    assert len(page) == 1
    by_name = (await client.get(DATASETS, params={"name": "ds-1", "properties": "name"})).json()
    assert by_name == {ids[1]: {"id": ids[1], "name": "ds-1"}}


async def test_duplicate_name_conflicts_and_delete_then_404(client: httpx.AsyncClient) -> None:
    dataset_id = await create(client, "Once")
    duplicate = await client.post(DATASETS, json={"name": "Once", "schemaRef": SCHEMA})
    assert duplicate.status_code == 409
    assert (await client.delete(f"{DATASETS}/{dataset_id}")).json() == [f"@/dataSets/{dataset_id}"]
    assert (await client.get(f"{DATASETS}/{dataset_id}")).status_code == 404


async def test_patch_rejects_unknown_fields_and_empty_changes(client: httpx.AsyncClient) -> None:
    dataset_id = await create(client, "P")
    unknown = await client.patch(f"{DATASETS}/{dataset_id}", json={"schemaRef": SCHEMA})
    assert unknown.status_code == 400
    assert unknown.json()["report"]["path"] == "schemaRef"
    empty = await client.patch(f"{DATASETS}/{dataset_id}", json={})
    assert empty.status_code == 400


async def test_batches_show_status_metrics_and_errors(client: httpx.AsyncClient, platform: Platform) -> None:
    dataset_id = await create(client, "Events")
    batches = platform.sandbox().batches
    batch = batches.create(dataset_id)
    wb = WriteBatch()
    batches.record_error(
        wb, batch["id"], 2, {"code": "TESSERA-1101-400", "description": "bad", "recordIndex": 2}
    )
    platform.sandbox().store.write(wb)
    batches.set_status(
        batch["id"],
        "success",
        metrics={"inputRecordCount": 3, "outputRecordCount": 2, "failedRecordCount": 1},
    )
    other = batches.create("another-dataset")

    one = (await client.get(f"{BATCHES}/{batch['id']}")).json()[batch["id"]]
    assert one["status"] == "success"
    assert one["metrics"]["failedRecordCount"] == 1
    assert one["failedRecords"] == [{"code": "TESSERA-1101-400", "description": "bad", "recordIndex": 2}]
    assert one["errors"] == []
    assert one["relatedObjects"] == [{"type": "dataSet", "id": dataset_id}]

    listed = (await client.get(BATCHES, params={"dataSet": dataset_id})).json()
    assert set(listed) == {batch["id"]}
    assert set((await client.get(BATCHES)).json()) == {batch["id"], other["id"]}
    assert set((await client.get(BATCHES, params={"status": "loading"})).json()) == {other["id"]}
    assert (await client.get(f"{BATCHES}/nope")).status_code == 404
