"""Streaming evaluation: transitions inside the ingesting call, windows closing at tick time,
merges and splits, sequences and windowed aggregates, edge evaluation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from segfakes import FakeSandbox, definition, event

from tessera.errors import PqlError, SemanticError
from tessera.model import Identity

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def sb(tmp_path: Path) -> FakeSandbox:
    return FakeSandbox(tmp_path)


def test_event_makes_profile_qualify_in_the_same_call(sb: FakeSandbox) -> None:
    sb.segments.create(definition("Bought in 3h", "bought_3h"), seg_id="bought_3h")
    changes = sb.put("p1", events=[event("e1", T0)], now=T0)
    assert [(c.profile_id, c.segment_id, c.status) for c in changes] == [("p1", "bought_3h", "realized")]
    ups = sb.segments.memberships_of("p1")
    assert ups["bought_3h"]["status"] == "realized"
    assert ups["bought_3h"]["lastQualificationTime"] == "2026-03-01T12:00:00.000Z"
    # the profile as read shows the membership after the same commit
    shown = sb.profiles.stored_document("p1")
    assert shown is not None and shown["segmentMembership"]["bought_3h"]["status"] == "realized"


def test_window_closing_makes_profile_exit_at_tick_time(sb: FakeSandbox) -> None:
    sb.segments.create(definition("Bought in 3h", "bought_3h"), seg_id="bought_3h")
    sb.put("p1", events=[event("e1", T0)], now=T0 + timedelta(minutes=5))
    assert sb.segments.next_due() == T0 + timedelta(hours=3)
    assert sb.segments.tick(T0 + timedelta(hours=2, minutes=59)) == []
    changes = sb.segments.tick(T0 + timedelta(hours=3))
    assert [(c.profile_id, c.status) for c in changes] == [("p1", "exited")]
    assert (
        sb.segments.memberships_of("p1")["bought_3h"]["lastQualificationTime"] == "2026-03-01T15:00:00.000Z"
    )
    # nothing else is due for this profile afterwards
    assert sb.segments.tick(T0 + timedelta(days=30)) == []


def test_new_event_moves_the_window_forward(sb: FakeSandbox) -> None:
    sb.segments.create(definition("Bought in 3h", "bought_3h"), seg_id="bought_3h")
    sb.put("p1", events=[event("e1", T0)], now=T0)
    sb.put("p1", events=[event("e2", T0 + timedelta(hours=2))], now=T0 + timedelta(hours=2))
    assert sb.segments.tick(T0 + timedelta(hours=3, seconds=1)) == []
    assert sb.segments.memberships_of("p1")["bought_3h"]["status"] == "realized"
    assert [c.status for c in sb.segments.tick(T0 + timedelta(hours=5))] == ["exited"]


def test_sequence_and_windowed_aggregate_in_streaming(sb: FakeSandbox) -> None:
    sb.segments.create(definition("Cart then buy", "cart_then_buy_1d"), seg_id="chain")
    sb.segments.create(definition("Spend 100 in a day", "spend_100_1d"), seg_id="spend")
    sb.put("p1", events=[event("e1", T0, "purchase", 60)], now=T0)
    assert sb.segments.memberships_of("p1") == {}
    changes = sb.put(
        "p1",
        events=[
            event("e2", T0 + timedelta(hours=1), "addToCart", 0),
            event("e3", T0 + timedelta(hours=2), "purchase", 50),
        ],
        now=T0 + timedelta(hours=2),
    )
    assert sorted((c.segment_id, c.status) for c in changes) == [("chain", "realized"), ("spend", "realized")]
    # the first purchase leaves the 1-day window at T0 + 1 day: the sum drops to 50 < 100
    changes = sb.segments.tick(T0 + timedelta(days=1))
    assert [(c.segment_id, c.status) for c in changes] == [("spend", "exited")]
    changes = sb.segments.tick(T0 + timedelta(days=1, hours=1))
    assert [(c.segment_id, c.status) for c in changes] == [("chain", "exited")]


def test_in_segment_dependencies_evaluate_in_order(sb: FakeSandbox) -> None:
    sb.segments.create(definition("US", "us"), seg_id="us")
    sb.segments.create(definition("Bought", "bought_3h"), seg_id="bought_3h")
    sb.segments.create(definition("US buyers", "us_buyer"), seg_id="us_buyer")
    assert sb.segments.get("us_buyer")["dependencies"] == ["bought_3h", "us"]
    changes = sb.put(
        "p1", attributes={"homeAddress": {"countryCode": "US"}}, events=[event("e1", T0)], now=T0
    )
    assert {c.segment_id for c in changes} == {"us", "bought_3h", "us_buyer"}


def test_graph_merge_makes_merged_profile_qualify_and_split_exits_right_half(sb: FakeSandbox) -> None:
    sb.segments.create(definition("US", "us"), seg_id="us")
    sb.segments.create(definition("Bought", "bought_3h"), seg_id="bought_3h")
    sb.segments.create(definition("US buyers", "us_buyer"), seg_id="us_buyer")
    crm, ecid = Identity("CRMID", "a"), Identity("ECID", "1")
    sb.put("A", identities=[crm], attributes={"homeAddress": {"countryCode": "US"}}, now=T0)
    sb.put("B", identities=[ecid], events=[event("e1", T0)], now=T0)
    assert "us_buyer" not in sb.segments.memberships_of("A")
    # an event row links ECID 1 to CRMID a: B is merged into A
    us = {"A": {"homeAddress": {"countryCode": "US"}}}
    changes = sb.relink({"A": [crm, ecid]}, {"A", "B"}, T0 + timedelta(minutes=1), us)
    assert ("A", "us_buyer", "realized") in {(c.profile_id, c.segment_id, c.status) for c in changes}
    assert sb.segments.memberships_of("B")["bought_3h"]["status"] == "exited"
    # the link is removed again: the event goes with ECID 1 to B, A (US only) exits
    changes = sb.relink({"A": [crm], "B": [ecid]}, {"A", "B"}, T0 + timedelta(minutes=2), us)
    got = {(c.profile_id, c.segment_id, c.status) for c in changes}
    assert ("A", "us_buyer", "exited") in got and ("A", "bought_3h", "exited") in got
    assert ("B", "bought_3h", "realized") in got
    assert sb.segments.memberships_of("A")["us"]["status"] == "realized"


def test_ineligible_streaming_definition_is_refused_with_the_reason(sb: FakeSandbox) -> None:
    with pytest.raises(SemanticError) as err:
        sb.segments.create(definition("VIP", "vip", continuous=True))
    assert "batch data only" in err.value.message
    assert err.value.path == "evaluationInfo.continuous.enabled"
    assert sb.segments.create(definition("VIP", "vip", continuous=False))["evaluationInfo"]["batch"][
        "enabled"
    ]


def test_bad_pql_is_refused_with_its_position(sb: FakeSandbox) -> None:
    with pytest.raises(PqlError) as err:
        sb.segments.create(definition("Broken", "nonsense"))
    assert err.value.path == "1:1"


def test_synchronous_evaluation_uses_the_incoming_event_and_stores_nothing(sb: FakeSandbox) -> None:
    sb.segments.create(
        definition("Bought", "bought_3h", continuous=False, synchronous=True), seg_id="bought_3h"
    )
    sb.put("p1", now=T0)
    before = list(sb.store.scan("profile_memberships"))
    assert sb.segments.evaluate_synchronous("p1", event("e9", T0)) == {"bought_3h": True}
    assert sb.segments.evaluate_synchronous("p1", None, now=T0) == {"bought_3h": False}
    assert list(sb.store.scan("profile_memberships")) == before


def test_inactive_definitions_are_not_evaluated(sb: FakeSandbox) -> None:
    sb.segments.create(definition("Bought", "bought_3h"), seg_id="bought_3h")
    sb.segments.update("bought_3h", {"lifecycleState": "inactive"})
    assert sb.put("p1", events=[event("e1", T0)], now=T0) == []
    assert [v["version"] for v in sb.segments.definitions.versions("bought_3h")] == [1, 2]


def test_scheduler_thread_closes_windows_without_new_data(sb: FakeSandbox) -> None:
    import time

    from tessera.model import utcnow

    sb.segments.create(definition("Bought", "bought_3h"), seg_id="bought_3h")
    now = utcnow()
    sb.put("p1", events=[event("e1", now - timedelta(hours=3) + timedelta(milliseconds=300))], now=now)
    assert sb.segments.memberships_of("p1")["bought_3h"]["status"] == "realized"
    sb.segments.start(interval=0.05)
    try:
        deadline = time.monotonic() + 5
        while sb.segments.memberships_of("p1")["bought_3h"]["status"] != "exited":
            assert time.monotonic() < deadline, "the window did not close on its own"
            time.sleep(0.05)
    finally:
        sb.segments.close()
