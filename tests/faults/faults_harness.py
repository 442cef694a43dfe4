"""A real Tessera server in a subprocess on 127.0.0.1 that tests can SIGKILL, restart on the same
data directory, or run under a file-size limit (a full disk as the store sees it).

Also: the data a fault test needs (schemas, datasets, inlets, a streaming segment), the records and
events it sends, and the consistency checks run against the stored data after a restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tessera.platform import Platform, Sandbox
from tessera.settings import Settings

SRC = str(Path(__file__).resolve().parents[2] / "src")
ZYGOTE = """
import json, os, resource, signal, sys, tempfile, threading
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the servers we fork
from tessera.api.app import create_app
from tessera.api.server import run_server
from tessera.platform import Platform
from tessera.settings import Settings
import duckdb, pyarrow.parquet  # noqa: F401 - imported lazily by routes; warm them here
with tempfile.TemporaryDirectory() as warm:
    with Platform(Settings(home=warm)) as platform:
        platform.sandbox().schemas.ensure_standard_schemas()
        create_app(platform)
for extra in threading.enumerate():
    if extra is not threading.main_thread():
        extra.join(timeout=10)
names = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
assert not names, f"fork needs a process without threads: {names}"
print("READY", flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    pid = os.fork()
    if pid:
        print(pid, flush=True)
        continue
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        log = os.open(cmd["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.environ.update(cmd["env"])
        if cmd.get("fsize"):
            # a write past the limit fails with EFBIG (what ENOSPC looks like to the store)
            # instead of killing the process with SIGXFSZ
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (cmd["fsize"], cmd["fsize"]))
        run_server(Platform(Settings.from_env(home=cmd["home"])), host="127.0.0.1", port=cmd["port"],
                   log_level="warning")
    finally:
        os._exit(0)
"""


class Zygote:
    """One process that imports Tessera once and forks a fresh server per start: a cold start costs
    seconds of imports on this machine, a fork milliseconds, and the fault suite restarts often."""

    _instance: Zygote | None = None

    def __init__(self) -> None:
        fd, name = tempfile.mkstemp(prefix="tessera-zygote-", suffix=".log")
        self.errors = Path(name)
        with os.fdopen(fd, "wb") as errors:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", ZYGOTE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                env={**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")},
                text=True,
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "READY":
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"server zygote did not start: {line!r} {self.errors.read_text()[-3000:]}")
        self._lock = threading.Lock()

    @classmethod
    def get(cls) -> Zygote:
        if cls._instance is None or cls._instance.proc.poll() is not None:
            cls._instance = cls()
        return cls._instance

    @classmethod
    def shutdown(cls) -> None:
        if cls._instance is not None:
            proc = cls._instance.proc
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            cls._instance.errors.unlink(missing_ok=True)
            cls._instance = None

    def fork(self, home: Path, port: int, log: Path, env: dict[str, str], fsize: int | None) -> int:
        command = {"home": str(home), "port": port, "log": str(log), "env": env, "fsize": fsize}
        with self._lock:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(command) + "\n")
            self.proc.stdin.flush()
            return int(self.proc.stdout.readline())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


JSON = {"Content-Type": "application/json"}
COUNTS: Counter[str] = Counter()
"""What the suite tried (faults injected, hostile inputs sent, ...), printed at the end of the run."""
PROFILE_CLASS = "_xdm.context.profile"
GOLD_SEGMENT = "gold-members"
GOLD_PQL = 'person.name.firstName = "Gold"'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Layout:
    """Ids of what :func:`prepare` created."""

    crm: str
    web: str
    crm_inlet: str
    web_inlet: str
    schemas: dict[str, str]


@dataclass
class ServerProcess:
    """One server process over ``home``; :meth:`start` again after :meth:`kill` to restart."""

    home: Path
    settings: dict[str, str] = field(default_factory=dict)
    pid: int | None = None
    url: str = ""
    starts: int = 0

    @property
    def log(self) -> Path:
        return self.home.parent / f"{self.home.name}-server.log"

    def start(self, *, fsize: int | None = None, timeout: float = 60.0) -> ServerProcess:
        """Start a server (under a per-file size limit of ``fsize`` bytes when given); returns once
        it answers ``/tessera/ready``, i.e. after interrupted work was recovered."""
        port = free_port()
        env = {f"TESSERA__{k.upper()}": v for k, v in self.settings.items()}
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts} ---\n".encode())
        self.pid = Zygote.get().fork(self.home, port, self.log, env, fsize)
        self.starts += 1
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + "/tessera/ready", timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if not self.alive() or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"server did not start: {self.log.read_text()[-4000:]}")
            time.sleep(0.02)

    def alive(self) -> bool:
        return self.pid is not None and _alive(self.pid)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no goodbye."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """A clean stop (SIGTERM), SIGKILL when it does not finish in time."""
        self._signal(signal.SIGTERM, grace=15.0)

    def _signal(self, sig: int, grace: float = 30.0) -> None:
        pid = self.pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while _alive(pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 30
            time.sleep(0.01)
        self.pid = None

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout, headers={"x-sandbox-name": "prod"})


_TEMPLATES: dict[bool, tuple[Path, Layout]] = {}


def prepare(home: Path, *, segment: bool = True) -> Layout:
    """Schemas, a CRM (records) and a Web (events) dataset, an inlet for each, and optionally a
    streaming segment, created through the library before any server runs.

    Built once per session and copied (building costs seconds on a busy machine, copying
    milliseconds); every copy is an independent installation with the same ids."""
    if segment not in _TEMPLATES:
        template = Path(tempfile.mkdtemp(prefix="tessera-faults-template-")) / "home"
        _TEMPLATES[segment] = (template, _build(template, segment=segment))
    template, layout = _TEMPLATES[segment]
    shutil.copytree(template, home)
    return layout


def drop_templates() -> None:
    for template, _ in _TEMPLATES.values():
        shutil.rmtree(template.parent, ignore_errors=True)
    _TEMPLATES.clear()


def _build(home: Path, *, segment: bool) -> Layout:
    with Platform(Settings(home=str(home))) as platform:
        sb = platform.sandbox()
        schemas = sb.schemas.ensure_standard_schemas()
        crm = sb.datasets.create("CRM", schemas["profile"])["id"]
        web = sb.datasets.create("Web", schemas["event"])["id"]
        crm_inlet = sb.ingest.create_inlet("crm", dataset_id=crm)["id"]
        web_inlet = sb.ingest.create_inlet("web", dataset_id=web)["id"]
        if segment:
            sb.segments.create(
                {
                    "name": "Gold members",
                    "expression": {"type": "PQL", "format": "pql/text", "value": GOLD_PQL},
                    "evaluationInfo": {"continuous": {"enabled": True}, "batch": {"enabled": True}},
                },
                seg_id=GOLD_SEGMENT,
            )
    return Layout(crm, web, crm_inlet, web_inlet, schemas)


def ecid(n: int) -> str:
    return f"{n:038d}"


def record(n: int, person: int, *, gold: bool | None = None) -> dict[str, Any]:
    """A profile record of person ``person`` (CRM id primary, email and ECID linked)."""
    first = ("Gold" if gold else "Plain") if gold is not None else ("Gold" if n % 3 == 0 else "Plain")
    return {
        "identityMap": {
            "CRMID": [{"id": f"crm-{person}", "primary": True}],
            "Email": [{"id": f"p{person}@example.com"}],
            "ECID": [{"id": ecid(person)}],
        },
        "person": {"name": {"firstName": first, "lastName": f"n{n}"}},
    }


def event(n: int, person: int) -> dict[str, Any]:
    """An ExperienceEvent with ``_id`` ``ev-<n>`` on the person's ECID."""
    return {
        "_id": f"ev-{n}",
        "timestamp": "2026-03-01T12:00:00Z",
        "eventType": "web.webpagedetails.pageViews",
        "identityMap": {"ECID": [{"id": ecid(person), "primary": True}]},
    }


# -- consistency checks on the stored data (run in the test process, server stopped) ---------------


def stored_event_ids(sb: Sandbox, dataset_id: str) -> list[str]:
    """Every event ``_id`` stored in ``dataset_id``, one entry per stored event row."""
    from tessera.profile.service import EVENTS

    out = []
    for _, raw in sb.store.scan(EVENTS):
        import orjson

        body = orjson.loads(raw)
        if body["dataset"] == dataset_id:
            out.append(str(body["record"]["_id"]))
    return out


def graph_matches_links(sb: Sandbox) -> None:
    """The stored components equal the connected components of the stored links (a rebuild)."""
    import orjson

    from tessera.identity.service import COMPONENTS

    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(x: tuple[str, str]) -> tuple[str, str]:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    stored: set[frozenset[tuple[str, str]]] = set()
    for _, raw in sb.store.scan(COMPONENTS):
        doc = orjson.loads(raw)
        members = frozenset((str(m[0]), str(m[1])) for m in _members(doc))
        stored.add(members)
        for m in members:
            find(m)
        for a_ns, a_id, b_ns, b_id in _links(doc):
            ra, rb = find((a_ns, a_id)), find((b_ns, b_id))
            if ra != rb:
                parent[ra] = rb
    rebuilt: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for node in list(parent):
        rebuilt.setdefault(find(node), set()).add(node)
    assert stored == {frozenset(c) for c in rebuilt.values()}


def _members(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(m[0]), str(m[1])) for m in doc["members"]]


def _links(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(str(lr[0]), str(lr[1]), str(lr[2]), str(lr[3])) for lr in doc.get("links", [])]


def memberships_match_evaluation(sb: Sandbox, segment_id: str = GOLD_SEGMENT) -> int:
    """Stored streaming memberships equal a fresh evaluation of the segment over every profile;
    returns the number of members."""
    from tessera.segments import memberships as ms

    stored = {
        pid for pid, sid, rec in ms.scan_all(sb.store) if sid == segment_id and rec.get("status") in ms.IN
    }
    from tessera.model import utcnow

    doc = sb.segments.get(segment_id)
    now = utcnow()
    evaluated = sb.segments.evaluate_batch([doc], sb.segments.rows(now), now, {})[segment_id]
    assert stored == set(evaluated)
    return len(stored)
