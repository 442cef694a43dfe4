"""SIGKILL of a real server at seeded random points during streaming and batch ingestion, a segment
job and an export job; after a restart on the same data directory nothing acknowledged is lost or
doubled, the identity graph equals a rebuild from its stored links, memberships equal a fresh
evaluation, and interrupted batches resume while interrupted jobs read FAILED with the reason."""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from faults_harness import (
    COUNTS,
    GOLD_SEGMENT,
    JSON,
    Layout,
    ServerProcess,
    event,
    graph_matches_links,
    memberships_match_evaluation,
    prepare,
    record,
    stored_event_ids,
)

from tessera.platform import Platform
from tessera.profile.service import FRAGMENTS
from tessera.settings import Settings

SEEDS = [11]


class Killer:
    """SIGKILLs the server after a seeded random delay, from another thread."""

    def __init__(self, server: ServerProcess, delay: float) -> None:
        self.fired = threading.Event()
        self._timer = threading.Timer(delay, self._fire, args=(server,))
        self._timer.start()

    def _fire(self, server: ServerProcess) -> None:
        server.kill()
        self.fired.set()
        COUNTS["faults injected"] += 1

    def wait(self) -> None:
        self._timer.join()


def _stored_records(sb: Any, dataset_id: str) -> dict[str, list[str]]:
    """CRM id → lastName of every stored fragment of ``dataset_id`` (a list, to see doubles)."""
    out: dict[str, list[str]] = {}
    for _, raw in sb.store.scan(FRAGMENTS):
        body = orjson.loads(raw)
        if body["dataset"] != dataset_id:
            continue
        rec = body["record"]
        crm = rec["identityMap"]["CRMID"][0]["id"]
        out.setdefault(crm, []).append(rec["person"]["name"]["lastName"])
    return out


