"""Webhook destination against a local receiver that fails sometimes: every change delivered, in
order per profile, signed, and nothing lost across a restart."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import random
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "segments"))
from segfakes import FakeSandbox, definition, event

from tessera.activation import SIGNATURE_HEADER, backoff
from tessera.store import SqliteStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "s3cret-key-for-tests"


class Receiver:
    def __init__(self, fail_rate: float, seed: int = 5) -> None:
        self.received: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.calls = 0
        rnd = random.Random(seed)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.calls += 1
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                if self.headers.get(SIGNATURE_HEADER) != expected:
                    outer.bad_signatures += 1
                    self.send_response(401)
                elif rnd.random() < fail_rate:
                    self.send_response(503)
                else:
                    outer.received.extend(orjson.loads(body)["changes"])
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_rate=0.4)
    yield r
    r.close()


def _setup(sb: FakeSandbox, url: str) -> dict[str, Any]:
    sb.segments.create(definition("Bought", "bought_3h"), seg_id="bought_3h")
    return sb.segments.activation.destinations.create(
        {
            "type": "webhook",
            "name": "hook",
            "url": url,
            "secret": SECRET,
            "segments": ["bought_3h"],
            "batchSize": 3,
            "backoffSeconds": 0.01,
            "maxBackoffSeconds": 0.05,
        }
    )


def _drain(sb: FakeSandbox, dest_id: str, rounds: int = 200) -> None:
    for _ in range(rounds):
        sb.segments.activation.destinations.deliver(force=True)
        if sb.segments.activation.destinations.pending(dest_id) == 0:
            return
    raise AssertionError("deliveries did not drain")


def _expected(profiles: int) -> list[tuple[str, str]]:
    out = []
    for i in range(profiles):
        out += [(f"p{i}", "realized"), (f"p{i}", "exited"), (f"p{i}", "realized")]
    return out


def _produce(sb: FakeSandbox, profiles: int, phase: int) -> None:
    """phase 0: everyone buys; phase 1: windows close; phase 2: everyone buys again."""
    if phase == 1:
        sb.segments.tick(T0 + timedelta(hours=4))
        return
    when = T0 if phase == 0 else T0 + timedelta(hours=5)
    for i in range(profiles):
        sb.put(f"p{i}", events=[event(f"e{i}-{phase}", when)], now=when)


def test_every_change_delivered_in_order_despite_failures(tmp_path: Path, receiver: Receiver) -> None:
    sb = FakeSandbox(tmp_path)
    dest = _setup(sb, receiver.url)
    for phase in range(3):
        _produce(sb, 8, phase)
        sb.segments.activation.destinations.deliver(force=True)
    _drain(sb, dest["id"])
    got = [(c["profileId"], c["status"]) for c in receiver.received]
    assert receiver.bad_signatures == 0
    assert receiver.received[0]["identities"] == [
        {"namespace": "CRMID", "id": receiver.received[0]["profileId"]}
    ]
    assert sorted(got) == sorted(_expected(8))
    for i in range(8):  # in order per profile
        assert [s for p, s in got if p == f"p{i}"] == ["realized", "exited", "realized"]
    assert receiver.calls > len(got) // 3  # some calls failed and were retried
    assert sb.segments.activation.destinations.state(dest["id"])["delivered"] == len(got)


def test_pending_deliveries_survive_a_restart(tmp_path: Path) -> None:
    down = Receiver(fail_rate=1.0)  # everything fails before the "crash"
    db = tmp_path / "point.sqlite"
    store = SqliteStore(db)
    sb = FakeSandbox(tmp_path, store=store)
    dest = _setup(sb, down.url)
    _produce(sb, 5, 0)
    _produce(sb, 5, 1)
    sb.segments.activation.destinations.deliver(force=True)
    state = sb.segments.activation.destinations.state(dest["id"])
    assert state["attempts"] >= 1 and state["lastError"] == "HTTP 503"
    assert sb.segments.activation.destinations.pending(dest["id"]) == 10
    sb.segments.close()
    store.close()
    down.close()
    up = Receiver(fail_rate=0.3, seed=9)
    try:
        store2 = SqliteStore(db)
        sb2 = FakeSandbox(tmp_path, store=store2)
        sb2.identity.graph = sb.identity.graph
        row = sb2.segments.activation.destinations.get(dest["id"])
        store2.write(
            __import__("tessera.store", fromlist=["WriteBatch"])
            .WriteBatch()
            .put_json("destinations", dest["id"], {**row, "url": up.url})
        )
        _produce(sb2, 5, 2)
        _drain(sb2, dest["id"])
        got = [(c["profileId"], c["status"]) for c in up.received]
        assert sorted(got) == sorted(_expected(5))
        for i in range(5):
            assert [s for p, s in got if p == f"p{i}"] == ["realized", "exited", "realized"]
        sb2.segments.close()
        store2.close()
    finally:
        up.close()


def test_backoff_waits_between_failed_attempts(tmp_path: Path) -> None:
    down = Receiver(fail_rate=1.0)
    try:
        sb = FakeSandbox(tmp_path)
        dest = _setup(sb, down.url)
        _produce(sb, 1, 0)
        now = T0
        dests = sb.segments.activation.destinations
        dests.deliver(now)
        calls = down.calls
        dests.deliver(now)  # still inside the backoff window: no call
        assert down.calls == calls == 1
        dests.deliver(now + timedelta(seconds=1))
        assert down.calls == 2 and dests.state(dest["id"])["attempts"] == 2
        assert backoff(10, 0.5, 300.0) == 256.0
        sb.segments.close()
    finally:
        down.close()
