"""Metrics at /metrics, request ids, JSON log lines without secrets, health and readiness."""

from __future__ import annotations

import io
import logging
import re

import httpx
import orjson
import pytest
from api_world import World, envelope, event, open_inlet, person
from prometheus_client.parser import text_string_to_metric_families

from tessera.api import create_key
from tessera.ops.logs import redact
from tessera.platform import Platform

pytestmark = pytest.mark.anyio


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return sum(
        v
        for (n, lab), v in samples(text).items()
        if n == name and all(dict(lab).get(k) == want for k, want in labels.items())
    )


async def test_metrics_count_ingestion_rejects_graphs_and_requests(
    client: httpx.AsyncClient, world: World
) -> None:
    before = (await client.get("/metrics")).text
    good = [
        envelope(world, world.crm, person(f"m{i}@x.com", "Ann", crm=f"c{i}"), is_event=False)
        for i in range(3)
    ]
    bad = envelope(
        world, world.crm, {"identityMap": {}, "person": {"name": {"firstName": "X"}}}, is_event=False
    )
    url = f"/collection/{await open_inlet(client)}"
    response = await client.post(
        url.replace("/collection/", "/collection/batch/"), json={"messages": [*good, bad]}
    )
    assert response.status_code == 207, response.text
    await client.post(
        url, json=envelope(world, world.events, event("e1", "m0@x.com", "2024-01-01T00:00:00Z"))
    )
    await client.get("/data/core/ups/segment/jobs/nope")
    after_response = await client.get("/metrics")
    assert after_response.status_code == 200
    assert after_response.headers["content-type"].startswith("text/plain")
    after = after_response.text
    ingested = "tessera_ingested_records_total"
    assert (
        value(after, ingested, dataset=world.crm, kind="streaming")
        - value(before, ingested, dataset=world.crm, kind="streaming")
        == 3
    )
    assert (
        value(after, ingested, dataset=world.events, kind="streaming")
        - value(before, ingested, dataset=world.events, kind="streaming")
        == 1
    )
    rejected = "tessera_rejected_records_total"
    assert (
        value(after, rejected, dataset=world.crm, sandbox="prod") - value(before, rejected, dataset=world.crm)
        == 1
    )
    # three graphs of two identities (Email + CRMID) in prod
    assert value(after, "tessera_identity_graph_size_bucket", sandbox="prod", le="1") == 0
    assert value(after, "tessera_identity_graph_size_bucket", sandbox="prod", le="2") == 3
    assert value(after, "tessera_identity_graph_size_gcount", sandbox="prod") == 3
    assert value(after, "tessera_identity_graph_largest", sandbox="prod") == 2
    # latencies by route template, not raw path
    assert (
        value(
            after,
            "tessera_http_request_seconds_count",
            route="/data/core/ups/segment/jobs/{jobId}",
            status="404",
        )
        >= 1
    )
    assert "nope" not in "".join(re.findall(r'route="[^"]*"', after))


async def test_segment_job_duration_is_measured(client: httpx.AsyncClient, world: World) -> None:
    await client.post(
        f"/collection/{await open_inlet(client)}",
        json=envelope(world, world.crm, person("j@x.com", "Jo", crm="c9"), is_event=False),
    )
    seg = await client.post(
        "/data/core/ups/segment/definitions",
        json={
            "name": "Jo",
            "expression": {"type": "PQL", "format": "pql/text", "value": 'person.name.firstName = "Jo"'},
            "schema": {"name": "_xdm.context.profile"},
        },
    )
    assert seg.status_code in (200, 201), seg.text
    before = value(
        (await client.get("/metrics")).text, "tessera_segment_job_seconds_count", status="SUCCEEDED"
    )
    job = await client.post("/data/core/ups/segment/jobs", json=[{"segmentId": seg.json()["id"]}])
    assert job.status_code in (200, 201, 202), job.text
    after = value(
        (await client.get("/metrics")).text, "tessera_segment_job_seconds_count", status="SUCCEEDED"
    )
    assert after == before + 1


async def test_metrics_need_an_all_sandbox_key_on_a_keyed_server(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    platform.sandboxes.create("dev")
    scoped, _ = create_key(platform.system, ["dev"], "dev")
    admin, _ = create_key(platform.system, ["*"], "admin")
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers={"x-api-key": scoped})).status_code == 403
    assert (await client.get("/metrics", headers={"x-api-key": admin})).status_code == 200


