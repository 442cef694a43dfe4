"""Every endpoint family over HTTP, with requests written as the reference docs write them
(headers, paths, query parameters, bodies) and responses checked for the documented shape."""

from __future__ import annotations

import json

import httpx
from e2e_server import Server

JSON = {"Content-Type": "application/json"}


def create_dataset(http: httpx.Client, name: str, schema_id: str) -> str:
    body = {
        "name": name,
        "schemaRef": {"id": schema_id, "contentType": "application/vnd.adobe.xed+json;version=1"},
        "tags": {"unifiedProfile": ["enabled:true"], "unifiedIdentity": ["enabled:true"]},
    }
    response = http.post("/data/foundation/catalog/dataSets", headers=JSON, content=json.dumps(body))
    assert response.status_code == 201
    (ref,) = response.json()
    return str(ref.split("/")[-1])


def test_health_docs_and_settings(http: httpx.Client, server: Server) -> None:
    assert http.get("/tessera/health").json() == {"status": "ok"}
    assert http.get("/tessera/ready").json()["status"] == "ready"
    assert "max_streaming_message_bytes" in {
        s["name"] for s in http.get("/tessera/settings").json()["settings"]
    }
    docs = http.get("/docs")
    assert docs.status_code == 200 and "/data/core/ups/access/entities" in docs.text
    assert http.get("/openapi.json").json()["info"]["title"] == "Tessera API"
    assert "OPEN" in server.log.read_text()  # the server says it runs without keys


def test_sandbox_management(http: httpx.Client) -> None:
    body = {"name": "dev-e2e", "title": "Dev E2E", "type": "development"}
    assert (
        http.post(
            "/data/foundation/sandbox-management/sandboxes", headers=JSON, content=json.dumps(body)
        ).status_code
        == 201
    )
    names = [s["name"] for s in http.get("/data/foundation/sandbox-management/sandboxes").json()["sandboxes"]]
    assert {"prod", "dev-e2e"} <= set(names)
    assert http.get("/data/foundation/catalog/dataSets", headers={"x-sandbox-name": "dev-e2e"}).json() == {}
    assert http.delete("/data/foundation/sandbox-management/sandboxes/dev-e2e").status_code == 200
    missing = http.get("/data/foundation/catalog/dataSets", headers={"x-sandbox-name": "dev-e2e"})
    assert missing.status_code == 404 and missing.json()["status"] == 404


