"""Graph-health alerts on generated data: a junk identity and an oversized graph are flagged, the
ordinary people around them are not."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tessera.api import create_app
from tessera.model import Identity
from tessera.ops.alerts import GRAPH_SIZE, JUNK_IDENTITY, clear_alert, list_alerts
from tessera.platform import Platform
from tessera.settings import Settings

pytestmark = pytest.mark.anyio
PEOPLE = 300
JUNK = "unknown@example.com"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    settings = Settings(
        home=str(tmp_path / "home"), group_commit_ms=0.0, alert_graph_size=12, alert_junk_links=8
    )
    with Platform(settings) as opened:
        yield opened


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(platform), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def generated(seed: int = 11) -> list[dict[str, Any]]:
    """People with a CRM id, an e-mail and a phone or two; 10 of them typed the same placeholder
    e-mail, and one household of 7 people shares one phone number, each with 2 devices."""
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(PEOPLE):
        identity_map: dict[str, Any] = {
            "CRMID": [{"id": f"c{i}", "primary": True}],
            "Email": [{"id": f"p{i}@x.com"}],
        }
        if rnd.random() < 0.5:
            identity_map["Phone"] = [{"id": f"+1555{i:07d}"}]
        rows.append({"identityMap": identity_map, "person": {"name": {"firstName": f"P{i}"}}})
    for i in range(10):  # the junk id: one placeholder e-mail on ten different customers' rows
        rows.append(
            {"identityMap": {"CRMID": [{"id": f"junk{i}", "primary": True}], "Email": [{"id": JUNK}]}}
        )
    for i in range(7):  # one large household graph: 7 customers x (CRM id + 2 devices) + the shared phone
        rows.append(
            {
                "identityMap": {
                    "CRMID": [{"id": f"h{i}", "primary": True}],
                    "Phone": [{"id": "+15559999999"}],
                    "ECID": [{"id": f"{i:019d}{1:019d}"}, {"id": f"{i:019d}{2:019d}"}],
                }
            }
        )
    rnd.shuffle(rows)
    return rows


async def test_junk_identity_and_large_graph_are_alerted(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    sb = platform.sandbox()
    ids = sb.schemas.ensure_standard_schemas()
    crm = sb.datasets.create("CRM", ids["profile"])
    before = metric_total((await client.get("/metrics")).text, "tessera_graph_alerts_total")
    sb.ingest.ingest_records(crm["id"], generated())

    alerts = (await client.get("/tessera/alerts")).json()
    assert alerts["thresholds"] == {"graphSize": 12, "junkLinks": 8}
    junk = {a["subject"]: a for a in alerts["alerts"] if a["kind"] == JUNK_IDENTITY}
    # the placeholder e-mail, and the phone the household shares (one phone on 7 customers' rows)
    assert set(junk) == {f"Email:{JUNK}", "Phone:+15559999999"}
    assert junk[f"Email:{JUNK}"]["links"] == 10 and junk[f"Email:{JUNK}"]["threshold"] == 8
    assert junk["Phone:+15559999999"]["links"] >= 8
    sizes = [a for a in alerts["alerts"] if a["kind"] == GRAPH_SIZE]
    # the household (7 CRM ids + 14 devices + 1 phone = 22) is past 12 identities; the junk
    # e-mail's graph (10 CRM ids + the e-mail = 11) is not, and ordinary people have at most 3
    assert [a["size"] for a in sizes] == [22]
    household = platform.sandbox().identity.graph.profile_id(Identity("Phone", "+15559999999"))
    assert sizes[0]["profileId"] == household

    stats = (await client.get("/tessera/stats")).json()
    assert stats["alerts"] == {GRAPH_SIZE: 1, JUNK_IDENTITY: 2}
    only_junk = (await client.get("/tessera/alerts", params={"kind": JUNK_IDENTITY})).json()["alerts"]
    assert [a["kind"] for a in only_junk] == [JUNK_IDENTITY] * 2
    after = metric_total((await client.get("/metrics")).text, "tessera_graph_alerts_total")
    assert after - before == 3


async def test_alerts_are_recorded_once_and_seen_again(platform: Platform) -> None:
    sb = platform.sandbox()
    ids = sb.schemas.ensure_standard_schemas()
    crm = sb.datasets.create("CRM", ids["profile"])
    first = [
        {"identityMap": {"CRMID": [{"id": f"j{i}", "primary": True}], "Email": [{"id": JUNK}]}}
        for i in range(9)
    ]
    sb.ingest.ingest_records(crm["id"], first)
    (alert,) = list_alerts(sb.store)
    assert alert["links"] == 9 and alert["count"] >= 1
    sb.ingest.ingest_records(
        crm["id"], [{"identityMap": {"CRMID": [{"id": "j99", "primary": True}], "Email": [{"id": JUNK}]}}]
    )
    (again,) = list_alerts(sb.store)
    assert (
        again["links"] == 10 and again["count"] > alert["count"] and again["firstSeen"] == alert["firstSeen"]
    )
    assert clear_alert(sb.store, JUNK_IDENTITY, f"Email:{JUNK}") and list_alerts(sb.store) == []


def test_thresholds_of_zero_turn_the_checks_off(tmp_path: Path) -> None:
    settings = Settings(home=str(tmp_path / "h"), alert_graph_size=0, alert_junk_links=0)
    with Platform(settings) as platform:
        sb = platform.sandbox()
        ids = sb.schemas.ensure_standard_schemas()
        crm = sb.datasets.create("CRM", ids["profile"])
        sb.ingest.ingest_records(crm["id"], generated())
        assert list_alerts(sb.store) == []


def metric_total(text: str, name: str) -> float:
    return sum(
        s.value for family in text_string_to_metric_families(text) for s in family.samples if s.name == name
    )
