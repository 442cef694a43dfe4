"""Over HTTP, the operations added for issue 7: PQL conversion, profile system jobs, edge
evaluation, audience PUT and bulk-get, export-job DELETE. Requests are written as the reference
docs write them (headers, paths, bodies); responses are checked for the documented shape."""

from __future__ import annotations

import json

import httpx
from e2e_server import Server
from test_reference_flows import JSON, create_dataset


def upload_batch(http: httpx.Client, dataset: str, rows: list[dict[str, object]]) -> str:
    created = http.post(
        "/data/foundation/import/batches",
        headers=JSON,
        content=json.dumps({"datasetId": dataset, "inputFormat": {"format": "json"}}),
    )
    assert created.status_code == 201, created.text
    batch = str(created.json()["id"])
    put = http.put(
        f"/data/foundation/import/batches/{batch}/datasets/{dataset}/files/rows.json",
        headers={"Content-Type": "application/octet-stream"},
        content=json.dumps(rows).encode(),
    )
    assert put.status_code == 200, put.text
    assert http.post(f"/data/foundation/import/batches/{batch}?action=COMPLETE").status_code == 200
    return batch


def event_ids(http: httpx.Client, email: str) -> list[str]:
    page = http.get(
        "/data/core/ups/access/entities?schema.name=_xdm.context.experienceevent"
        f"&relatedSchema.name=_xdm.context.profile&relatedEntityId={email}&relatedEntityIdNS=email"
    )
    assert page.status_code == 200, page.text
    return [c["entityId"] for c in page.json()["children"]]


def test_segment_conversion_text_to_json_and_back(http: httpx.Client) -> None:
    body = {
        "name": "People in the USA",
        "expression": {"type": "PQL", "format": "pql/text", "value": 'workAddress.country = "US"'},
        "schema": {"name": "_xdm.context.profile"},
        "ttlInDays": 60,
    }
    response = http.post("/data/core/ups/segment/conversion", headers=JSON, content=json.dumps(body))
    assert response.status_code == 200, response.text
    converted = response.json()
    assert converted["ttlInDays"] == 60 and converted["sandbox"]["sandboxName"] == "prod"
    assert {"imsOrgId", "sandbox", "expression"} <= set(converted)
    expression = converted["expression"]
    assert expression["type"] == "PQL" and expression["format"] == "pql/json"
    # the documented pql/json form of this expression (pql.md §7), sent as an escaped string
    assert json.loads(expression["value"]) == {
        "nodeType": "fnApply",
        "fnName": "=",
        "params": [
            {
                "nodeType": "fieldLookup",
                "fieldName": "country",
                "object": {
                    "nodeType": "fieldLookup",
                    "fieldName": "workAddress",
                    "object": {"nodeType": "parameterReference", "position": 1},
                },
            },
            {"nodeType": "literal", "literalType": "String", "value": "US"},
        ],
    }
    back = http.post(
        "/data/core/ups/segment/conversion",
        headers=JSON,
        content=json.dumps({**body, "expression": expression}),
    )
    assert back.status_code == 200
    assert back.json()["expression"] == body["expression"]

    bad = http.post(
        "/data/core/ups/segment/conversion",
        headers=JSON,
        content=json.dumps(
            {**body, "expression": {**body["expression"], "value": 'workAddress.country = "US'}}
        ),
    )
    assert bad.status_code == 400 and bad.json()["status"] == 400


def test_profile_system_jobs_delete_batches_and_datasets(http: httpx.Client, server: Server) -> None:
    crm = create_dataset(http, "sys-crm", server.schemas["profile"])
    web = create_dataset(http, "sys-web", server.schemas["event"])
    person = {
        "identityMap": {"Email": [{"id": "sys@example.com", "primary": True}]},
        "person": {"name": {"firstName": "Sys"}},
    }
    record_batch = upload_batch(http, crm, [person])

    def visit(event_id: str, day: int) -> dict[str, object]:
        return {
            "_id": event_id,
            "timestamp": f"2024-02-0{day}T10:00:00Z",
            "eventType": "web.webpagedetails.pageViews",
            "identityMap": {"Email": [{"id": "sys@example.com", "primary": True}]},
        }

    first = upload_batch(http, web, [visit("sys-1", 1), visit("sys-2", 2)])
    upload_batch(http, web, [visit("sys-3", 3)])
    assert event_ids(http, "sys@example.com") == ["sys-1", "sys-2", "sys-3"]

    job = http.post("/data/core/ups/system/jobs", headers=JSON, content=json.dumps({"batchId": first}))
    assert job.status_code == 200, job.text
    doc = job.json()
    assert doc["jobType"] == "DELETE" and doc["batchId"] == first and doc["status"] == "COMPLETED"
    assert {"id", "imsOrgId", "metrics", "createEpoch", "updateEpoch"} <= set(doc)
    assert json.loads(doc["metrics"])["deletedRecordCount"] == 2
    assert event_ids(http, "sys@example.com") == ["sys-3"]

    refused = http.post(
        "/data/core/ups/system/jobs", headers=JSON, content=json.dumps({"batchId": record_batch})
    )
    assert refused.status_code == 422 and "re-ingest" in refused.json()["detail"]

    profile_url = (
        "/data/core/ups/access/entities?schema.name=_xdm.context.profile"
        "&entityId=sys@example.com&entityIdNS=email"
    )
    assert http.get(profile_url).status_code == 200
    by_dataset = http.post("/data/core/ups/system/jobs", headers=JSON, content=json.dumps({"dataSetId": crm}))
    assert by_dataset.status_code == 200 and by_dataset.json()["dataSetId"] == crm
    entity = http.get(profile_url)
    assert entity.status_code == 404 or not next(iter(entity.json().values()))["entity"].get("person")

    listed = http.get("/data/core/ups/system/jobs?start=0&limit=1").json()
    assert listed["children"][0]["id"] == by_dataset.json()["id"]
    assert listed["_links"]["next"]["href"]
    job_id = doc["id"]
    assert http.get(f"/data/core/ups/system/jobs/{job_id}").json()["status"] == "COMPLETED"
    assert http.delete(f"/data/core/ups/system/jobs/{job_id}").status_code == 200
    gone = http.get(f"/data/core/ups/system/jobs/{job_id}")
    assert gone.status_code == 404 and gone.json()["status"] == 404


