"""Hostile input over HTTP against a real server: malformed JSON, wrong types, deep nesting, huge
strings and arrays, invalid UTF-8, oversized bodies, thousands of identities in one row, enormous
and pathological PQL (deep nesting, catastrophic regex), SQL-looking text, path traversal in
uploaded file names, bad Parquet and CSV files.

Each gets a 4xx in the API's error shape; the server stays up and a good request afterwards still
works. The time bound per request (``BOUND_S``) is a safety bound against hangs (a catastrophic
regex, a quadratic parser), not a performance assertion: real answers take milliseconds.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import orjson
import pytest
from faults_harness import COUNTS, JSON, Layout, ServerProcess, event, prepare, record

BOUND_S = 5.0
PROBLEM_KEYS = {"type", "status", "title", "detail", "error_code"}
SQL = "x'; DROP TABLE t_profiles; --"
SQL_VALUES = [SQL, '" OR 1=1 --', "1; SELECT * FROM sqlite_master", "') UNION SELECT k, v FROM t_keys --"]


class Probe:
    """Sends hostile requests and checks each answer."""

    def __init__(self, server: ServerProcess, layout: Layout) -> None:
        self.server = server
        self.layout = layout
        self.http = server.client(timeout=60)

    def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        allowed: tuple[int, ...] = (),
    ) -> httpx.Response:
        """One hostile request: a 4xx in the error shape (or a status in ``allowed``) within the
        bound, never a 5xx."""
        started = time.monotonic()
        resp = self.http.request(method, path, content=content, headers=headers, params=params)
        elapsed = time.monotonic() - started
        COUNTS["hostile inputs sent"] += 1
        shown = content[:60] if isinstance(content, bytes) else b"<stream>"
        where = f"{method} {path} ({shown!r})"
        assert elapsed < BOUND_S, f"{where} took {elapsed:.1f}s"
        if resp.status_code in allowed:
            return resp
        assert 400 <= resp.status_code < 500, f"{where} -> {resp.status_code}: {resp.text[:500]}"
        body = resp.json()
        assert set(body) >= PROBLEM_KEYS or {"error_code", "message"} <= set(body), f"{where}: {body}"
        assert "Traceback" not in resp.text
        return resp

    def still_works(self) -> None:
        """A good request after the hostile ones: the server is up and unaffected."""
        assert self.http.get("/tessera/health").status_code == 200
        n = COUNTS["hostile inputs sent"]
        resp = self.http.post(
            f"/collection/{self.layout.web_inlet}", headers=JSON, content=orjson.dumps(event(10**6 + n, 1))
        )
        assert resp.status_code == 200, resp.text


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probe]:
    home = tmp_path_factory.mktemp("hostile") / "home"
    layout = prepare(home)
    server = ServerProcess(home, settings={"regex_timeout_ms": "50", "max_upload_bytes": "5000000"}).start()
    p = Probe(server, layout)
    try:
        yield p
    finally:
        p.http.close()
        server.stop()


def _body_routes(probe: Probe) -> list[tuple[str, str]]:
    """Every (method, path) of the OpenAPI document that takes a body, path parameters filled."""
    spec = probe.http.get("/openapi.json").json()
    out = []
    for path, ops in spec["paths"].items():
        for method in ("post", "put", "patch"):
            if method in ops:
                filled = re.sub(r"\{inletId\}", probe.layout.web_inlet, path)
                filled = re.sub(r"\{[^}]+\}", "x", filled)
                out.append((method.upper(), filled))
    assert len(out) > 30
    return out


MALFORMED = [
    b'{"name": ',
    b"[1, 2,",
    b'{"a": 1}}',
    b"\x00\x01\x02",
    b"{'single': 'quotes'}",
    b"NaN",
    b'{"a": 1e999999}',
]
WRONG_TYPES = [b"[]", b'"text"', b"123", b"null", b"true", b'{"name": 5, "datasetId": [], "messages": {}}']


def test_malformed_and_wrong_typed_json_on_every_body_route(probe: Probe) -> None:
    for method, path in _body_routes(probe):
        raw = "upload" in path or path.startswith("/data/foundation/import/batches/x/datasets")
        for content in [*MALFORMED, *WRONG_TYPES]:
            if raw:
                continue
            probe.send(method, path, content=content, headers=JSON)
        # invalid UTF-8 inside a string
        probe.send(method, path, content=b'{"name": "\xff\xfe\xfd"}', headers=JSON, allowed=(200, 201, 207))
    probe.still_works()


def _deep(levels: int) -> bytes:
    return b'{"a": ' * levels + b"1" + b"}" * levels


def test_deep_nesting_huge_strings_and_arrays(probe: Probe) -> None:
    targets = [
        ("POST", f"/collection/{probe.layout.web_inlet}"),
        ("POST", f"/collection/batch/{probe.layout.web_inlet}"),
        ("POST", "/data/foundation/catalog/dataSets"),
        ("POST", "/data/core/ups/segment/definitions"),
        ("POST", "/data/core/ups/preview"),
        ("POST", "/data/foundation/schemaregistry/tenant/schemas"),
        ("POST", "/data/core/ups/config/mergePolicies"),
        ("POST", "/data/core/identity/clusters/members"),
        ("POST", "/data/core/privacy/jobs"),
        ("POST", "/tessera/identity/simulate"),
    ]
    payloads = [
        _deep(10_000),
        b"[" * 10_000 + b"]" * 10_000,
        orjson.dumps({"name": "x" * 3_000_000, "messages": ["x" * 3_000_000]}),
        orjson.dumps({"name": "n", "messages": list(range(300_000)), "items": [0] * 300_000}),
    ]
    for method, path in targets:
        for content in payloads:
            probe.send(method, path, content=content, headers=JSON, allowed=(207,))
    # nested deep inside a valid streaming record
    deep_record = orjson.dumps(event(1, 1))[:-1] + b', "x": ' + _deep(5_000) + b"}"
    probe.send("POST", f"/collection/{probe.layout.web_inlet}", content=deep_record, headers=JSON)
    probe.still_works()


def test_oversized_bodies_are_refused_before_they_are_read(probe: Probe) -> None:
    big = b'{"name": "' + b"x" * 40_000_000 + b'"}'
    for path in (
        f"/collection/{probe.layout.web_inlet}",
        "/data/foundation/catalog/dataSets",
        "/data/core/ups/segment/definitions",
        "/data/core/ups/preview",
    ):
        probe.send("POST", path, content=big, headers=JSON)
    probe.still_works()


def test_thousands_of_identities_in_one_row(probe: Probe) -> None:
    row = record(1, 1)
    row["identityMap"]["Email"] = [{"id": f"u{i}@example.com"} for i in range(5000)]
    probe.send("POST", f"/collection/{probe.layout.crm_inlet}", content=orjson.dumps(row), headers=JSON)
    batch = probe.send(
        "POST",
        f"/collection/batch/{probe.layout.crm_inlet}",
        content=orjson.dumps({"messages": [row, record(2, 2)]}),
        headers=JSON,
        allowed=(207,),
    ).json()["responses"]
    assert batch[0]["statusCode"] == 400 and "xactionId" in batch[1]
    many_ns = record(3, 3)
    many_ns["identityMap"] = {f"NS{i}": [{"id": str(i)}] for i in range(3000)}
    probe.send("POST", f"/collection/{probe.layout.crm_inlet}", content=orjson.dumps(many_ns), headers=JSON)
    probe.send(
        "POST",
        "/tessera/identity/simulate",
        content=orjson.dumps({"rows": [[{"namespace": "Email", "id": f"u{i}@x.com"} for i in range(5000)]]}),
        headers=JSON,
    )
    probe.still_works()


def _preview(probe: Probe, pql: str, allowed: tuple[int, ...] = ()) -> httpx.Response:
    body = {"predicateExpression": pql, "predicateType": "pql/text", "predicateModel": "_xdm.context.profile"}
    return probe.send(
        "POST", "/data/core/ups/preview", content=orjson.dumps(body), headers=JSON, allowed=allowed
    )


def _definition(probe: Probe, pql: str, allowed: tuple[int, ...] = ()) -> httpx.Response:
    body = {
        "name": "hostile",
        "expression": {"type": "PQL", "format": "pql/text", "value": pql},
        "schema": {"name": "_xdm.context.profile"},
        "evaluationInfo": {"continuous": {"enabled": True}},
    }
    return probe.send(
        "POST",
        "/data/core/ups/segment/definitions",
        content=orjson.dumps(body),
        headers=JSON,
        allowed=allowed,
    )


PATHOLOGICAL_PQL = [
    "(" * 5_000 + 'person.name.firstName = "a"' + ")" * 5_000,
    "not " * 5_000 + 'person.name.firstName = "a"',
    " or ".join(f'person.name.firstName = "n{i}"' for i in range(40_000)),
    'person.name.firstName = "' + "a" * 2_000_000 + '"',
    "[" * 3_000 + "1" + "]" * 3_000 + " = 1",
    'person.name.firstName.matches("(a+)+$")',
    'person.name.firstName.matches("^(\\\\w+\\\\s?)*$")',
    'person.name.firstName.matches("(a)\\\\1")',
    'person.name.firstName.matches("[unclosed")',
    'person.name.firstName.matches("(.*a){25}")',
    'person.name.firstName matches "(x+x+)+y"',
    'regexGroup(person.name.firstName, "(a*)*b", 0) = "a"',
    'person.name.firstName.matches("' + "a" * 5_000 + '")',
    "person.name.firstName = 1; DROP TABLE t_profiles",
    'person.name.firstName = "a" --',
]


def test_enormous_and_pathological_pql(probe: Probe) -> None:
    # a profile a catastrophic regex would take forever on
    victim = record(7, 7)
    victim["person"]["name"]["firstName"] = "a" * 40 + "!"
    assert (
        probe.http.post(
            f"/collection/{probe.layout.crm_inlet}", headers=JSON, content=orjson.dumps(victim)
        ).status_code
        == 200
    )
    for pql in PATHOLOGICAL_PQL:
        _preview(probe, pql)
        _definition(probe, pql)
    # SQL in a PQL string literal is just a string: it is evaluated as one, harmlessly
    for value in SQL_VALUES:
        pql = "person.name.firstName = " + json.dumps(value)
        assert _preview(probe, pql, allowed=(201,)).status_code == 201
    probe.still_works()


def test_regex_evaluation_is_time_limited_while_streaming(probe: Probe) -> None:
    """A regex that passes the static check but is slow on some value: streaming evaluation gives
    up after ``regex_timeout_ms`` instead of stalling ingestion."""
    created = _definition(probe, 'person.name.lastName.matches("(a|aa)+$")', allowed=(200, 201))
    assert created.status_code in (200, 201), created.text
    slow = record(8, 8)
    slow["person"]["name"]["lastName"] = "a" * 60 + "!"
    started = time.monotonic()
    resp = probe.http.post(f"/collection/{probe.layout.crm_inlet}", headers=JSON, content=orjson.dumps(slow))
    assert resp.status_code == 200 and time.monotonic() - started < BOUND_S
    seg_id = created.json()["id"]
    assert probe.http.delete(f"/data/core/ups/segment/definitions/{seg_id}").status_code in (200, 204)
    probe.still_works()


def test_sql_looking_text_everywhere(probe: Probe) -> None:
    for value in SQL_VALUES:
        # stored as plain data where it is plain data
        rec = record(9, 9)
        rec["person"]["name"]["firstName"] = value
        rec["identityMap"]["Email"] = [{"id": value}]
        assert (
            probe.http.post(
                f"/collection/{probe.layout.crm_inlet}", headers=JSON, content=orjson.dumps(rec)
            ).status_code
            == 200
        )
        ok = probe.http.get(
            "/data/core/ups/access/entities",
            params={"schema.name": "_xdm.context.profile", "entityId": value, "entityIdNS": "Email"},
        )
        assert ok.status_code == 200 and value in ok.text
        # and refused as names, ids and parameters where it is not
        probe.send("GET", f"/data/foundation/catalog/dataSets/{value}")
        probe.send("GET", "/data/core/ups/access/entities", params={"schema.name": value, "entityId": value})
        probe.send(
            "GET",
            "/data/core/ups/access/entities",
            params={"schema.name": "_xdm.context.profile", "entityId": value, "entityIdNS": value},
        )
        probe.send(
            "GET",
            "/data/core/identity/cluster/members",
            params={"namespace": value, "id": value},
            allowed=(200,),
        )
        probe.send("GET", "/data/foundation/catalog/dataSets", headers={"x-sandbox-name": value})
        probe.send("GET", f"/data/core/ups/segment/definitions/{value}")
        probe.send("GET", "/data/core/ups/segment/jobs", params={"status": value}, allowed=(200,))
        probe.send("GET", "/data/foundation/catalog/batches", params={"dataSet": value}, allowed=(200,))
        probe.send(
            "POST",
            "/data/foundation/sandbox-management/sandboxes",
            content=orjson.dumps({"name": value, "title": value, "type": "development"}),
            headers=JSON,
        )
        # a dataset name is free text: stored as given, harmlessly
        probe.send(
            "POST",
            "/data/foundation/catalog/dataSets",
            content=orjson.dumps({"name": value, "schemaRef": {"id": probe.layout.schemas["profile"]}}),
            headers=JSON,
            allowed=(201, 409),
        )
    # nothing was dropped
    assert probe.http.get(f"/data/foundation/catalog/dataSets/{probe.layout.crm}").status_code == 200
    probe.still_works()


TRAVERSAL_NAMES = [
    "../../etc/passwd",
    "..%2F..%2Fescape.json",
    "%2e%2e%2fescape.json",
    "..",
    ".hidden.json",
    "a\\..\\b.json",
    "name\x00.json",
    "x" * 5000 + ".json",
]


def _loading_batch(probe: Probe, fmt: str = "json", dataset: str | None = None) -> str:
    resp = probe.http.post(
        "/data/foundation/import/batches",
        headers=JSON,
        content=json.dumps({"datasetId": dataset or probe.layout.crm, "inputFormat": {"format": fmt}}),
    )
    assert resp.status_code == 201
    return str(resp.json()["id"])


def test_path_traversal_in_uploaded_file_names(probe: Probe) -> None:
    batch = _loading_batch(probe)
    home = probe.server.home
    before = {p for p in home.parent.rglob("*")}
    for name in TRAVERSAL_NAMES:
        base = f"/data/foundation/import/batches/{batch}/datasets/{probe.layout.crm}/files/"
        # raw (the server's router sees the '/' and the '..') and percent-encoded
        for url in (base + name.replace("\x00", "%00"), base + quote(name, safe="")):
            probe.send("PUT", url, content=b"[]", allowed=(404,))
            probe.send("POST", url, params={"action": "INITIALIZE"}, allowed=(404,))
    after = {p for p in home.parent.rglob("*")}
    escaped = [p for p in after - before if home not in p.parents and p.name.endswith(".json")]
    assert escaped == []
    probe.still_works()


BAD_FILES = {
    "bad.parquet": ("parquet", b"PAR1 this is not parquet PAR1"),
    "truncated.parquet": ("parquet", b"PAR1"),
    "binary.csv": ("csv", bytes(range(256)) * 100),
    "quotes.csv": ("csv", b'identityMap.CRMID,person.name.firstName\n"unterminated,x\n' * 3),
    "ragged.csv": ("csv", b"a,b,c\n1\n1,2,3,4,5,6\n"),
    "garbage.json": ("json", b"\xff\xfe not json"),
    "deep.json": ("json", b"[" + _deep(10_000) + b"]"),
    "wrong.json": ("json", b'{"not": "an array"}'),
    "lines.jsonl": ("jsonl", b'{"a": 1}\n{broken\n' + b"\x00" * 100),
}


def test_bad_parquet_and_csv_files_fail_the_batch_cleanly(probe: Probe) -> None:
    for name, (fmt, data) in BAD_FILES.items():
        batch = _loading_batch(probe, fmt)
        url = f"/data/foundation/import/batches/{batch}/datasets/{probe.layout.crm}/files/{name}"
        assert probe.http.put(url, content=data).status_code == 200
        done = probe.send(
            "POST", f"/data/foundation/import/batches/{batch}", params={"action": "COMPLETE"}, allowed=(200,)
        )
        COUNTS["hostile inputs sent"] += 0
        status = probe.http.get(f"/data/foundation/catalog/batches/{batch}").json()[batch]
        assert done.status_code == 200 and status["status"] == "failed", (name, status)
        assert status["errors"] and "Traceback" not in json.dumps(status)
    probe.still_works()


HOSTILE_PARAMS = ["10" * 30, "-1", "%ff%fe", "x" * 3_000, SQL, "../../etc/passwd\u202e\u0000"]


def test_hostile_query_parameters_and_path_segments_on_every_read_route(probe: Probe) -> None:
    spec = probe.http.get("/openapi.json").json()
    routes = 0
    for path, ops in spec["paths"].items():
        op = ops.get("get")
        if op is None:
            continue
        routes += 1
        names = [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"]
        for value in HOSTILE_PARAMS:
            filled = re.sub(r"\{[^}]+\}", quote(value, safe=""), path)
            params = dict.fromkeys(names, value)
            # a read may legitimately answer 200 (an empty result) for a strange value; never 5xx
            probe.send("GET", filled, params=params, allowed=(200,))
    assert routes > 25
    probe.still_works()


def test_a_file_upload_over_the_limit_is_refused(probe: Probe) -> None:
    batch = _loading_batch(probe)
    url = f"/data/foundation/import/batches/{batch}/datasets/{probe.layout.crm}/files/big.json"
    resp = probe.send("PUT", url, content=b"[" + b" " * 6_000_000 + b"]")
    assert resp.status_code == 413
    probe.still_works()


def test_chunked_oversized_bodies_and_bad_headers(probe: Probe) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(25):
            yield b"x" * 1_000_000
        yield b'"}'

    for path in (
        "/data/core/ups/preview",
        "/data/foundation/catalog/dataSets",
        "/data/foundation/import/batches",
        f"/collection/{probe.layout.web_inlet}",
    ):
        # no Content-Length: the cap applies while reading
        probe.send("POST", path, content=chunks(), headers=JSON)  # type: ignore[arg-type]
    port = int(probe.server.url.rsplit(":", 1)[1])
    for length in ("-5", "abc", "99999999999999999999", "5, 6"):
        status = _raw_status(port, f"Content-Type: application/json\r\nContent-Length: {length}\r\n", b"{}")
        COUNTS["hostile inputs sent"] += 1
        assert status is None or 400 <= status < 500, (length, status)
    for headers in (
        {"Content-Type": "text/html"},
        {"Content-Type": "application/json", "x-sandbox-name": "s" * 5000},
        {"Content-Type": "application/json", "x-sandbox-name": "../../prod"},
    ):
        resp = probe.http.post("/data/foundation/catalog/dataSets", headers=headers, content=b'{"name": "h"}')
        COUNTS["hostile inputs sent"] += 1
        assert 400 <= resp.status_code < 500 or resp.status_code == 413, (
            headers,
            resp.status_code,
            resp.text,
        )
    probe.still_works()


def _raw_status(port: int, headers: str, body: bytes) -> int | None:
    """Status of a hand-written request (for headers an HTTP client refuses to send), or None when
    the server closes the connection on it (a protocol error, refused below the application)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=BOUND_S) as sock:
        sock.sendall(b"POST /data/foundation/catalog/dataSets HTTP/1.1\r\nHost: x\r\n" + headers.encode())
        sock.sendall(b"Connection: close\r\n\r\n" + body)
        reply = b""
        try:
            while chunk := sock.recv(4096):
                reply += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    if not reply.startswith(b"HTTP/1.1 "):
        return None
    return int(reply.split(b" ", 2)[1])
