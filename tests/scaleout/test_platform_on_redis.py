"""The whole platform on the distributed point store: same answers as the embedded one.

Ingestion, the identity graph (with linking rules and the identity optimisation algorithm),
merged profiles, events and streaming segments run on Redis exactly as on SQLite, and a fresh
process state (the platform reopened) rebuilds the same graph from Redis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.conftest import crm_record, ecid, web_event

from tessera.model import Identity
from tessera.platform import Platform
from tessera.scaleout.servers import RedisServer
from tessera.settings import Settings


def _run(platform: Platform) -> dict[str, Any]:
    sb = platform.sandbox()
    schemas = sb.schemas.ensure_standard_schemas()
    crm = sb.datasets.create("CRM", schemas["profile"])
    web = sb.datasets.create("Web", schemas["event"])
    sb.identity.set_rules(unique=["CRMID"], priority=["CRMID", "Email", "ECID"])
    seg = sb.segments.create({"name": "Jane buyers", "evaluationInfo": {"continuous": {"enabled": True}},
        "expression": {"type": "PQL", "format": "pql/text", "value":
            'person.name.firstName = "Jane" and xEvent[eventType = "commerce.purchases" and '
            'timestamp occurs < 24 hours before now].count() > 0'}})  # fmt: skip
    sb.ingest.ingest_records(
        crm["id"], [crm_record("kevin", "k@x.com", "Kevin"), crm_record("nora", "n@x.com", "Jane")]
    )
    from tessera.model import format_time, utcnow

    now = format_time(utcnow())
    for n, (crm_id, kind) in enumerate([("kevin", "web.webpagedetails.pageViews"), ("nora", "commerce.purchases"),
                                        (None, "web.webpagedetails.pageViews")]):  # fmt: skip
        extra = {"CRMID": crm_id} if crm_id else {}
        sb.ingest.stream([web_event(f"e{n}", ecid(1), now, kind, **extra)], dataset_id=web["id"])
    nora = sb.profiles.get(Identity("Email", "n@x.com"))
    kevin = sb.profiles.get(Identity("CRMID", "kevin"))
    assert nora is not None and kevin is not None
    events, _ = sb.profiles.events(Identity("CRMID", "nora"))
    return {
        "graphs": sorted(sorted(str(i) for i in g) for g in sb.identity.graph.components().values()),
        "nora": (nora.attributes["person"], sorted(i["id"] for i in nora.identities)),
        "kevin": sorted(i["id"] for i in kevin.identities),
        "nora_events": [e["record"]["_id"] for e in events],
        "member": sb.segments.memberships_of(nora.profile_id).get(seg["id"], {}).get("status"),
    }


@pytest.mark.timeout(120)
def test_platform_on_redis_equals_embedded(redis_standalone: RedisServer, tmp_path: Path) -> None:
    with Platform(Settings(home=str(tmp_path / "embedded"))) as embedded:
        expected = _run(embedded)
    assert expected["member"] == "realized" and expected["nora_events"] == ["e1", "e2"]
    settings = Settings(home=str(tmp_path / "distributed"), point_store="redis", redis_url=redis_standalone.url,
                        redis_namespace=f"t-{tmp_path.name}")  # fmt: skip
    with Platform(settings) as distributed:
        assert _run(distributed) == expected
    with Platform(settings) as reopened:  # a new process state: everything comes back from Redis
        graphs = sorted(
            sorted(str(i) for i in g) for g in reopened.sandbox().identity.graph.components().values()
        )
        assert graphs == expected["graphs"]
        assert reopened.sandbox().profiles.get(Identity("ECID", ecid(1))) is not None