def test_edge_evaluation_counts_the_incoming_event_and_stores_nothing(
    http: httpx.Client, server: Server
) -> None:
    definition = {
        "name": "Bought in the last hour",
        "schema": {"name": "_xdm.context.profile"},
        "expression": {
            "type": "PQL",
            "format": "pql/text",
            "value": 'xEvent[eventType = "commerce.purchases" and timestamp occurs < 1 hours before now]'
            ".count() > 0",
        },
        "evaluationInfo": {
            "batch": {"enabled": False},
            "continuous": {"enabled": False},
            "synchronous": {"enabled": True},
        },
    }
    created = http.post("/data/core/ups/segment/definitions", headers=JSON, content=json.dumps(definition))
    assert created.status_code == 200, created.text
    segment_id = created.json()["id"]

    body = {
        "event": {
            "xdm": {
                "identityMap": {"Email": [{"id": "edge@example.com", "primary": True}]},
                "eventType": "commerce.purchases",
                "timestamp": "2024-03-01T12:00:00Z",
            }
        }
    }
    answer = http.post("/tessera/edge/evaluate", headers=JSON, content=json.dumps(body))
    assert answer.status_code == 200, answer.text
    verdicts = {s["segmentId"]: s["qualifies"] for s in answer.json()["segments"]}
    assert verdicts[segment_id] is True
    body["event"]["xdm"]["eventType"] = "web.webpagedetails.pageViews"
    again = http.post("/tessera/edge/evaluate", headers=JSON, content=json.dumps(body)).json()
    assert {s["segmentId"]: s["qualifies"] for s in again["segments"]}[segment_id] is False
    # nothing was stored: the purchase seen before is not remembered
    assert event_ids(http, "edge@example.com") == []


def test_audience_put_bulk_get_and_export_delete(http: httpx.Client) -> None:
    external = http.post(
        "/data/core/ups/audiences",
        headers=JSON,
        content=json.dumps(
            {
                "name": "Uploaded VIPs",
                "originName": "CUSTOM_UPLOAD",
                "identities": [{"namespace": "Email", "id": "vip@example.com"}],
            }
        ),
    )
    assert external.status_code == 200, external.text
    audience_id = external.json()["id"]
    replaced = http.put(
        f"/data/core/ups/audiences/{audience_id}",
        headers=JSON,
        content=json.dumps(
            {
                "name": "Uploaded VIPs (March)",
                "description": "refreshed",
                "identities": [{"namespace": "Email", "id": "vip2@example.com"}],
            }
        ),
    )
    assert replaced.status_code == 200
    assert replaced.json()["name"] == "Uploaded VIPs (March)"
    assert replaced.json()["identities"] == [{"namespace": "Email", "id": "vip2@example.com"}]

    bulk = http.post(
        "/data/core/ups/audiences/bulk-get",
        headers=JSON,
        content=json.dumps({"ids": [{"id": audience_id}, {"id": "missing"}]}),
    )
    assert bulk.status_code == 207
    results = bulk.json()["results"]
    assert results[audience_id]["name"] == "Uploaded VIPs (March)" and results["missing"]["status"] == 404

    export = http.post(
        "/data/core/ups/export/jobs",
        headers=JSON,
        content=json.dumps(
            {
                "fields": "identities.id",
                "filter": {
                    "segments": [{"segmentId": audience_id, "segmentNs": "ups", "status": ["realized"]}]
                },
                "destination": {"format": "jsonl"},
                "schema": {"name": "_xdm.context.profile"},
            }
        ),
    )
    assert export.status_code == 200, export.text
    export_id = export.json()["id"]
    assert http.delete(f"/data/core/ups/export/jobs/{export_id}").status_code == 200
    assert http.get(f"/data/core/ups/export/jobs/{export_id}").status_code == 404
