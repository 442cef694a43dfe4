"""A full disk, as the store sees it: the server runs under a per-file size limit (RLIMIT_FSIZE,
SIGXFSZ ignored, so a write past it fails with EFBIG). Requests that cannot be stored get a clean
507 in the API's error shape, nothing is corrupted, and after a restart without the limit
everything acknowledged is there and new writes work."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from faults_harness import (
    COUNTS,
    JSON,
    ServerProcess,
    event,
    graph_matches_links,
    memberships_match_evaluation,
    prepare,
    record,
    stored_event_ids,
)

from tessera.platform import Platform
from tessera.settings import Settings

PROBLEM_KEYS = {"type", "status", "title", "detail", "error_code"}
HEADROOM = 128 * 1024
"""How much any file may grow past its size at the restart before writes fail."""


def _padded(n: int) -> dict[str, object]:
    ev = event(n, n % 30)
    ev["web"] = {"webPageDetails": {"name": "x" * 9000}}
    return ev


def test_disk_full_gives_clean_507_and_recovers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    layout = prepare(home)
    server = ServerProcess(home).start()
    acked: set[str] = set()
    with server.client() as http:
        for n in range(20):
            resp = http.post(
                f"/collection/{layout.web_inlet}", headers=JSON, content=orjson.dumps(event(n, n))
            )
            assert resp.status_code == 200
            acked.add(f"ev-{n}")
    server.stop()

    biggest = max(p.stat().st_size for p in home.rglob("*") if p.is_file())
    server.start(fsize=biggest + HEADROOM)
    refused = 0
    with server.client() as http:
        n = 1000
        while refused < 5:
            resp = http.post(
                f"/collection/{layout.web_inlet}", headers=JSON, content=orjson.dumps(_padded(n))
            )
            if resp.status_code == 200:
                acked.add(f"ev-{n}")
            else:
                assert resp.status_code == 507, resp.text
                body = resp.json()
                assert set(body) >= PROBLEM_KEYS and body["status"] == 507
                assert "Traceback" not in resp.text
                refused += 1
                COUNTS["disk-full writes refused"] += 1
            n += 1
            assert n < 3000, "the size limit never bit"
        # the batch endpoint answers 207 with a 507 slot per message it could not store
        batch = http.post(
            f"/collection/batch/{layout.web_inlet}",
            headers=JSON,
            content=orjson.dumps({"messages": [_padded(5000 + i) for i in range(5)]}),
        )
        if batch.status_code == 207:
            for i, slot in enumerate(batch.json()["responses"]):
                if "xactionId" in slot:
                    acked.add(f"ev-{5000 + i}")
                else:
                    assert slot["statusCode"] == 507, slot
        else:
            assert batch.status_code == 507 and set(batch.json()) >= PROBLEM_KEYS
        # a staged upload bigger than any file may be is refused the same way
        created = http.post(
            "/data/foundation/import/batches",
            headers=JSON,
            content=json.dumps({"datasetId": layout.crm, "inputFormat": {"format": "json"}}),
        )
        if created.status_code == 201:
            batch_id = created.json()["id"]
            big = orjson.dumps([record(i, i) for i in range(4000)])
            assert len(big) > biggest + HEADROOM
            put = http.put(
                f"/data/foundation/import/batches/{batch_id}/datasets/{layout.crm}/files/big.json",
                content=big,
            )
            assert put.status_code == 507 and set(put.json()) >= PROBLEM_KEYS, put.text
        else:
            assert created.status_code == 507 and set(created.json()) >= PROBLEM_KEYS, created.text
        # reads still work and the server is up
        health = http.get("/tessera/health")
        assert health.status_code == 200, health.text
        assert http.get("/data/foundation/catalog/dataSets").status_code == 200
    server.kill()
    COUNTS["faults injected"] += 1

    server.start()
    with server.client() as http:
        resp = http.post(f"/collection/{layout.web_inlet}", headers=JSON, content=orjson.dumps(_padded(9999)))
        assert resp.status_code == 200
        acked.add("ev-9999")
    server.stop()
    with Platform(Settings(home=str(home))) as platform:
        sb = platform.sandbox()
        ok = sb.store._writer.execute("PRAGMA integrity_check").fetchone()  # type: ignore[attr-defined]
        assert ok == ("ok",)
        ids = stored_event_ids(sb, layout.web)
        assert len(ids) == len(set(ids))
        assert acked <= set(ids)
        graph_matches_links(sb)
        memberships_match_evaluation(sb)
