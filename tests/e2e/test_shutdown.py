"""A server stopped with SIGTERM (what service managers send) shuts down cleanly and keeps its log."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import orjson
from e2e_server import spawn

from tessera.platform import Platform
from tessera.settings import Settings


def test_sigterm_writes_every_held_log_line_and_closes_the_platform(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Platform(Settings(home=str(home))):
        pass
    log = tmp_path / "server.log"
    proc, base = spawn(home, log)
    url = base + "/tessera/health"
    try:
        assert httpx.get(url, headers={"x-request-id": "last-before-stop"}).status_code == 200
        proc.send_signal(signal.SIGTERM)  # at once: the access line is still held by the handler
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.startswith(b"{")]
    assert any(d.get("request_id") == "last-before-stop" and d["logger"] == "tessera.access" for d in lines)
    # the platform was closed on the way out: its store opens again without recovery work
    with Platform(Settings(home=str(home))) as again:
        assert again.sandbox().name == "prod"
