"""Timers with two ``tessera worker`` processes on one sandbox: each due item handled once.

Both workers run the sandbox's timer thread (every 0.1 s here); a Redis lease lets one of them run
each round. Profiles enter a streaming segment whose 24-hour window closes a few seconds later,
and a webhook destination of the segment is down for its first two calls. Every profile must exit
the segment once, and the receiver must get each change exactly once: the failed batch retried
and delivered once, the exits delivered once, although both workers kept trying every round.
The receiver answers slowly, so two processes delivering at once would both send the same batch.
A batch segmentation schedule that is due runs once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.conftest import ecid, web_event

from tessera.activation import SIGNATURE_HEADER
from tessera.activation.destinations import OUTBOX
from tessera.model import Identity, format_time, utcnow
from tessera.scaleout.broker import Broker
from tessera.scaleout.distributed import DistributedPlatform
from tessera.scaleout.servers import RedisServer, stop_process
from tessera.settings import Settings

ROOT = Path(__file__).parents[2]
SECRET = "timer-test-secret"
PEOPLE = 4
WINDOW = 'xEvent[eventType = "commerce.purchases" and timestamp occurs < 24 hours before now].count() > 0'


class Receiver:
    """A webhook endpoint that refuses its first ``failures`` calls and answers the rest slowly."""

    def __init__(self, failures: int, answer_s: float) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.bad_signatures = 0
        lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                signed = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                doc = orjson.loads(body)
                with lock:
                    refuse = len(outer.refused) < failures
                    if self.headers.get(SIGNATURE_HEADER) != signed:
                        outer.bad_signatures += 1
                    elif refuse:
                        outer.refused.append(doc["deliveryId"])
                if refuse:
                    self.send_response(503)
                else:
                    time.sleep(answer_s)
                    with lock:
                        outer.accepted.append(doc)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def changes(self) -> list[tuple[str, str]]:
        return [(c["profileId"], c["status"]) for d in list(self.accepted) for c in d["changes"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=2, answer_s=0.3)
    yield r
    r.close()


def _start_worker(
    settings_file: Path, logs: Path, index: int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    log = open(logs / f"worker-{index}.log", "ab")  # noqa: SIM115 - handed to the child
    cmd = [sys.executable, "-c", "from tessera.cli.main import app; app()", "worker",
           "--settings", str(settings_file), "--home", str(logs / f"w{index}"),
           "--index", str(index), "--workers", "2"]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=log, cwd=ROOT)


def _wait(what: str, done: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.timeout(120)
def test_two_workers_close_windows_and_retry_webhooks_once(
    redis_standalone: RedisServer, broker: Broker, receiver: Receiver, tmp_path: Path
) -> None:
    tag = tmp_path.name.replace("_", "-")
    settings_file = tmp_path / "tessera.toml"
    settings_file.write_text(
        f'point_store = "redis"\nredis_url = "{redis_standalone.url}"\nredis_namespace = "tm-{tag}"\n'
        f'kafka_bootstrap = "{broker.bootstrap}"\nstream_topic = "tm-{tag}"\nstream_partitions = 2\n'
        f'stream_group = "tm-{tag}"\nsandbox_lock_ttl_s = 3.0\ntimer_interval_s = 0.1\n'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONPYCACHEPREFIX": str(tmp_path.parent / "pyc")}
    logs = tmp_path / "logs"
    logs.mkdir()
    workers: list[subprocess.Popen[bytes]] = []
    settings = Settings.from_env({}, settings_file=settings_file, home=str(tmp_path / "control"))
    # The control process writes like an API process without a topic would; it runs no timers.
    with DistributedPlatform(settings, role="worker") as control:
        sb = control.sandbox()
        web = sb.datasets.create("Web", sb.schemas.ensure_standard_schemas()["event"])
        seg = sb.segments.create({"name": "Bought in the last day", "evaluationInfo": {"continuous": {"enabled": True}},
                                  "expression": {"type": "PQL", "format": "pql/text", "value": WINDOW}})  # fmt: skip
        us = sb.segments.create({"name": "US", "evaluationInfo": {"batch": {"enabled": True}},
                                 "expression": {"type": "PQL", "format": "pql/text", "value": 'homeAddress.countryCode = "US"'}})  # fmt: skip
        # Daily at 03:00, last due at the most recent 03:00: due at the first round, then tomorrow.
        schedule = sb.segments.schedules.create(
            {"type": "batch_segmentation", "schedule": "0 0 3 * * ?", "state": "active",
             "properties": {"segments": [us["id"]]}},
            now=utcnow() - timedelta(days=1),
        )  # fmt: skip
        dest = sb.segments.activation.destinations.create(
            {"type": "webhook", "name": "hook", "url": receiver.url, "secret": SECRET, "segments": [seg["id"]],
             "backoffSeconds": 0.2, "maxBackoffSeconds": 0.4, "timeoutSeconds": 5}
        )  # fmt: skip
        try:
            workers = [_start_worker(settings_file, logs, i, env) for i in range(2)]
            for i, proc in enumerate(workers):
                log = logs / f"worker-{i}.log"
                _wait(f"worker {i} not ready", lambda p=proc, f=log: b"ready" in f.read_bytes() or p.poll() is not None, 60)  # fmt: skip
                assert proc.poll() is None, log.read_text()
            # Purchases whose 24-hour window closes 2-3.5 s from now, one profile each.
            start = utcnow()
            events = [
                web_event(f"e{i}", ecid(i), format_time(start - timedelta(hours=24) + timedelta(seconds=2 + i / 2)),
                          "commerce.purchases")
                for i in range(PEOPLE)
            ]  # fmt: skip
            assert all("xactionId" in r for r in sb.ingest.stream(events, dataset_id=web["id"]))
            pids = []
            for i in range(PEOPLE):
                view = sb.profiles.get(Identity("ECID", ecid(i)))
                assert view is not None
                pids.append(view.profile_id)
                assert sb.segments.memberships_of(view.profile_id)[seg["id"]]["status"] == "realized"
            _wait(
                "the exits were not delivered",
                lambda: sum(s == "exited" for _, s in receiver.changes()) >= PEOPLE,
                30,
            )
            time.sleep(1.0)  # ten more rounds of both workers: any second delivery would land now
        finally:
            for proc in workers:
                stop_process(proc, grace_s=10)
        got = receiver.changes()
        assert sorted({p for p, _ in got}) == sorted(pids)
        for pid in pids:  # entered once, exited once, in that order
            assert [s for p, s in got if p == pid] == ["realized", "exited"], got
        delivery_ids = [d["deliveryId"] for d in receiver.accepted]
        assert len(delivery_ids) == len(set(delivery_ids)), delivery_ids  # no batch sent twice
        assert receiver.refused and set(receiver.refused) <= set(delivery_ids)  # retried, then delivered
        assert receiver.bad_signatures == 0
        for pid in pids:
            assert sb.segments.memberships_of(pid)[seg["id"]]["status"] == "exited"
        assert sb.store.count(OUTBOX) == 0
        state = sb.segments.activation.destinations.state(dest["id"])
        assert state["delivered"] == 2 * PEOPLE and state["attempts"] == 0
        runs = [j for j in sb.segments.jobs() if j["properties"].get("scheduleId") == schedule["id"]]
        assert [j["status"] for j in runs] == ["SUCCEEDED"]  # the due schedule ran once
        assert sb.segments.schedules.get(schedule["id"])["nextRunTime"] > format_time(utcnow())
        stats = [(logs / f"worker-{i}.log").read_text() for i in range(2)]
        rounds = [int(s.split("timer_rounds=")[1].split()[0]) for s in stats]
        assert all(r > 0 for r in rounds), stats  # both workers ran timer rounds


async def _timer_threads(app: Any) -> list[bool]:
    """Whether each sandbox an API process opened runs its timer thread, between its start and stop."""
    async with app.router.lifespan_context(app):  # what uvicorn runs at start and stop
        return [sb.segments._thread is not None for sb in app.state.platform.opened()]


@pytest.mark.timeout(60)
def test_api_processes_run_timers_only_when_no_workers_exist(
    redis_standalone: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tessera.scaleout.distributed import api_app

    # With a topic the workers run the timers; without one the API processes apply writes and
    # must run them, or windows would never close.
    for kafka, timers in (("127.0.0.1:9", False), ("", True)):
        settings_file = tmp_path / f"api-{timers}.toml"
        settings_file.write_text(
            f'point_store = "redis"\nredis_url = "{redis_standalone.url}"\n'
            f'redis_namespace = "ta-{tmp_path.name}"\nkafka_bootstrap = "{kafka}"\n'
        )
        monkeypatch.setenv("TESSERA_SETTINGS", str(settings_file))
        monkeypatch.setenv("TESSERA_HOME", str(tmp_path / f"home-{timers}"))
        assert asyncio.run(_timer_threads(api_app())) == ([True] if timers else [])
