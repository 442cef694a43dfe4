"""A chunk of streaming events looks up its event ids and its profiles' documents in one read
each, not one per message: over Redis each lookup is a network round trip."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from tests.conftest import ecid, web_event

from tessera.platform import Sandbox
from tessera.profile.service import EVENT_IDS, EVENTS, PROFILES


def _count_reads(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Reads of the id index and of profile documents, by kind."""
    counts = {"get": 0, "get_many": 0}
    store = sb.store
    get, get_many = store.get, store.get_many

    def counting_get(table: str, key: str) -> bytes | None:
        counts["get"] += table in (EVENT_IDS, PROFILES)
        return get(table, key)

    def counting_get_many(table: str, keys: Sequence[str]) -> dict[str, bytes]:
        counts["get_many"] += table in (EVENT_IDS, PROFILES)
        return get_many(table, keys)

    monkeypatch.setattr(store, "get", counting_get)
    monkeypatch.setattr(store, "get_many", counting_get_many)
    return counts


def test_a_chunk_of_events_reads_its_event_ids_and_profiles_at_once(
    retail: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sb: Sandbox = retail["sandbox"]
    web = retail["web"]["id"]
    sb.ingest.stream([web_event("e0", ecid(0), "2024-01-01T00:00:00Z")], dataset_id=web)
    counts = _count_reads(sb, monkeypatch)
    # forty visitors: enough keys for the embedded store to read ahead too (it does from 32 on)
    events = [web_event(f"e{i}", ecid(i), f"2024-01-02T00:00:{i:02d}Z") for i in range(40)]
    events.append(web_event("e3", ecid(3), "2024-01-02T00:00:03Z"))  # a replay inside the chunk
    results = sb.ingest.stream(events, dataset_id=web)  # fewer than the bulk path's 100
    assert all("xactionId" in r for r in results)
    assert counts == {"get": 0, "get_many": 2}  # one for the ids, one for the profiles
    # e0 came again with a new time: it moved, it was not stored twice; the replay is one event
    stored = [k for k, _ in sb.store.scan(EVENTS)]
    assert len(stored) == 40
    assert sum(k.endswith("e0") for k in stored) == 1
    # every visitor has a profile (e0's from before the chunk, the others made by it)
    assert sb.profiles.count() == 40
