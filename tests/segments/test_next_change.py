"""When a profile's windowed results next change without new data: a long history is walked back
only as far as the longest window reaches, with the same answer as looking at every event."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from tessera.model import format_time
from tessera.segments.service import _EPS, SegmentService


def _every_event(events: list[dict[str, Any]], windows: set[timedelta], now: datetime) -> datetime | None:
    """The definition: the earliest window edge (or just after it) of any event that is after now."""
    edges = [
        t + w + extra
        for e in events
        for w in windows
        for extra in (timedelta(0), _EPS)
        if (t := datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))) + w + extra > now
    ]
    return min(edges, default=None)


def test_the_walk_back_finds_the_edge_that_looking_at_every_event_finds() -> None:
    rnd = random.Random(7)
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    for _ in range(200):
        # years of history in timestamp order, some of it inside the windows, some in the future
        times = sorted(now - timedelta(seconds=rnd.randrange(-3_600, 3 * 365 * 86_400)) for _ in range(60))
        events = [{"_id": str(i), "timestamp": format_time(t)} for i, t in enumerate(times)]
        windows = set(
            rnd.sample([timedelta(hours=1), timedelta(hours=24), timedelta(days=7)], rnd.randint(1, 3))
        )
        assert SegmentService._next_change(events, windows, False, now) == _every_event(events, windows, now)


def test_nothing_recent_means_no_change_to_wait_for() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    old = [{"_id": str(i), "timestamp": format_time(now - timedelta(days=30 + i))} for i in range(10)][::-1]
    assert SegmentService._next_change(old, {timedelta(days=7)}, False, now) is None
    # an event without a usable timestamp is skipped, not a reason to stop
    recent = [*old, {"_id": "x", "timestamp": format_time(now - timedelta(hours=2))}, {"_id": "y"}]
    assert SegmentService._next_change(recent, {timedelta(hours=3)}, False, now) == now + timedelta(hours=1)
