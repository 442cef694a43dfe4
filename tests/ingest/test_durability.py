"""Acknowledged streaming messages survive SIGKILL of the ingesting process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tessera.platform import Platform

WRITER = textwrap.dedent(
    """
    import sys
    from tessera.platform import Platform
    home = sys.argv[1]
    platform = Platform.open(home)
    sb = platform.sandbox()
    schemas = sb.schemas.ensure_standard_schemas()
    try:
        ds = sb.datasets.find("Web")
    except Exception:
        ds = sb.datasets.create("Web", schemas["event"])
    print("READY", flush=True)
    i = 0
    while True:
        event = {
            "_id": f"ev-{i}",
            "timestamp": "2024-03-01T00:00:00Z",
            "eventType": "web.webpagedetails.pageViews",
            "identityMap": {"ECID": [{"id": f"{i % 97:038d}", "primary": True}]},
        }
        result = sb.ingest.stream([event], dataset_id=ds["id"])[0]
        if "xactionId" in result:
            print(f"ACK ev-{i}", flush=True)
        i += 1
    """
)


def test_sigkill_during_streaming_loses_no_acknowledged_message(tmp_path: Path) -> None:
    home = tmp_path / "home"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(home)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    acked: list[str] = []
    try:
        for line in proc.stdout:
            if line.startswith("ACK "):
                acked.append(line.split()[1])
                if len(acked) >= 300:
                    break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert len(acked) >= 300
    with Platform.open(home) as platform:
        sb = platform.sandbox()
        web = sb.datasets.find("Web")
        from tessera.profile.service import EVENT_IDS
        from tessera.store import key

        missing = [e for e in acked if sb.store.get(EVENT_IDS, key(web["id"], e)) is None]
        assert missing == []
        stored = sb.store.count(EVENT_IDS, key(web["id"], ""))
        assert stored >= len(acked)
