"""Starting a real ``uvicorn`` server on a free loopback port, in its own process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tessera.api.keys import create_key
from tessera.platform import Platform
from tessera.settings import Settings

SRC = str(Path(__file__).resolve().parents[2] / "src")
SERVER = (
    "import sys\n"
    "from tessera.platform import Platform\n"
    "from tessera.api.server import run_server\n"
    "run_server(Platform.open(sys.argv[1]), host='127.0.0.1', port=int(sys.argv[2]), log_level='warning')\n"
)


@dataclass
class Server:
    url: str
    home: Path
    schemas: dict[str, str]
    keys: dict[str, str]
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(home: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``run_server`` on ``home`` in a new process writing to ``log``; returns it and its base URL
    once ``/tessera/health`` answers."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(home), str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/tessera/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server did not start: {log.read_text()}")
        time.sleep(0.05)


def start(home: Path, *, keyed: bool) -> Iterator[Server]:
    keys: dict[str, str] = {}
    with Platform(Settings(home=str(home))) as platform:
        schemas = platform.sandbox().schemas.ensure_standard_schemas()
        if keyed:
            platform.sandboxes.create("team-a")
            platform.sandboxes.create("team-b")
            team_b = platform.sandbox("team-b").schemas.ensure_standard_schemas()
            schemas["team-b profile"] = team_b["profile"]
            keys["a"], _ = create_key(platform.system, ["team-a"], "a")
            keys["admin"], _ = create_key(platform.system, ["*"], "admin")
    log = home / "server.log"
    proc, url = spawn(home, log)
    try:
        yield Server(url, home, schemas, keys, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