def test_batch_ingestion_then_profile_and_events(http: httpx.Client, server: Server) -> None:
    crm = create_dataset(http, "e2e-crm", server.schemas["profile"])
    web = create_dataset(http, "e2e-web", server.schemas["event"])
    created = http.post(
        "/data/foundation/import/batches",
        headers=JSON,
        content=json.dumps({"datasetId": crm, "inputFormat": {"format": "json"}}),
    ).json()
    batch = created["id"]
    assert created["status"] == "loading" and created["relatedObjects"] == [{"type": "dataSet", "id": crm}]
    rows = [
        {
            "identityMap": {
                "Email": [{"id": "jane@example.com", "primary": True}],
                "ECID": [{"id": "8914" + "0" * 34}],
            },
            "person": {"name": {"firstName": "Jane", "lastName": "Doe"}},
        }
    ]
    put = http.put(
        f"/data/foundation/import/batches/{batch}/datasets/{crm}/files/profiles.json",
        headers={"Content-Type": "application/octet-stream"},
        content=json.dumps(rows).encode(),
    )
    assert put.status_code == 200
    assert http.post(f"/data/foundation/import/batches/{batch}?action=COMPLETE").status_code == 200
    status = http.get(f"/data/foundation/catalog/batches/{batch}").json()[batch]
    assert status["status"] == "success" and status["metrics"]["outputRecordCount"] == 1

    profile = http.get(
        "/data/core/ups/access/entities?schema.name=_xdm.context.profile&entityId=jane@example.com"
        "&entityIdNS=email&fields=identities,person.name"
    ).json()
    (entry,) = profile.values()
    assert entry["entity"]["person"]["name"] == {"firstName": "Jane", "lastName": "Doe"}
    assert {i["namespace"]["code"] for i in entry["entity"]["identities"]} == {"Email", "ECID"}

    inlet = http.post(
        "/data/foundation/flowservice/connections",
        headers=JSON,
        content=json.dumps(
            {
                "name": "e2e stream",
                "description": "HTTP API",
                "connectionSpec": {"id": "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb", "version": "1.0"},
                "auth": {
                    "specName": "Streaming Connection",
                    "params": {
                        "sourceId": "e2e",
                        "dataType": "xdm",
                        "name": "e2e",
                        "authenticationRequired": False,
                    },
                },
            }
        ),
    ).json()["id"]
    inlet_url = http.get(f"/data/foundation/flowservice/connections/{inlet}").json()["items"][0]["auth"][
        "params"
    ]["inletUrl"]
    ref = {"id": server.schemas["event"], "contentType": "application/vnd.adobe.xed-full+json;version=1"}
    messages = [
        {
            "header": {
                "schemaRef": ref,
                "imsOrgId": "{ORG_ID}",
                "datasetId": web,
                "flowId": "{FLOW_ID}",
                "source": {"name": "e2e"},
            },
            "body": {
                "xdmMeta": {"schemaRef": ref},
                "xdmEntity": {
                    "_id": f"evt-{i}",
                    "timestamp": f"2024-01-0{i}T12:00:00Z",
                    "eventType": "web.webpagedetails.pageViews",
                    "identityMap": {
                        "Email": [
                            {"id": "jane@example.com", "primary": True, "authenticatedState": "authenticated"}
                        ]
                    },
                },
            },
        }
        for i in range(1, 4)
    ]
    one = http.post(f"{inlet_url}?syncValidation=false", headers=JSON, content=json.dumps(messages[0]))
    assert one.status_code == 200 and set(one.json()) >= {"inletId", "xactionId", "receivedTimeMs"}
    many = http.post(
        f"/collection/batch/{inlet}", headers=JSON, content=json.dumps({"messages": messages[1:]})
    )
    assert many.status_code == 207 and all("xactionId" in r for r in many.json()["responses"])

    page = http.get(
        "/data/core/ups/access/entities?schema.name=_xdm.context.experienceevent&relatedSchema.name=_xdm.context.profile"
        "&relatedEntityId=jane@example.com&relatedEntityIdNS=Email&limit=2&orderby=timestamp"
    ).json()
    ids = [c["entityId"] for c in page["children"]]
    assert page["_links"]["next"]["href"]
    ids += [
        c["entityId"]
        for c in http.get("/data/core/ups/access/" + page["_links"]["next"]["href"]).json()["children"]
    ]
    assert ids == ["evt-1", "evt-2", "evt-3"]

    cluster = http.post(
        "/data/core/identity/clusters/members",
        headers=JSON,
        content=json.dumps(
            {"compositeXids": [{"nsid": 6, "id": "jane@example.com"}], "graph-type": "Private Graph"}
        ),
    ).json()
    assert {m["namespace"] for m in cluster["clusters"][0]["members"]} == {"Email", "ECID"}


def test_merge_policies_and_namespaces(http: httpx.Client) -> None:
    policies = http.get("/data/core/ups/config/mergePolicies?limit=20").json()
    assert {"_page", "children", "_links"} <= set(policies)
    body = {
        "name": "e2e-policy",
        "identityGraph": {"type": "none"},
        "attributeMerge": {"type": "timestampOrdered"},
        "schema": {"name": "_xdm.context.profile"},
        "isActiveOnEdge": False,
        "default": False,
    }
    created = http.post("/data/core/ups/config/mergePolicies", headers=JSON, content=json.dumps(body)).json()
    patched = http.patch(
        f"/data/core/ups/config/mergePolicies/{created['id']}",
        headers=JSON,
        content=json.dumps({"op": "add", "path": "/identityGraph.type", "value": "pdg"}),
    ).json()
    assert patched["identityGraph"] == {"type": "pdg"}
    namespaces = http.get("/data/core/idnamespace/identities").json()
    assert any(n["code"] == "ECID" and n["id"] == 4 for n in namespaces)


def test_errors_are_json(http: httpx.Client) -> None:
    bad = http.post("/data/foundation/catalog/dataSets", headers=JSON, content=b'{"name": ')
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/json"
    assert http.get("/not/a/route").json()["status"] == 404
    text = http.post(
        "/data/foundation/catalog/dataSets", headers={"Content-Type": "text/plain"}, content=b"hi"
    )
    assert text.status_code == 415
    big = http.post("/collection/whatever", headers=JSON, content=b'{"x": "' + b"y" * 1_100_000 + b'"}')
    assert big.status_code == 413 and big.json()["status"] == 413
