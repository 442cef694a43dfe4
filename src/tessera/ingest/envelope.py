"""The streaming ingestion envelope (``header`` + ``body.xdmEntity``), one message or many.

Accepted request bodies (``spec/aep.md`` §b12):

* one envelope ``{"header": {...}, "body": {"xdmMeta": {...}, "xdmEntity": {...}}}``;
* the batch endpoint form ``{"messages": [envelope, ...]}``;
* a JSON array of envelopes (what the reference Kafka sink sends);
* raw XDM: the record itself (no ``header``/``body``), with the dataset id given by the caller
  (the connection's dataset), or any body when ``raw=True``.

Each message is checked on its own: a broken message becomes a :class:`MessageError` with its
index and what is missing, and the others still parse. Only a body that is not JSON at all, or has
no message in it, raises :class:`tessera.errors.InvalidInput`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tessera.errors import InvalidInput

XED_CONTENT_TYPE_PREFIX = "application/vnd.adobe.xed"


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """One good message.

    Attributes:
        index: 0-based position in the request.
        record: the XDM record (``body.xdmEntity``, or the raw body).
        dataset_id: target dataset (``header.datasetId`` or the caller's default).
        schema_id: ``header.schemaRef.id`` / ``body.xdmMeta.schemaRef.id`` when given.
        content_type: the schemaRef's ``contentType`` when given.
        ims_org_id: ``header.imsOrgId`` when given.
        flow_id: ``header.flowId`` when given.
        source_name: ``header.source.name`` when given.
        operations: ``header.operations`` (Data Prep upsert: ``{"data": "create|merge|delete", ...}``).
        raw: True when the message was a bare XDM record rather than an envelope.
    """

    index: int
    record: dict[str, Any]
    dataset_id: str
    schema_id: str | None = None
    content_type: str | None = None
    ims_org_id: str | None = None
    flow_id: str | None = None
    source_name: str | None = None
    operations: dict[str, Any] | None = None
    raw: bool = False


@dataclass(frozen=True, slots=True)
class MessageError:
    """One message that cannot be ingested.

    Attributes:
        index: 0-based position in the request.
        message: what is wrong, e.g. ``"body.xdmEntity is missing"``.
        path: the field at fault, e.g. ``"messages[2].body.xdmEntity"``.
    """

    index: int
    message: str
    path: str

    def to_json(self) -> dict[str, Any]:
        """The per-message entry of a 207 multi-status response."""
        return {"statusCode": 400, "message": self.message, "path": self.path}


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """Every message of one request, in order, each good or bad."""

    messages: tuple[StreamMessage | MessageError, ...]
    batch: bool = field(default=False)
    """True for the batch forms (``{"messages": [...]}`` or an array)."""

    @property
    def good(self) -> list[StreamMessage]:
        return [m for m in self.messages if isinstance(m, StreamMessage)]

    @property
    def errors(self) -> list[MessageError]:
        return [m for m in self.messages if isinstance(m, MessageError)]


def parse_request(
    payload: bytes | str | Mapping[str, Any] | list[Any],
    *,
    dataset_id: str | None = None,
    schema_id: str | None = None,
    raw: bool = False,
) -> ParsedRequest:
    """Parse a streaming request body into per-message results.

    Args:
        payload: the request body (bytes/str JSON, or already-decoded JSON).
        dataset_id: default dataset for messages without ``header.datasetId`` (e.g. the
            connection's dataset); required for raw XDM.
        schema_id: default schema id for messages that give none.
        raw: treat every message as a bare XDM record, never as an envelope.

    Raises:
        InvalidInput: the body is not JSON, or is neither an object nor an array, or
            ``messages`` is not a non-empty array.

    >>> r = parse_request(b'{"header": {"datasetId": "d1"}, "body": {"xdmEntity": {"_id": "1"}}}')
    >>> r.messages[0].dataset_id, r.messages[0].record
    ('d1', {'_id': '1'})
    >>> parse_request(b'{"header": {"datasetId": "d1"}, "body": {}}').messages[0].message
    'body.xdmEntity is missing'
    """
    doc: Any
    if isinstance(payload, bytes | str):
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError as e:
            raise InvalidInput(f"request body is not valid JSON: {e.msg}", path=f"body:{e.pos + 1}") from e
    else:
        doc = payload
    if isinstance(doc, list):
        items, prefix, batch = doc, "", True
    elif isinstance(doc, dict) and "messages" in doc and not raw:
        items, prefix, batch = doc["messages"], "messages", True
        if not isinstance(items, list):
            raise InvalidInput("messages must be an array of envelopes", path="messages")
    elif isinstance(doc, dict):
        items, prefix, batch = [doc], "", False
    else:
        raise InvalidInput("request body must be a JSON object or array", path="body")
    if not items:
        raise InvalidInput("the request holds no message", path=prefix or "body")
    out = tuple(
        parse_message(
            m, i, dataset_id=dataset_id, schema_id=schema_id, raw=raw, prefix=_prefix(prefix, i, batch)
        )
        for i, m in enumerate(items)
    )
    return ParsedRequest(out, batch)


def _prefix(prefix: str, i: int, batch: bool) -> str:
    if not batch:
        return ""
    return f"{prefix}[{i}]." if prefix else f"[{i}]."


def parse_message(
    message: Any,
    index: int = 0,
    *,
    dataset_id: str | None = None,
    schema_id: str | None = None,
    raw: bool = False,
    prefix: str = "",
) -> StreamMessage | MessageError:
    """Parse one message (envelope or raw XDM record); never raises for a bad message.

    >>> parse_message({"_id": "e1", "timestamp": "2024-01-01T00:00:00Z"}, dataset_id="events").raw
    True
    """

    def err(msg: str, where: str) -> MessageError:
        return MessageError(index, msg, prefix + where if where else prefix.rstrip("."))

    if not isinstance(message, dict):
        return err(f"a message must be a JSON object, found {type(message).__name__}", "")
    if raw or ("header" not in message and "body" not in message):
        if not message:
            return err("the record is empty", "")
        if not dataset_id:
            return err("no dataset for a raw XDM record: give the dataset id of the connection", "")
        return StreamMessage(index, message, dataset_id, schema_id=schema_id, raw=True)

    header = message.get("header", {})
    if not isinstance(header, dict):
        return err("header must be an object", "header")
    body = message.get("body")
    if body is None:
        return err("body is missing", "body")
    if not isinstance(body, dict):
        return err("body must be an object", "body")
    entity = body.get("xdmEntity")
    if entity is None:
        return err("body.xdmEntity is missing", "body.xdmEntity")
    if not isinstance(entity, dict):
        return err("body.xdmEntity must be an object", "body.xdmEntity")
    if not entity:
        return err("body.xdmEntity is empty", "body.xdmEntity")

    refs: list[tuple[str, dict[str, Any]]] = []
    for where, holder in (("header.schemaRef", header), ("body.xdmMeta.schemaRef", body.get("xdmMeta"))):
        if holder is None:
            continue
        if not isinstance(holder, dict):
            return err("xdmMeta must be an object", "body.xdmMeta")
        ref = holder.get("schemaRef")
        if ref is None:
            continue
        if not isinstance(ref, dict) or not isinstance(ref.get("id"), str) or not ref["id"]:
            return err("schemaRef must be an object with a non-empty string id", where + ".id")
        ct = ref.get("contentType")
        if ct is not None and (not isinstance(ct, str) or not ct.startswith(XED_CONTENT_TYPE_PREFIX)):
            return err(
                f"schemaRef.contentType must be {XED_CONTENT_TYPE_PREFIX}…, got {ct!r}",
                where + ".contentType",
            )
        refs.append((where, ref))
    if len(refs) == 2 and refs[0][1]["id"] != refs[1][1]["id"]:
        return err(
            f"header.schemaRef.id {refs[0][1]['id']!r} and body.xdmMeta.schemaRef.id {refs[1][1]['id']!r} differ",
            "body.xdmMeta.schemaRef.id",
        )
    ref_id = refs[0][1]["id"] if refs else schema_id
    content_type = refs[0][1].get("contentType") if refs else None

    ds = header.get("datasetId", dataset_id)
    if ds is None or ds == "":
        return err(
            "header.datasetId is missing and the connection has no default dataset", "header.datasetId"
        )
    if not isinstance(ds, str):
        return err("header.datasetId must be a string", "header.datasetId")
    source = header.get("source")
    source_name = source.get("name") if isinstance(source, dict) else None
    ops = header.get("operations")
    if ops is not None:
        if not isinstance(ops, dict):
            return err("header.operations must be an object", "header.operations")
        data_op = ops.get("data", "create")
        if data_op not in ("create", "merge", "delete"):
            return err(
                f"header.operations.data must be create, merge or delete, got {data_op!r}",
                "header.operations.data",
            )
    return StreamMessage(
        index,
        entity,
        ds,
        schema_id=ref_id,
        content_type=content_type if isinstance(content_type, str) else None,
        ims_org_id=_str_or_none(header.get("imsOrgId")),
        flow_id=_str_or_none(header.get("flowId")),
        source_name=_str_or_none(source_name),
        operations=ops,
    )


def _str_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) else None


__all__ = ["MessageError", "ParsedRequest", "StreamMessage", "parse_message", "parse_request"]
