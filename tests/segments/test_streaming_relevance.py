"""Streaming re-evaluates only the segments a change can affect, and never misses one that it can:
new segments, attribute changes, event types a segment reads, and windows that closed since."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import crm_record, ecid, web_event

from tessera.model import Identity, format_time
from tessera.platform import Sandbox


def _create(sb: Sandbox, name: str, expr: str) -> str:
    doc = sb.segments.create(
        {
            "name": name,
            "expression": {"type": "PQL", "format": "pql/text", "value": expr},
            "evaluationInfo": {"continuous": {"enabled": True}},
        }
    )
    return str(doc["id"])


def _status(sb: Sandbox, pid: str, sid: str) -> str | None:
    rec = sb.segments.memberships_of(pid).get(sid)
    return None if rec is None else str(rec["status"])


def _stream(sb: Sandbox, retail: dict[str, Any], *events: dict[str, Any]) -> None:
    res = sb.ingest.stream(list(events), dataset_id=retail["web"]["id"])
    assert all("xactionId" in r for r in res), res


def test_sequence_qualifies_only_on_the_event_types_it_reads(retail: dict[str, Any]) -> None:
    sb: Sandbox = retail["sandbox"]
    chain = _create(
        sb,
        "cart then buy",
        'chain(xEvent, timestamp, [A: WHAT(eventType = "commerce.productListAdds") WHEN(< 24 hours before now), '
        'B: WHAT(eventType = "commerce.purchases") WHEN(< 24 hours before now)])',
    )
    jane = _create(sb, "Jane", 'person.name.firstName = "Jane"')
    sb.ingest.ingest_records("CRM", [crm_record("r1", "r1@example.com")])
    pid = sb.profiles.resolve(Identity("CRMID", "r1"))
    assert pid is not None and _status(sb, pid, jane) == "realized" and _status(sb, pid, chain) is None
    now = datetime.now(UTC)
    stamp = lambda minutes: format_time(now - timedelta(minutes=minutes))  # noqa: E731
    # a purchase before any cart add is not the sequence
    _stream(sb, retail, web_event("b0", ecid(3), stamp(30), "commerce.purchases", CRMID="r1"))
    _stream(sb, retail, web_event("a1", ecid(3), stamp(20), "commerce.productListAdds", CRMID="r1"))
    assert _status(sb, pid, chain) is None
    _stream(sb, retail, web_event("v1", ecid(3), stamp(15)))  # a page view changes nothing
    assert _status(sb, pid, chain) is None and _status(sb, pid, jane) == "realized"
    _stream(sb, retail, web_event("b1", ecid(3), stamp(10), "commerce.purchases", CRMID="r1"))
    assert _status(sb, pid, chain) == "realized"  # in the same call
    assert _status(sb, pid, jane) == "realized"


def test_a_segment_created_later_is_evaluated_on_the_next_change(retail: dict[str, Any]) -> None:
    sb: Sandbox = retail["sandbox"]
    _create(
        sb,
        "buyers",
        'xEvent[eventType = "commerce.purchases" and timestamp occurs < 24 hours before now].count() > 0',
    )
    sb.ingest.ingest_records("CRM", [crm_record("r2", "r2@example.com")])
    pid = sb.profiles.resolve(Identity("CRMID", "r2"))
    assert pid is not None
    jane = _create(sb, "Jane", 'person.name.firstName = "Jane"')
    assert _status(sb, pid, jane) is None
    # a page view: no attribute and no purchase changed, but the profile never saw this segment
    _stream(sb, retail, web_event("v2", ecid(4), format_time(datetime.now(UTC)), CRMID="r2"))
    assert _status(sb, pid, jane) == "realized"


def test_an_attribute_change_re_evaluates_attribute_segments(retail: dict[str, Any]) -> None:
    sb: Sandbox = retail["sandbox"]
    jane = _create(sb, "Jane", 'person.name.firstName = "Jane"')
    sb.ingest.ingest_records("CRM", [crm_record("r3", "r3@example.com")])
    pid = sb.profiles.resolve(Identity("CRMID", "r3"))
    assert pid is not None and _status(sb, pid, jane) == "realized"
    sb.ingest.ingest_records("CRM", [crm_record("r3", "r3@example.com", "Joan")])
    assert _status(sb, pid, jane) == "exited"


def test_a_window_closed_since_the_last_evaluation_is_seen_without_a_tick(retail: dict[str, Any]) -> None:
    sb: Sandbox = retail["sandbox"]
    recent = _create(
        sb,
        "bought in 3h",
        'xEvent[eventType = "commerce.purchases" and timestamp occurs < 3 hours before now].count() > 0',
    )
    sb.ingest.ingest_records("CRM", [crm_record("r4", "r4@example.com")])
    now = datetime.now(UTC)
    _stream(
        sb,
        retail,
        web_event("b4", ecid(5), format_time(now - timedelta(minutes=5)), "commerce.purchases", CRMID="r4"),
    )
    pid = sb.profiles.resolve(Identity("CRMID", "r4"))
    assert pid is not None and _status(sb, pid, recent) == "realized"
    # nothing new about this profile, but its window closed: an evaluation at that time (any
    # later change, before the timer thread runs) must see it
    with sb.write_lock:
        staged = sb.begin()
        changes = sb.segments.on_change(staged, {pid}, now + timedelta(hours=4))
        staged.commit()
    assert [(c.segment_id, c.status) for c in changes] == [(recent, "exited")]
    assert _status(sb, pid, recent) == "exited"
