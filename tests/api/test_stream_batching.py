"""Concurrent streaming requests share one ingestion call, and still each get their own answer."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from api_world import World, envelope, event, open_inlet
from httpx import AsyncClient

from tessera.model import Identity
from tessera.platform import Platform

pytestmark = pytest.mark.anyio


class Calls:
    """Wraps ``sandbox.ingest.stream``: records each call's size; the first call waits on a gate so
    that the requests sent meanwhile queue up behind it."""

    def __init__(self, platform: Platform, monkeypatch: pytest.MonkeyPatch, fail: str | None = None) -> None:
        self.sizes: list[int] = []
        self.gate = threading.Event()
        ingest = platform.sandbox().ingest
        real = ingest.stream

        def stream(messages: list[Any], *, dataset_id: str | None = None) -> list[dict[str, Any]]:
            self.sizes.append(len(messages))
            if len(self.sizes) == 1:
                assert self.gate.wait(10)
            if fail is not None and any(fail in str(m) for m in messages):
                raise RuntimeError("disk on fire")  # a fault, not a refusal
            return real(messages, dataset_id=dataset_id)

        monkeypatch.setattr(ingest, "stream", stream)


async def _release_when_queued(calls: Calls, expected: int) -> None:
    deadline = time.monotonic() + 10
    while not calls.sizes and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # the other requests reach the queue while the first call is held
    calls.gate.set()


async def test_requests_arriving_together_share_one_call_and_each_get_their_answer(
    client: AsyncClient, world: World, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    inlet = await open_inlet(client)
    calls = Calls(platform, monkeypatch)
    bad = {**event("bad", "x@acme.com", "2024-01-01T00:00:00Z"), "timestamp": None}
    messages = [
        envelope(world, world.events, event(f"e{i}", f"u{i}@acme.com", "2024-01-01T00:00:00Z"))
        for i in range(12)
    ]
    messages.insert(5, envelope(world, world.events, bad))
    sends = [client.post(f"/collection/{inlet}", json=m) for m in messages]
    *answers, _ = await asyncio.gather(*sends, _release_when_queued(calls, len(messages)))
    assert [a.status_code for a in answers] == [200] * 5 + [400] + [200] * 7
    assert answers[5].json()["report"]["path"] == "timestamp"  # the refusal is this request's alone
    assert len({a.json()["xactionId"] for i, a in enumerate(answers) if i != 5}) == 12
    assert sum(calls.sizes) == 13 and len(calls.sizes) < 13  # grouped
    profiles = platform.sandbox().profiles
    assert all(profiles.resolve(Identity("Email", f"u{i}@acme.com")) is not None for i in range(12))


async def test_a_fault_in_a_grouped_call_fails_only_the_request_that_caused_it(
    client: AsyncClient, world: World, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    inlet = await open_inlet(client, world.events)
    calls = Calls(platform, monkeypatch, fail="poison")
    first = client.post(f"/collection/{inlet}", json=event("e0", "u0@acme.com", "2024-01-01T00:00:00Z"))
    rest = [
        client.post(f"/collection/{inlet}", json=event(name, f"{name}@acme.com", "2024-01-01T00:00:00Z"))
        for name in ("a", "poison", "b")
    ]
    batch = client.post(
        f"/collection/batch/{inlet}",
        json={"messages": [event(f"m{i}", f"m{i}@acme.com", "2024-01-01T00:00:00Z") for i in range(3)]},
    )
    *answers, _ = await asyncio.gather(first, *rest, batch, _release_when_queued(calls, 5))
    assert [a.status_code for a in answers] == [200, 200, 500, 200, 207]
    assert answers[2].json()["detail"].startswith("Internal error")  # the error shape, not a trace
    assert all("xactionId" in r for r in answers[4].json()["responses"])
    assert max(calls.sizes) > 1  # they were grouped, then retried one request at a time
    profiles = platform.sandbox().profiles
    for email in ("u0", "a", "b", "m0", "m1", "m2"):
        assert profiles.resolve(Identity("Email", f"{email}@acme.com")) is not None
    assert profiles.resolve(Identity("Email", "poison@acme.com")) is None