def _stream_until_killed(
    server: ServerProcess, layout: Layout, rng: random.Random, start: int, people: int
) -> tuple[set[str], dict[int, int], int]:
    """Send events and records (single and batch endpoints) until a killer, armed with a random
    delay once the first message of the round is acknowledged, SIGKILLs the server.

    Returns acknowledged event ids, the newest acknowledged record number per person, and the next
    message number."""
    acked_events: set[str] = set()
    acked_records: dict[int, int] = {}
    n = start
    killer: Killer | None = None
    with server.client(timeout=10) as http:
        while True:
            if killer is None and (acked_events or acked_records):
                killer = Killer(server, rng.uniform(0.2, 1.0))
            kind = rng.random()
            try:
                if kind < 0.4:
                    resp = http.post(
                        f"/collection/{layout.web_inlet}",
                        headers=JSON,
                        content=orjson.dumps(event(n, n % people)),
                    )
                    if resp.status_code == 200:
                        acked_events.add(f"ev-{n}")
                    n += 1
                elif kind < 0.7:
                    msgs = [event(n + i, (n + i) % people) for i in range(20)]
                    resp = http.post(
                        f"/collection/batch/{layout.web_inlet}",
                        headers=JSON,
                        content=orjson.dumps({"messages": msgs}),
                    )
                    if resp.status_code == 207:
                        for i, r in enumerate(resp.json()["responses"]):
                            if "xactionId" in r:
                                acked_events.add(f"ev-{n + i}")
                    n += 20
                else:
                    msgs = [record(n + i, (n + i) % people) for i in range(10)]
                    resp = http.post(
                        f"/collection/batch/{layout.crm_inlet}",
                        headers=JSON,
                        content=orjson.dumps({"messages": msgs}),
                    )
                    if resp.status_code == 207:
                        for i, r in enumerate(resp.json()["responses"]):
                            assert "xactionId" in r, r
                            acked_records[(n + i) % people] = n + i
                    n += 10
            except httpx.TransportError:
                assert killer is not None, "the server died on its own"
                killer.wait()
                return acked_events, acked_records, n


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_during_streaming_keeps_every_acknowledged_message_once(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    home = tmp_path / "home"
    layout = prepare(home)
    server = ServerProcess(home)
    acked_events: set[str] = set()
    acked_records: dict[int, int] = {}
    n, people = 0, 40
    for _ in range(3):
        server.start()
        events, records, n = _stream_until_killed(server, layout, rng, n, people)
        acked_events |= events
        acked_records.update(records)
    assert len(acked_events) > 50 and acked_records, "the server died before acknowledging much"
    with Platform(Settings(home=str(home))) as platform:
        sb = platform.sandbox()
        ids = stored_event_ids(sb, layout.web)
        assert len(ids) == len(set(ids)), "an event is stored twice"
        assert acked_events <= set(ids), f"lost: {sorted(acked_events - set(ids))[:5]}"
        stored = _stored_records(sb, layout.crm)
        for person, newest in acked_records.items():
            values = stored[f"crm-{person}"]
            assert len(values) == 1
            # the newest acknowledged version, or a later one that landed just before the kill
            assert int(values[0][1:]) >= newest
        graph_matches_links(sb)
        memberships_match_evaluation(sb)


def _batch_file(first: int, count: int, people: int) -> bytes:
    return orjson.dumps([event(first + i, (first + i) % people) for i in range(count)])


@pytest.mark.parametrize("seed", [11, 23])
def test_sigkill_during_batch_ingestion_resumes_the_batch(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    home = tmp_path / "home"
    layout = prepare(home)
    server = ServerProcess(home).start()
    rows = 3000
    with server.client() as http:
        batch = http.post(
            "/data/foundation/import/batches",
            headers=JSON,
            content=json.dumps({"datasetId": layout.web, "inputFormat": {"format": "json"}}),
        ).json()["id"]
        files = f"/data/foundation/import/batches/{batch}/datasets/{layout.web}/files"
        for part in range(2):
            put = http.put(f"{files}/part{part}.json", content=_batch_file(part * rows // 2, rows // 2, 50))
            assert put.status_code == 200
        killer = Killer(server, rng.uniform(0.05, 1.5))
        acked = False
        with contextlib.suppress(httpx.TransportError):
            acked = http.post(f"/data/foundation/import/batches/{batch}?action=COMPLETE").status_code == 200
        killer.wait()
    server.start()
    with server.client() as http:
        doc = http.get(f"/data/foundation/catalog/batches/{batch}").json()[batch]
        # acknowledged, or interrupted while processing and resumed at startup
        assert doc["status"] == "success", doc
        assert acked or doc.get("resumed") == 1 or doc["metrics"]["outputRecordCount"] == rows
    server.stop()
    with Platform(Settings(home=str(home))) as platform:
        sb = platform.sandbox()
        ids = stored_event_ids(sb, layout.web)
        assert sorted(ids) == sorted(f"ev-{i}" for i in range(rows))
        graph_matches_links(sb)


def _seed_profiles(home: Path, layout: Layout, people: int) -> None:
    with Platform(Settings(home=str(home))) as platform:
        sb = platform.sandbox()
        sb.ingest.ingest_records(layout.crm, [record(i, i) for i in range(people)])


def _kill_while_running(
    server: ServerProcess, post: str, body: Any, listing: str, rng: random.Random
) -> bool:
    """POST ``body`` in a thread; once ``listing`` shows a job PROCESSING, SIGKILL the server
    after a random delay. Returns whether the kill came before the answer."""
    answered = threading.Event()

    def send() -> None:
        with server.client() as http, contextlib.suppress(httpx.TransportError):
            http.post(post, headers=JSON, content=json.dumps(body))
            answered.set()

    sender = threading.Thread(target=send)
    sender.start()
    with server.client() as http:
        while sender.is_alive():
            try:
                jobs = http.get(listing).json()
            except httpx.TransportError:
                break
            items = jobs.get("children", jobs.get("records", []))
            if any(j["status"] == "PROCESSING" for j in items):
                time.sleep(rng.uniform(0.0, 0.3))
                break
            time.sleep(0.01)
    server.kill()
    COUNTS["faults injected"] += 1
    sender.join()
    return not answered.is_set()


def test_sigkill_during_a_segment_job_marks_it_failed_with_the_reason(tmp_path: Path) -> None:
    rng = random.Random(7)
    home = tmp_path / "home"
    layout = prepare(home)
    _seed_profiles(home, layout, 1200)
    server = ServerProcess(home)
    interrupted = 0
    for _ in range(2):
        server.start()
        interrupted += _kill_while_running(
            server,
            "/data/core/ups/segment/jobs",
            [{"segmentId": GOLD_SEGMENT}],
            "/data/core/ups/segment/jobs",
            rng,
        )
    server.start()
    with server.client() as http:
        jobs = http.get("/data/core/ups/segment/jobs").json()["children"]
        assert len(jobs) == 2
        for job in jobs:
            assert job["status"] in {"SUCCEEDED", "FAILED"}, job
            if job["status"] == "FAILED":
                assert job["errors"][0]["code"] == "INTERRUPTED"
        assert sum(j["status"] == "FAILED" for j in jobs) == interrupted
        again = http.post(
            "/data/core/ups/segment/jobs", headers=JSON, content=json.dumps([{"segmentId": GOLD_SEGMENT}])
        )
        assert again.json()["status"] == "SUCCEEDED"
    server.stop()
    with Platform(Settings(home=str(home))) as platform:
        sb = platform.sandbox()
        assert memberships_match_evaluation(sb) == 400
        graph_matches_links(sb)


def test_sigkill_during_an_export_leaves_no_half_file(tmp_path: Path) -> None:
    rng = random.Random(5)
    home = tmp_path / "home"
    layout = prepare(home)
    _seed_profiles(home, layout, 1200)
    server = ServerProcess(home)
    body = {
        "fields": "identities,person.name",
        "filter": {"segments": [{"segmentId": GOLD_SEGMENT, "status": ["realized", "existing"]}]},
        "destination": {"format": "jsonl"},
        "evaluationInfo": {"segmentation": True},
    }
    interrupted = 0
    for _ in range(2):
        server.start()
        interrupted += _kill_while_running(
            server, "/data/core/ups/export/jobs", body, "/data/core/ups/export/jobs", rng
        )
    server.start()
    with server.client() as http:
        jobs = http.get("/data/core/ups/export/jobs").json()["records"]
        assert len(jobs) == 2
        for job in jobs:
            assert job["status"] in {"SUCCEEDED", "FAILED"}, job
            if job["status"] == "FAILED":
                assert job["errors"][0]["code"] == "INTERRUPTED"
            else:
                lines = Path(job["destination"]["path"]).read_bytes().splitlines()
                assert len(lines) == job["metrics"]["totalExportedProfileCounter"] == 400
        assert sum(j["status"] == "FAILED" for j in jobs) == interrupted
        fresh = http.post("/data/core/ups/export/jobs", headers=JSON, content=json.dumps(body)).json()
        assert fresh["status"] == "SUCCEEDED"
        assert len(Path(fresh["destination"]["path"]).read_bytes().splitlines()) == 400
    server.stop()
    assert not list(home.rglob("*.tmp"))
    with Platform(Settings(home=str(home))) as platform:
        sb = platform.sandbox()
        memberships_match_evaluation(sb)
