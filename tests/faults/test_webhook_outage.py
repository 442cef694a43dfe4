"""A webhook destination that is down (connection refused, then 503s) while memberships change and
while the server is SIGKILLed and restarted: once it answers again every change arrives, none lost,
in order per profile."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from faults_harness import COUNTS, GOLD_SEGMENT, JSON, ServerProcess, free_port, prepare, record

from tessera.platform import Platform
from tessera.settings import Settings

SECRET = "fault-suite-secret"
PEOPLE = 12


class Receiver:
    """A webhook receiver on a fixed port: answers 503 while ``failing``, 204 after."""

    def __init__(self, port: int) -> None:
        self.received: list[dict[str, Any]] = []
        self.refused = 0
        self.failing = True
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.failing:
                    outer.refused += 1
                    self.send_response(503)
                else:
                    outer.received.extend(orjson.loads(body)["changes"])
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _crm_of(change: dict[str, Any]) -> str:
    return str(next(i["id"] for i in change["identities"] if i["namespace"] == "CRMID"))


def _send(server: ServerProcess, inlet: str, gold: bool, n0: int) -> None:
    with server.client() as http:
        for p in range(PEOPLE):
            resp = http.post(
                f"/collection/{inlet}", headers=JSON, content=orjson.dumps(record(n0 + p, p, gold=gold))
            )
            assert resp.status_code == 200, resp.text


def test_webhook_down_then_back_loses_nothing_across_a_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    layout = prepare(home)
    port = free_port()
    with Platform(Settings(home=str(home))) as platform:
        platform.sandbox().segments.activation.destinations.create(
            {
                "type": "webhook",
                "name": "hook",
                "url": f"http://127.0.0.1:{port}/hook",
                "secret": SECRET,
                "segments": [GOLD_SEGMENT],
                "batchSize": 5,
                "backoffSeconds": 0.05,
                "maxBackoffSeconds": 0.2,
                "timeoutSeconds": 2,
            }
        )
    server = ServerProcess(home).start()
    # phase 1: nothing listens on the port (connection refused) while everyone qualifies and exits
    _send(server, layout.crm_inlet, True, 0)
    _send(server, layout.crm_inlet, False, 100)
    time.sleep(1.5)  # the deliverer runs once a second and finds the receiver unreachable
    server.kill()
    COUNTS["faults injected"] += 1
    receiver = Receiver(port)  # phase 2: it answers, but with 503s
    try:
        server.start()
        _send(server, layout.crm_inlet, True, 200)
        deadline = time.monotonic() + 20
        while receiver.refused < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.refused >= 2, "the server never retried"
        COUNTS["faults injected"] += 1
        receiver.failing = False  # phase 3: back up
        deadline = time.monotonic() + 30
        while len(receiver.received) < 3 * PEOPLE and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # anything beyond the expected count would be a duplicate
        server.stop()
    finally:
        receiver.close()
    by_person: dict[str, list[str]] = {}
    for change in receiver.received:
        assert change["segmentId"] == GOLD_SEGMENT
        by_person.setdefault(_crm_of(change), []).append(change["status"])
    assert by_person == {f"crm-{p}": ["realized", "exited", "realized"] for p in range(PEOPLE)}