async def test_request_id_is_echoed_or_generated_and_in_every_log_line(
    client: httpx.AsyncClient, world: World, captured: io.StringIO
) -> None:
    mine = await client.get("/data/foundation/catalog/dataSets", headers={"x-request-id": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    fresh = await client.get("/data/foundation/catalog/dataSets")
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])
    hostile = await client.get("/tessera/health", headers={"x-request-id": "x" * 500})
    assert hostile.headers["x-request-id"] != "x" * 500
    errors = await client.get("/tessera/nothing-here", headers={"x-request-id": "req-404"})
    assert errors.status_code == 404 and errors.headers["x-request-id"] == "req-404"
    lines = [orjson.loads(line) for line in captured.getvalue().splitlines()]
    assert lines, "the access log wrote nothing"
    access = [d for d in lines if d["logger"] == "tessera.access"]
    by_id = {d.get("request_id"): d for d in access}
    assert by_id["abc-123"]["route"] == "/data/foundation/catalog/dataSets"
    assert by_id["abc-123"]["status"] == 200 and by_id["abc-123"]["level"] == "info"
    assert by_id["req-404"]["status"] == 404
    assert all("request_id" in d for d in access)


async def test_route_logs_inside_a_request_carry_its_id(
    client: httpx.AsyncClient, world: World, captured: io.StringIO
) -> None:
    # a graph-health alert is logged from inside the ingesting request (in a worker thread)
    platform: Platform = client._transport.app.state.platform  # type: ignore[attr-defined]
    platform.settings.__dict__["alert_graph_size"] = 2
    response = await client.post(
        f"/collection/{await open_inlet(client)}",
        json=envelope(world, world.crm, person("t@x.com", "Tom", crm="ct"), is_event=False),
        headers={"x-request-id": "ingest-1"},
    )
    assert response.status_code == 200, response.text
    lines = [orjson.loads(line) for line in captured.getvalue().splitlines()]
    alert_lines = [d for d in lines if d["logger"] == "tessera.alerts"]
    assert alert_lines and alert_lines[0]["request_id"] == "ingest-1"


async def test_no_secrets_in_logs(
    client: httpx.AsyncClient, platform: Platform, captured: io.StringIO
) -> None:
    token, _ = create_key(platform.system, ["*"], "admin")
    wrong = token[:-4] + "AAAA"
    await client.get("/data/foundation/catalog/dataSets", headers={"x-api-key": token})
    await client.get("/data/foundation/catalog/dataSets", headers={"Authorization": f"Bearer {token}"})
    await client.get("/data/foundation/catalog/dataSets", headers={"x-api-key": wrong})
    await client.get("/data/foundation/catalog/dataSets?api_key=" + token, headers={"x-api-key": token})
    # a route or library that logs a secret by mistake still gets it masked
    logging.getLogger("tessera.test").warning("calling with %s and Authorization: Bearer %s", token, token)
    logging.getLogger("tessera.test").error("failed", extra={"headers": {"x-api-key": token}})
    text = captured.getvalue()
    assert text.strip()
    secret = token.rsplit("_", 1)[1]
    assert secret not in text and wrong.rsplit("_", 1)[1] not in text
    assert "Bearer ***" in text


def test_redact_masks_keys_and_credentials() -> None:
    assert redact("x-api-key: abc123 more") == "x-api-key: *** more"
    assert redact('{"password": "hunter2"}') == '{"password": "***"}'
    assert "SECRET" not in redact("tsk_0123456789abcdef_SECRETSECRETSECRETSECRET1")
    assert redact("nothing secret here") == "nothing secret here"


async def test_health_is_open_and_ready_checks_the_stores(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    assert (await client.get("/tessera/health")).json() == {"status": "ok"}
    ready = await client.get("/tessera/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["checked"] == ["system", "prod"]
    platform.sandboxes.create("dev")
    platform.sandbox("dev")
    assert (await client.get("/tessera/ready")).json()["checked"] == ["system", "prod", "dev"]
    platform.sandbox().store.close()
    broken = await client.get("/tessera/ready")
    assert broken.status_code == 503, broken.text
    assert "prod" in broken.json()["detail"]


async def test_metrics_count_batch_ingestion_too(
    client: httpx.AsyncClient, world: World, platform: Platform
) -> None:
    before = (await client.get("/metrics")).text
    records = [person(f"b{i}@x.com", "Bea", crm=f"cb{i}") for i in range(4)]
    records.append({"identityMap": {}, "person": {"name": {"firstName": "Nobody"}}})  # refused
    platform.sandbox().ingest.ingest_records(world.crm, records)
    after = (await client.get("/metrics")).text
    ingested = "tessera_ingested_records_total"
    delta = value(after, ingested, dataset=world.crm, kind="batch") - value(
        before, ingested, dataset=world.crm, kind="batch"
    )
    assert delta == 4
    rejected = "tessera_rejected_records_total"
    assert (
        value(after, rejected, dataset=world.crm, kind="batch")
        - value(before, rejected, dataset=world.crm, kind="batch")
        == 1
    )
