"""Windowed aggregates stream in real time: qualify on the event, exit when the window closes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import crm_record, ecid, web_event

from tessera.model import Identity, format_time
from tessera.platform import Sandbox


def test_two_purchases_in_three_hours_qualify_then_exit_on_time(retail: dict[str, Any]) -> None:
    sb: Sandbox = retail["sandbox"]
    expression = (
        'xEvent[eventType = "commerce.purchases" and timestamp occurs < 3 hours before now].count() >= 2'
    )
    seg = sb.segments.create(
        {
            "name": "Two purchases in 3 hours",
            "expression": {"type": "PQL", "format": "pql/text", "value": expression},
            "evaluationInfo": {"continuous": {"enabled": True}},
        }
    )
    sb.ingest.ingest_records("CRM", [crm_record("w1", "w1@example.com")])
    now = datetime.now(UTC)
    first = web_event(
        "p1", ecid(9), format_time(now - timedelta(minutes=30)), "commerce.purchases", CRMID="w1"
    )
    second = web_event(
        "p2", ecid(9), format_time(now - timedelta(minutes=10)), "commerce.purchases", CRMID="w1"
    )
    sb.ingest.stream([first], dataset_id=retail["web"]["id"])
    pid = sb.profiles.resolve(Identity("CRMID", "w1"))
    assert pid is not None
    assert seg["id"] not in sb.segments.memberships_of(pid)  # one purchase is not enough
    sb.ingest.stream([second], dataset_id=retail["web"]["id"])
    assert sb.segments.memberships_of(pid)[seg["id"]]["status"] == "realized"  # same call, no batch job
    # 2h31m after the first purchase it leaves the window: a timer, not new data, makes the profile exit
    changes = sb.segments.tick(now + timedelta(hours=2, minutes=31))
    assert [(c.profile_id, c.status) for c in changes] == [(pid, "exited")]
    assert sb.segments.memberships_of(pid)[seg["id"]]["status"] == "exited"
