"""The client covers the API's operations, retries 429 from a real local server, and its
segmentation, system-job and edge calls work against the app."""

from __future__ import annotations

import inspect
import re
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tessera.api import create_app
from tessera.client import AsyncTesseraClient, Call, TesseraClient
from tessera.client import _calls as calls
from tessera.errors import SemanticError
from tessera.platform import Platform
from tessera.settings import Settings

# Operations deliberately left to ``client.request(...)``: the schema registry's rarely scripted
# writes, file chunk actions the batch helpers wrap differently, and single-class reads.
LEFT_TO_REQUEST = {
    ("GET", "/data/foundation/schemaregistry/{container}/classes/{classId}"),
    ("GET", "/data/foundation/schemaregistry/{container}/fieldgroups/{fieldGroupId}"),
    ("PUT", "/data/foundation/schemaregistry/tenant/fieldgroups/{fieldGroupId}"),
    ("DELETE", "/data/foundation/schemaregistry/tenant/fieldgroups/{fieldGroupId}"),
    ("PATCH", "/data/foundation/schemaregistry/tenant/schemas/{schemaId}"),
    ("DELETE", "/data/foundation/schemaregistry/tenant/schemas/{schemaId}"),
    ("POST", "/data/foundation/schemaregistry/tenant/descriptors"),
    ("GET", "/data/foundation/schemaregistry/tenant/unions"),
    ("GET", "/data/foundation/flowservice/connections"),
    ("POST", "/data/core/identity/clusters/history"),
    ("POST", "/data/core/identity/mappings"),
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    with Platform(Settings(home=str(tmp_path), group_commit_ms=0.0)) as opened:
        yield opened


def _dummy(param: inspect.Parameter) -> Any:
    annotation = str(param.annotation)
    if annotation.startswith(("list[Mapping", "list[dict")):
        return [{}]
    if annotation.startswith("list[tuple") or "Sequence[tuple" in annotation:
        return [("x", "x")]
    if "Mapping" in annotation or "dict" in annotation:
        return {}
    if "list" in annotation:
        return ["x"]
    if annotation.startswith("int"):
        return 1
    return "x"


def client_operations() -> set[tuple[str, str]]:
    """(method, path) of every call the client builds, with ``x`` for each path parameter."""
    found = set()
    for name, fn in vars(calls).items():
        if name.startswith("_") or not inspect.isfunction(fn) or fn.__module__ != calls.__name__:
            continue
        sig = inspect.signature(fn)
        if "Call" not in str(sig.return_annotation):
            continue
        args = [
            _dummy(p)
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
        call = fn(*args)
        assert isinstance(call, Call)
        found.add((call.method, call.path.split("?")[0]))
    return found


def test_client_covers_every_operation_of_the_openapi_document(platform: Platform) -> None:
    spec = create_app(platform).openapi()
    built = client_operations()
    missing = []
    for path, item in spec["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
        for method in item:
            key = (method.upper(), path)
            if key in LEFT_TO_REQUEST:
                continue
            if not any(m == key[0] and pattern.match(p) for m, p in built):
                missing.append(key)
    assert missing == [], missing
    for method, path in LEFT_TO_REQUEST:  # the list names real operations only
        assert method.lower() in spec["paths"][path]


class _Flaky(BaseHTTPRequestHandler):
    """429 with ``Retry-After: 0`` for the first ``fail`` requests, then 200."""

    fail = 2
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        type(self).seen.append(self.path)
        busy = len(type(self).seen) <= type(self).fail
        body = b'{"status": 429, "detail": "slow down"}' if busy else b'{"status": "ok"}'
        self.send_response(429 if busy else 200)
        if busy:
            self.send_header("Retry-After", "0")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def flaky_server() -> Iterator[str]:
    _Flaky.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_sync_client_retries_429_from_a_real_server(flaky_server: str) -> None:
    with TesseraClient(flaky_server, backoff_s=0.0) as client:
        assert client.health() == {"status": "ok"}
    assert _Flaky.seen == ["/tessera/health"] * 3


@pytest.mark.anyio
async def test_async_client_retries_429_from_a_real_server(flaky_server: str) -> None:
    async with AsyncTesseraClient(flaky_server, backoff_s=0.0) as client:
        assert await client.health() == {"status": "ok"}
    assert len(_Flaky.seen) == 3


def test_sync_client_gives_up_after_its_retries(flaky_server: str) -> None:
    _Flaky.fail = 10
    try:
        with (
            TesseraClient(flaky_server, retries=1, backoff_s=0.0) as client,
            pytest.raises(Exception) as raised,
        ):
            client.health()
        assert getattr(raised.value, "http_status", None) == 429
        assert len(_Flaky.seen) == 2
    finally:
        _Flaky.fail = 2


@pytest.mark.anyio
async def test_segmentation_system_jobs_and_edge_through_the_client(platform: Platform) -> None:
    schemas = platform.sandbox().schemas.ensure_standard_schemas()
    async with AsyncTesseraClient(
        "http://t", transport=httpx.ASGITransport(app=create_app(platform))
    ) as client:
        converted = await client.convert_expression('person.name.firstName = "Ann"')
        assert converted["expression"]["format"] == "pql/json"
        back = await client.convert_expression(converted["expression"]["value"], "pql/json")
        assert back["expression"]["value"] == 'person.name.firstName = "Ann"'

        segment = await client.create_segment(
            {
                "name": "Anns",
                "schema": {"name": "_xdm.context.profile"},
                "expression": {"type": "PQL", "format": "pql/text", "value": 'person.name.firstName = "Ann"'},
                "evaluationInfo": {"synchronous": {"enabled": True}},
            }
        )
        verdict = await client.edge_evaluate(profile={"person": {"name": {"firstName": "Ann"}}})
        assert [v["qualifies"] for v in verdict["segments"] if v["segmentId"] == segment["id"]] == [True]
        assert (await client.bulk_get_segments([segment["id"]]))[segment["id"]]["name"] == "Anns"
        job = await client.run_segment_job([segment["id"]])
        assert (await client.get_segment_job(job["id"]))["status"] == job["status"]

        crm = await client.create_dataset("crm", schemas["profile"])
        batch = await client.create_batch(crm)
        system_job = await client.delete_dataset_profile_data(crm)
        assert system_job["status"] == "COMPLETED" and system_job["dataSetId"] == crm
        assert (await client.list_system_jobs())["children"][0]["id"] == system_job["id"]
        with pytest.raises(SemanticError):
            await client.delete_event_batch(batch["id"])
        await client.delete_system_job(system_job["id"])


def test_generated_methods_match_in_both_clients() -> None:
    def signature(cls: type, name: str) -> Mapping[str, inspect.Parameter]:
        return inspect.signature(getattr(cls, name)).parameters

    sync = {n for n in vars(TesseraClient) if not n.startswith("_")}
    both = sync & {n for n in vars(AsyncTesseraClient) if not n.startswith("_")}
    assert sync - both <= {"close"}
    for name in both - {"send", "request", "close", "aclose"}:
        assert list(signature(TesseraClient, name)) == list(signature(AsyncTesseraClient, name)), name
