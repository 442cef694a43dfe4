"""The UI's helper routes through the app (no browser): same services, same error bodies."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tessera.ui.routes import flatten_fields


@pytest.fixture(scope="module")
def client(live_server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=30) as c:
        yield c


def test_index_and_assets_are_served_locally(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "/ui/static/js/main.js" in page.text
    assert "http" not in page.text.split("<body>")[0].replace("http-equiv", "")  # no CDN in <head>
    js = client.get("/ui/static/js/pql.js")
    assert js.status_code == 200 and "export function toPql" in js.text


def test_overview_counts(client: httpx.Client) -> None:
    body = client.get("/tessera/ui-api/overview").json()
    assert body["profiles"] >= 60
    assert body["identity"]["identitiesPerNamespace"]["CRMID"] >= 60
    assert {d["name"] for d in body["datasets"]} >= {"CRM Profiles", "Web Events"}


def test_suggest_then_profile_with_graph_and_provenance(client: httpx.Client) -> None:
    values = client.get(
        "/tessera/ui-api/identities/suggest", params={"namespace": "Email", "prefix": ""}
    ).json()
    assert values["values"] == sorted(values["values"]) and values["values"]
    email = values["values"][0]
    prefix = email[:4]
    again = client.get(
        "/tessera/ui-api/identities/suggest", params={"namespace": "Email", "prefix": prefix}
    ).json()
    assert all(v.startswith(prefix) for v in again["values"])
    body = client.get("/tessera/ui-api/profile", params={"namespace": "Email", "id": email}).json()
    nodes = {(n["namespace"], n["id"]) for n in body["graph"]["nodes"]}
    assert ("Email", email) in nodes
    assert body["profile"]["provenance"]
    assert set(body["profile"]["provenance"].values()) <= set(body["datasets"])
    if len(nodes) >= 2:
        (a, b) = sorted(nodes)[:2]
        chain = client.get(
            "/tessera/ui-api/identity/explain", params={"a": f"{a[0]}:{a[1]}", "b": f"{b[0]}:{b[1]}"}
        )
        assert chain.status_code == 200 and chain.json()["links"]


def test_unknown_identity_is_a_404_with_the_api_error_shape(client: httpx.Client) -> None:
    res = client.get("/tessera/ui-api/profile", params={"namespace": "Email", "id": "nobody@nowhere.example"})
    assert res.status_code == 404
    assert res.json()["detail"].startswith("No profile holds Email:nobody@nowhere.example")


def test_simulate_applies_unique_namespace(client: httpx.Client) -> None:
    text = "CRMID: Jane, ECID: 111\nCRMID: John, ECID: 111"
    body = client.post(
        "/tessera/ui-api/identity/simulate",
        json={"text": text, "unique": ["CRMID"], "priority": ["CRMID", "ECID"]},
    ).json()
    assert [sorted(i["id"] for i in g["identities"]) for g in body["graphs"]] == [["111", "John"]]
    assert body["links"][0]["firstSeen"] == 2


def test_upload_reports_each_bad_record(client: httpx.Client) -> None:
    ds = next(
        d for d in client.get("/tessera/ui-api/datasets").json()["datasets"] if d["name"] == "CRM Profiles"
    )
    content = (
        b'{"identityMap":{"CRMID":[{"id":"u-1","primary":true}]}}\n{"person":{"name":{"firstName":"NoId"}}}\n'
    )
    res = client.post(
        f"/tessera/ui-api/datasets/{ds['id']}/upload",
        json={"fileName": "x.jsonl", "content": base64.b64encode(content).decode()},
    )
    assert res.status_code == 201
    body: dict[str, Any] = res.json()
    assert body["batch"]["metrics"]["failedRecordCount"] == 1
    assert body["errors"][0]["row"] == 2 and body["errors"][0]["code"] == "IDENTITY"
    bad = client.post(
        f"/tessera/ui-api/datasets/{ds['id']}/upload", json={"fileName": "x.exe", "content": "AA=="}
    )
    assert bad.status_code == 400 and bad.json()["report"]["path"] == "fileName"


def test_pql_check_gives_eligibility_or_the_error_position(client: httpx.Client) -> None:
    good = client.post("/tessera/ui-api/pql/check", json={"pql": 'homeAddress.country = "US"'})
    assert good.status_code == 200
    body = good.json()
    assert body["batch"]["eligible"] is True
    assert {"eligible", "reason"} <= set(body["continuous"]) and {"eligible", "reason"} <= set(
        body["synchronous"]
    )
    bad = client.post("/tessera/ui-api/pql/check", json={"pql": 'homeAddress.country = "US"\nand x >> 1'})
    assert bad.status_code == 400
    report = bad.json()["report"]
    assert (report["line"], report["column"]) == (2, 8)


def test_flatten_fields_keeps_types_and_formats() -> None:
    node = {
        "properties": {
            "p": {
                "type": "object",
                "properties": {"d": {"type": "string", "format": "date"}, "m": {"type": "object"}},
            }
        }
    }
    assert flatten_fields(node) == [{"path": "p.d", "type": "date", "title": "d", "enum": None}]
