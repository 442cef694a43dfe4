"""Streaming reads only the events its continuous segments can see: every streaming-eligible
expression puts a window of at most a day on the events it reads, so a profile with a long
history is read for its last day — with the same memberships as reading everything."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import ecid, web_event
from tests.segments.continuous import create_continuous, status

from tessera.model import Identity, format_time
from tessera.platform import Sandbox

PURCHASE = "commerce.purchases"
CART = "commerce.productListAdds"


def test_a_long_history_is_read_for_the_window_its_segments_can_see(retail: dict[str, Any]) -> None:
    sb: Sandbox = retail["sandbox"]
    web = retail["web"]["id"]
    buyers = create_continuous(
        sb,
        "bought today",
        f'xEvent[eventType = "{PURCHASE}" and timestamp occurs < 24 hours before now].count() > 0',
    )
    cart_then_buy = create_continuous(
        sb,
        "cart then buy",
        f'chain(xEvent, timestamp, [A: WHAT(eventType = "{CART}") WHEN(< 24 hours before now), '
        f'B: WHAT(eventType = "{PURCHASE}") WHEN(< 24 hours before now)])',
    )
    now = datetime.now(UTC)
    # two months of carts and purchases, all older than a day
    history = [
        web_event(f"old{i}", ecid(81), format_time(now - timedelta(days=2 + i)), PURCHASE if i % 2 else CART)
        for i in range(60)
    ]
    res = sb.ingest.stream(history, dataset_id=web)
    assert all("xactionId" in r for r in res), res
    pid = sb.profiles.resolve(Identity("ECID", ecid(81)))
    assert pid is not None
    assert (status(sb, pid, buyers), status(sb, pid, cart_then_buy)) == (None, None)

    assert sb.segments is not None
    plan = sb.segments._stream_plan()
    assert plan.horizon == timedelta(hours=24)
    seen: list[int] = []
    for pos, (doc, compiled) in enumerate(plan.segments):

        def counted(profile: Any, events: Any, *rest: Any, _inner: Any = compiled.predicate) -> Any:
            seen.append(len(events))
            return _inner(profile, events, *rest)

        plan.segments[pos] = (doc, replace(compiled, predicate=counted))

    # a cart an hour ago: the sequence is not complete, and only today's event was read
    sb.ingest.stream(
        [web_event("new1", ecid(81), format_time(now - timedelta(hours=1)), CART)], dataset_id=web
    )
    assert set(seen) == {1}
    assert (status(sb, pid, buyers), status(sb, pid, cart_then_buy)) == (None, None)
    # a purchase now completes it, within the same call
    seen.clear()
    sb.ingest.stream([web_event("new2", ecid(81), format_time(now), PURCHASE)], dataset_id=web)
    assert set(seen) == {2}
    assert (status(sb, pid, buyers), status(sb, pid, cart_then_buy)) == ("realized", "realized")


def test_a_profile_whose_events_are_all_old_is_not_taken_for_gone(retail: dict[str, Any]) -> None:
    """Reading only the last day finds nothing for a profile with old events only; it still
    exists (and may be in a segment that holds without recent events)."""
    sb: Sandbox = retail["sandbox"]
    quiet = create_continuous(
        sb,
        "no purchase today",
        f'xEvent[eventType = "{PURCHASE}" and timestamp occurs < 24 hours before now].count() = 0',
    )
    now = datetime.now(UTC)
    sb.ingest.stream(
        [web_event("q1", ecid(82), format_time(now - timedelta(days=9)), PURCHASE)],
        dataset_id=retail["web"]["id"],
    )
    pid = sb.profiles.resolve(Identity("ECID", ecid(82)))
    assert pid is not None and status(sb, pid, quiet) == "realized"
    sb.ingest.stream(
        [web_event("q2", ecid(82), format_time(now - timedelta(days=8)), PURCHASE)],
        dataset_id=retail["web"]["id"],
    )
    assert status(sb, pid, quiet) == "realized"


def test_a_computed_attribute_sees_its_whole_lookback(retail: dict[str, Any]) -> None:
    """Segments see a day; an active computed attribute with a week's lookback still gets the
    week's events."""
    sb: Sandbox = retail["sandbox"]
    create_continuous(
        sb,
        "bought today",
        f'xEvent[eventType = "{PURCHASE}" and timestamp occurs < 24 hours before now].count() > 0',
    )
    assert sb.segments is not None
    sb.segments.computed.create(
        {
            "name": "purchases7d",
            "expression": {"format": "pql/text", "value": f'xEvent[eventType = "{PURCHASE}"].count()'},
            "duration": {"count": 7, "unit": "DAYS"},
            "status": "PUBLISHED",
        }
    )
    now = datetime.now(UTC)
    web = retail["web"]["id"]
    sb.ingest.stream(
        [web_event("c1", ecid(83), format_time(now - timedelta(days=3)), PURCHASE)], dataset_id=web
    )
    sb.ingest.stream(
        [web_event("c2", ecid(83), format_time(now - timedelta(days=10)), PURCHASE)], dataset_id=web
    )
    sb.ingest.stream(
        [web_event("c3", ecid(83), format_time(now - timedelta(minutes=1)), PURCHASE)], dataset_id=web
    )
    pid = sb.profiles.resolve(Identity("ECID", ecid(83)))
    assert pid is not None
    assert sb.segments.computed.values_of(pid) == {"purchases7d": 2}  # 3 days and 1 minute ago, not 10 days
