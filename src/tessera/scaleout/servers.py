"""Local server processes on loopback: Redis (standalone or a cluster) for tests, benchmarks and demos.

Nothing here is needed in production, where Redis is run by its own tooling; it exists so tests and
``scripts/deploy-local.sh`` can start real servers on random free ports and stop them by PID.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tessera.scaleout.errors import ServiceError


def free_port(*, also_plus: int = 0) -> int:
    """A TCP port free on 127.0.0.1 (and ``port + also_plus`` too when ``also_plus`` is set)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not also_plus:
            return port
        if port + also_plus < 65536 and _is_free(port + also_plus):
            return port
    raise ServiceError("no free loopback port found")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.01)
    raise ServiceError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def stop_process(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM a child service and wait for it; SIGKILL when it has not exited after ``grace_s``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def redis_server_binary() -> str | None:
    """Path of ``redis-server`` or ``None`` (Debian: ``apt-get install redis-server``)."""
    return shutil.which("redis-server")


@dataclass
class RedisServer:
    """One ``redis-server`` process with AOF on (``appendfsync`` as given), data in ``workdir``."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """Terminate the process and wait for it."""
        stop_process(self.process)


def start_redis(
    workdir: Path | None = None, *, port: int | None = None, fsync: str = "everysec", cluster: bool = False
) -> RedisServer:
    """Start ``redis-server`` on loopback with ``--appendonly yes`` and no RDB snapshots.

    Raises:
        ServiceError: the binary is missing or the server does not come up.
    """
    binary = redis_server_binary()
    if binary is None:
        raise ServiceError("redis-server is not installed (Debian: apt-get install -y redis-server)")
    port = port or free_port(also_plus=10000 if cluster else 0)
    workdir = Path(workdir or tempfile.mkdtemp(prefix="tessera-redis-")) / f"redis-{port}"
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(workdir),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        fsync,
        "--daemonize",
        "no",
        "--logfile",
        "redis.log",
    ]
    if cluster:
        args += [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "5000",
        ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisServer(port, workdir, process)
    try:
        wait_for_port(port)
    except ServiceError:
        server.stop()
        raise
    return server


@dataclass
class RedisClusterServers:
    """Several cluster-enabled ``redis-server`` processes joined into one cluster (no replicas)."""

    nodes: list[RedisServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_redis_cluster(
    workdir: Path | None = None, *, nodes: int = 3, fsync: str = "everysec"
) -> RedisClusterServers:
    """Start ``nodes`` cluster-enabled servers and join them with ``redis-cli --cluster create``.

    Returns once every slot is served (``cluster_state:ok`` on every node).

    Raises:
        ServiceError: a binary is missing or the cluster does not form.
    """
    cli = shutil.which("redis-cli")
    if cli is None:
        raise ServiceError("redis-cli is not installed (Debian: apt-get install -y redis-tools)")
    workdir = Path(workdir or tempfile.mkdtemp(prefix="tessera-rcluster-"))
    servers = RedisClusterServers()
    try:
        for _ in range(nodes):
            servers.nodes.append(start_redis(workdir, fsync=fsync, cluster=True))
        addresses = [f"127.0.0.1:{n.port}" for n in servers.nodes]
        done = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise ServiceError(f"redis-cli --cluster create failed: {done.stdout.decode()[-500:]}")
        deadline = time.monotonic() + 30
        for node in servers.nodes:
            while True:
                info = subprocess.run(
                    [cli, "-p", str(node.port), "cluster", "info"], capture_output=True, check=False
                )
                if b"cluster_state:ok" in info.stdout:
                    break
                if time.monotonic() > deadline:
                    raise ServiceError("Redis cluster did not reach cluster_state:ok in 30 s")
                time.sleep(0.05)
    except BaseException:
        servers.stop()
        raise
    return servers
