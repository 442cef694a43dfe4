"""Streaming envelope parsing: single, batch, array and raw forms with per-message errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tessera.errors import InvalidInput
from tessera.ingest.envelope import MessageError, StreamMessage, parse_message, parse_request

DATA = Path(__file__).parents[1] / "data" / "ingest"
SCHEMA = "https://ns.adobe.com/{TENANT_ID}/schemas/{SCHEMA_ID}"
XED = "application/vnd.adobe.xed-full+json;version=1"


def envelope(entity: dict[str, Any] | None = None, **header: Any) -> dict[str, Any]:
    return {
        "header": {"schemaRef": {"id": SCHEMA, "contentType": XED}, "imsOrgId": "ORG@AdobeOrg", **header},
        "body": {
            "xdmMeta": {"schemaRef": {"id": SCHEMA, "contentType": XED}},
            "xdmEntity": entity if entity is not None else {"_id": "e1", "timestamp": "2024-01-01T12:00:00Z"},
        },
    }


def test_single_fixture_envelope_needs_a_dataset() -> None:
    payload = (DATA / "xdm-data.json").read_bytes()
    r = parse_request(payload)
    assert not r.batch
    assert r.errors == [
        MessageError(
            0, "header.datasetId is missing and the connection has no default dataset", "header.datasetId"
        )
    ]
    ok = parse_request(payload, dataset_id="ds-1")
    (m,) = ok.good
    assert m == StreamMessage(
        index=0,
        record={"firstname": "abc", "lastname": "def"},
        dataset_id="ds-1",
        schema_id=SCHEMA,
        content_type="application/vnd.adobe.xed-full+json;version={SCHEMA_VERSION}",
        source_name="aep-sink-connector",
    )


def test_multiple_messages_fixture_is_an_array_of_envelopes() -> None:
    r = parse_request((DATA / "xdm-data-multiple-messages.json").read_bytes(), dataset_id="ds-1")
    assert r.batch and not r.errors
    assert [m.index for m in r.good] == [0, 1]
    assert [m.source_name for m in r.good] == [None, "aep-sink-connector"]  # the first has no header
    assert all(m.record == {"firstname": "abc", "lastname": "def"} for m in r.good)


def test_batch_endpoint_form_reports_each_bad_message() -> None:
    messages: list[Any] = [
        envelope(datasetId="d1"),
        {"header": {"datasetId": "d1"}},
        envelope({}, datasetId="d1"),
        "not an object",
        envelope(datasetId="d2", operations={"data": "merge"}),
        {"header": {"datasetId": "d1"}, "body": {"xdmEntity": [1]}},
        envelope(datasetId=7),
    ]
    r = parse_request(orjson.dumps({"messages": messages}))
    assert r.batch
    assert [type(m).__name__ for m in r.messages] == [
        "StreamMessage", "MessageError", "MessageError", "MessageError", "StreamMessage", "MessageError",
        "MessageError",
    ]  # fmt: skip
    assert [(e.index, e.path, e.message) for e in r.errors] == [
        (1, "messages[1].body", "body is missing"),
        (2, "messages[2].body.xdmEntity", "body.xdmEntity is empty"),
        (3, "messages[3]", "a message must be a JSON object, found str"),
        (5, "messages[5].body.xdmEntity", "body.xdmEntity must be an object"),
        (6, "messages[6].header.datasetId", "header.datasetId must be a string"),
    ]
    good = r.good
    assert good[0].dataset_id == "d1" and good[0].ims_org_id == "ORG@AdobeOrg" and good[0].content_type == XED
    assert good[1].operations == {"data": "merge"}
    assert r.errors[0].to_json() == {
        "statusCode": 400,
        "message": "body is missing",
        "path": "messages[1].body",
    }


def test_header_dataset_wins_over_the_default() -> None:
    m = parse_message(envelope(datasetId="from-header"), dataset_id="default")
    assert isinstance(m, StreamMessage) and m.dataset_id == "from-header"


def test_schema_refs_must_agree_and_be_xed() -> None:
    env = envelope(datasetId="d")
    env["body"]["xdmMeta"]["schemaRef"]["id"] = "https://ns.adobe.com/t/schemas/other"
    m = parse_message(env)
    assert isinstance(m, MessageError) and "differ" in m.message
    env = envelope(datasetId="d")
    env["header"]["schemaRef"]["contentType"] = "application/json"
    m = parse_message(env)
    assert isinstance(m, MessageError) and m.path == "header.schemaRef.contentType"
    env = envelope(datasetId="d")
    env["header"]["schemaRef"] = {"contentType": XED}
    m = parse_message(env)
    assert isinstance(m, MessageError) and m.path == "header.schemaRef.id"


def test_missing_schema_ref_falls_back_to_the_default() -> None:
    m = parse_message({"header": {"datasetId": "d"}, "body": {"xdmEntity": {"a": 1}}}, schema_id="s")
    assert isinstance(m, StreamMessage) and m.schema_id == "s" and m.content_type is None


def test_bad_upsert_operation_is_a_message_error() -> None:
    m = parse_message(envelope(datasetId="d", operations={"data": "upsert"}))
    assert isinstance(m, MessageError) and m.path == "header.operations.data"


def test_raw_xdm_record_uses_the_connection_dataset() -> None:
    rec = {"_id": "e1", "timestamp": "2024-01-01T00:00:00Z", "identityMap": {"ECID": [{"id": "1" * 38}]}}
    r = parse_request(orjson.dumps(rec), dataset_id="events")
    (m,) = r.good
    assert m.raw and m.record == rec and m.dataset_id == "events"
    r = parse_request(orjson.dumps(rec))
    assert r.errors[0].message.startswith("no dataset for a raw XDM record")
    forced = parse_request({"header": {"x": 1}, "body": {"y": 2}}, dataset_id="d", raw=True)
    assert forced.good[0].record == {"header": {"x": 1}, "body": {"y": 2}}
    assert parse_request(b"[{}]", dataset_id="d").errors[0].message == "the record is empty"


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"{not json", "not valid JSON"),
        (b"42", "JSON object or array"),
        (b"[]", "no message"),
        (b'{"messages": []}', "no message"),
        (b'{"messages": {}}', "must be an array"),
    ],
)
def test_requests_that_hold_no_message_are_refused(payload: bytes, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        parse_request(payload)
