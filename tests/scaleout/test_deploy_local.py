"""scripts/deploy-local.sh: Redis cluster + broker + 2 API processes + 2 platform workers, end to end."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tessera.scaleout.servers import _is_free

pytest.importorskip(
    "confluent_kafka", reason='confluent-kafka missing: pip install "tessera-cdp[distributed]"'
)
ROOT = Path(__file__).parents[2]


def _base_port() -> int:
    for _ in range(100):
        base = random.randrange(20000, 30000, 100)
        ports = [base + i for i in (1, 2, 3, 10, 21)] + [base + 10000 + i for i in (1, 2, 3)]
        if all(_is_free(p) for p in ports):
            return base
    pytest.skip("no free block of loopback ports")


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_local_deployment_streams_demo_people_through_the_api_into_profiles(tmp_path: Path) -> None:
    env = {**os.environ, "RUN": str(tmp_path / "run"), "PY": sys.executable, "BASE_PORT": str(_base_port())}
    script = str(ROOT / "scripts" / "deploy-local.sh")
    try:
        # Output to a file: the started servers inherit it, and a pipe would never reach EOF.
        with open(tmp_path / "start.log", "wb") as log:
            started = subprocess.run([script, "start"], env=env, timeout=120, stdout=log, stderr=log)
        assert started.returncode == 0, (tmp_path / "start.log").read_text()
        smoke = subprocess.run(
            [script, "smoke", "10"],
            env=env,
            timeout=120,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
        assert "workers applied" in smoke.stdout and ": HTTP 200" in smoke.stdout
    finally:
        subprocess.run(
            [script, "stop"], env=env, timeout=60, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
