"""Streaming re-evaluates only the segments a change can affect, and never misses one that it can:
new segments, attribute changes, event types a segment reads, and windows that closed since."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import crm_record, ecid, web_event
from tests.segments.continuous import create_continuous, status

from tessera.model import Identity, format_time
from tessera.platform import Sandbox


def _stream(sb: Sandbox, retail: dict[str, Any], *events: dict[str, Any]) -> None:
    res = sb.ingest.stream(list(events), dataset_id=retail["web"]["id"])
    assert all("xactionId" in r for r in res), res


def test_sequence_qualifies_only_on_the_event_types_it_reads(retail: dict[str, Any]) -> None:
    sb: Sandbox = retail["sandbox"]
    chain = create_continuous(
        sb,
        "cart then buy",
        'chain(xEvent, timestamp, [A: WHAT(eventType = "commerce.productListAdds") WHEN(< 24 hours before now), '
        'B: WHAT(eventType = "commerce.purchases") WHEN(< 24 hours before now)])',
    )
    jane = create_continuous(sb, "Jane", 'person.name.firstName = "Jane"')
    sb.ingest.ingest_records("CRM", [crm_record("r1", "r1@example.com")])
    pid = sb.profiles.resolve(Identity("CRMID", "r1"))
    assert pid is not None and status(sb, pid, jane) == "realized" and status(sb, pid, chain) is None
    now = datetime.now(UTC)
    stamp = lambda minutes: format_time(now - timedelta(minutes=minutes))  # noqa: E731
    # a purchase before any cart add is not the sequence
    _stream(sb, retail, web_event("b0", ecid(3), stamp(30), "commerce.purchases", CRMID="r1"))
    _stream(sb, retail, web_event("a1", ecid(3), stamp(20), "commerce.productListAdds", CRMID="r1"))
    assert status(sb, pid, chain) is None
    _stream(sb, retail, web_event("v1", ecid(3), stamp(15)))  # a page view changes nothing
    assert status(sb, pid, chain) is None and status(sb, pid, jane) == "realized"
    _stream(sb, retail, web_event("b1", ecid(3), stamp(10), "commerce.purchases", CRMID="r1"))
    assert status(sb, pid, chain) == "realized"  # in the same call
    assert status(sb, pid, jane) == "realized"


def test_a_segment_created_later_is_evaluated_on_the_next_change(retail: dict[str, Any]) -> None:
    sb: Sandbox = retail["sandbox"]
    create_continuous(
        sb,
        "buyers",
        'xEvent[eventType = "commerce.purchases" and timestamp occurs < 24 hours before now].count() > 0',
    )
    sb.ingest.ingest_records("CRM", [crm_record("r2", "r2@example.com")])
    pid = sb.profiles.resolve(Identity("CRMID", "r2"))
    assert pid is not None
    jane = create_continuous(sb, "Jane", 'person.name.firstName = "Jane"')
    assert status(sb, pid, jane) is None
    # a page view: no attribute and no purchase changed, but the profile never saw this segment
    _stream(sb, retail, web_event("v2", ecid(4), format_time(datetime.now(UTC)), CRMID="r2"))
    assert status(sb, pid, jane) == "realized"


def test_an_attribute_change_re_evaluates_attribute_segments(retail: dict[str, Any]) -> None:
    sb: Sandbox = retail["sandbox"]
    jane = create_continuous(sb, "Jane", 'person.name.firstName = "Jane"')
    sb.ingest.ingest_records("CRM", [crm_record("r3", "r3@example.com")])
    pid = sb.profiles.resolve(Identity("CRMID", "r3"))
    assert pid is not None and status(sb, pid, jane) == "realized"
    sb.ingest.ingest_records("CRM", [crm_record("r3", "r3@example.com", "Joan")])
    assert status(sb, pid, jane) == "exited"


def test_a_window_closed_since_the_last_evaluation_is_seen_without_a_tick(retail: dict[str, Any]) -> None:
    sb: Sandbox = retail["sandbox"]
    recent = create_continuous(
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
    assert pid is not None and status(sb, pid, recent) == "realized"
    # nothing new about this profile, but its window closed: an evaluation at that time (any
    # later change, before the timer thread runs) must see it
    with sb.write_lock:
        staged = sb.begin()
        changes = sb.segments.on_change(staged, {pid}, now + timedelta(hours=4))
        staged.commit()
    assert [(c.segment_id, c.status) for c in changes] == [(recent, "exited")]
    assert status(sb, pid, recent) == "exited"


DAY = " and timestamp occurs < 24 hours before now"


def test_a_new_visitors_first_event_evaluates_only_what_it_can_change(retail: dict[str, Any]) -> None:
    """A profile streaming has never seen, with no attributes and no memberships, is compared with
    the empty profile: only segments reading its event types, or that an empty profile is in,
    are evaluated; the others keep the empty profile's verdict ("not in")."""
    sb: Sandbox = retail["sandbox"]
    never = create_continuous(
        sb, "never bought", f'xEvent[eventType = "commerce.purchases"{DAY}].count() = 0'
    )
    buyers = create_continuous(sb, "buyers", f'xEvent[eventType = "commerce.purchases"{DAY}].count() > 0')
    viewers = create_continuous(
        sb, "viewers", f'xEvent[eventType = "web.webpagedetails.pageViews"{DAY}].count() > 0'
    )
    jane = create_continuous(sb, "Jane", 'person.name.firstName = "Jane"')
    assert sb.segments is not None
    plan = sb.segments._stream_plan()
    calls: dict[str, int] = {}
    for pos, (doc, compiled) in enumerate(plan.segments):

        def counted(*args: Any, _inner: Any = compiled.predicate, _sid: str = doc["id"]) -> Any:
            calls[_sid] = calls.get(_sid, 0) + 1
            return _inner(*args)

        plan.segments[pos] = (doc, replace(compiled, predicate=counted))
    now = datetime.now(UTC)
    _stream(sb, retail, web_event("n1", ecid(41), format_time(now - timedelta(minutes=3))))
    pid = sb.profiles.resolve(Identity("ECID", ecid(41)))
    assert pid is not None
    assert {s: status(sb, pid, s) for s in (never, buyers, viewers, jane)} == {
        never: "realized",  # holds on an empty profile: evaluated although it reads purchases
        buyers: None,
        viewers: "realized",
        jane: None,
    }
    # the empty profile's verdicts (once per plan) and the page-view profile's own
    assert calls == {never: 2, buyers: 1, viewers: 2, jane: 1}
    calls.clear()
    _stream(sb, retail, web_event("n2", ecid(42), format_time(now), "commerce.purchases"))
    other = sb.profiles.resolve(Identity("ECID", ecid(42)))
    assert other is not None
    assert {s: status(sb, other, s) for s in (never, buyers, viewers, jane)} == {
        never: None,
        buyers: "realized",
        viewers: None,
        jane: None,
    }
    assert calls == {never: 1, buyers: 1}
    # the first visitor's purchase: seen before now, so the usual relevance applies
    _stream(sb, retail, web_event("n3", ecid(41), format_time(now), "commerce.purchases"))
    assert (status(sb, pid, never), status(sb, pid, buyers)) == ("exited", "realized")
