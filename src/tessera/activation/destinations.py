"""Destinations: a webhook that streams membership changes, and a file destination on a schedule.

Webhook delivery is at-least-once through a durable outbox: every membership change of an
activated segment is appended to the ``outbox`` table *in the same store write* as the
membership itself, under ``<destination id>|<sequence>``. The deliverer sends the oldest
pending entries in batches, signed with HMAC-SHA256 of the body, and deletes them only after a
2xx answer; on failure it backs off exponentially and retries the same batch, so changes arrive
in order (per profile and overall) and a restart resumes from what is still in the table.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from tessera.activation.exports import FORMATS, profile_rows, select_members, write_file
from tessera.errors import InvalidInput, NotFound
from tessera.ingest.files import safe_file_name
from tessera.model import format_time, parse_time, utcnow
from tessera.segments import memberships as ms
from tessera.store import PointStore, WriteBatch, dump_json, get_json, key, scan_json

if TYPE_CHECKING:
    from tessera.platform import Sandbox

DESTINATIONS = "destinations"
OUTBOX = "outbox"
OUTBOX_SEQ = "outbox_seq"
DELIVERY_STATE = "destination_state"
SIGNATURE_HEADER = "X-Tessera-Signature"


def sign(secret: str, body: bytes) -> str:
    """The signature header value: ``sha256=<hex HMAC-SHA256 of the raw body>``.

    >>> sign("k", b"{}")
    'sha256=add853b103fbcc936a194f9eb15e29c4ff08af6e47d5d1bca4f20218e31e4fff'
    """
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempts: int, base: float, cap: float) -> float:
    """Seconds to wait after ``attempts`` consecutive failures (exponential, capped).

    >>> [backoff(n, 0.5, 4.0) for n in range(1, 6)]
    [0.5, 1.0, 2.0, 4.0, 4.0]
    """
    return float(min(cap, base * 2 ** (attempts - 1)))


def _identities(store: PointStore, profile_id: str) -> list[dict[str, Any]]:
    """``[{namespace, id, primary?}]`` of a profile as materialised (empty when it is gone)."""
    doc = get_json(store, "profiles", profile_id) or {}
    out = []
    for ident in doc.get("identities") or []:
        ns = ident.get("namespace")
        code = ns.get("code") if isinstance(ns, Mapping) else ns
        item: dict[str, Any] = {"namespace": code, "id": ident.get("id")}
        if ident.get("primary"):
            item["primary"] = True
        out.append(item)
    return out


class Destinations:
    """Webhook and file destinations of one sandbox."""

    def __init__(self, sandbox: Sandbox, root: Path) -> None:
        self._sandbox = sandbox
        self._root = root
        self._client: httpx.Client | None = None

    @property
    def store(self) -> PointStore:
        return self._sandbox.store

    # -- CRUD -------------------------------------------------------------------------------------------

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create a destination.

        Webhook: ``{"type": "webhook", "name", "url", "secret", "segments": [ids], "batchSize": 100,
        "backoffSeconds": 0.5, "maxBackoffSeconds": 300}``.
        File: ``{"type": "file", "name", "segments": [ids], "format": "csv|parquet|jsonl", "folder",
        "mode": "full|incremental", "fields": "..."}`` (run on a schedule of type ``export`` whose
        ``properties.destinationId`` names it).
        """
        kind = body.get("type")
        segments = body.get("segments")
        if not isinstance(segments, list) or not all(isinstance(s, str) for s in segments):
            raise InvalidInput("segments must be a list of segment ids", path="segments")
        doc: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "type": kind,
            "name": str(body.get("name", "")),
            "segments": segments,
            "createdAt": format_time(utcnow()),
        }
        if kind == "webhook":
            url = body.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise InvalidInput("url must be an http(s) URL", path="url")
            secret = body.get("secret")
            if not isinstance(secret, str) or len(secret) < 8:
                raise InvalidInput("secret must be a string of at least 8 characters", path="secret")
            doc.update(
                {
                    "url": url,
                    "secret": secret,
                    "batchSize": int(body.get("batchSize", 100)),
                    "backoffSeconds": float(body.get("backoffSeconds", 0.5)),
                    "maxBackoffSeconds": float(body.get("maxBackoffSeconds", 300.0)),
                    "timeoutSeconds": float(body.get("timeoutSeconds", 10.0)),
                }
            )
        elif kind == "file":
            fmt = body.get("format", "csv")
            if fmt not in FORMATS:
                raise InvalidInput(f"format must be one of {', '.join(FORMATS)}", path="format")
            mode = body.get("mode", "full")
            if mode not in {"full", "incremental"}:
                raise InvalidInput("mode must be full or incremental", path="mode")
            doc.update(
                {
                    "format": fmt,
                    "mode": mode,
                    "fields": str(body.get("fields", "identities")),
                    # a caller may name a sub-folder of this sandbox's destinations folder, never
                    # a place of its own choosing on the server's disk
                    "folder": str(self._root / safe_file_name(str(body.get("folder") or doc["id"]))),
                }
            )
        else:
            raise InvalidInput("type must be webhook or file", path="type")
        self.store.write(WriteBatch().put_json(DESTINATIONS, doc["id"], doc))
        return doc

    def get(self, dest_id: str) -> dict[str, Any]:
        doc = get_json(self.store, DESTINATIONS, dest_id)
        if doc is None:
            raise NotFound(f"Destination {dest_id} does not exist", path="id")
        result: dict[str, Any] = doc
        return result

    def list(self) -> builtins.list[dict[str, Any]]:
        return [doc for _, doc in scan_json(self.store, DESTINATIONS)]

    def delete(self, dest_id: str) -> None:
        self.get(dest_id)
        wb = WriteBatch().delete(DESTINATIONS, dest_id).delete(DELIVERY_STATE, dest_id)
        for k, _ in self.store.scan(OUTBOX, key(dest_id, "")):
            wb.delete(OUTBOX, k)
        self.store.write(wb)

    def activated_segments(self) -> set[str]:
        """Segments whose membership changes some webhook destination delivers."""
        return {sid for d in self.list() if d["type"] == "webhook" for sid in d["segments"]}

    def uses_segment(self, seg_id: str) -> bool:
        return any(seg_id in d["segments"] for d in self.list())

    # -- outbox -----------------------------------------------------------------------------------------

    def enqueue(self, store: PointStore, wb: WriteBatch, changes: builtins.list[ms.Change]) -> None:
        """Change listener: append the changes of activated segments to each webhook's outbox."""
        for dest in self.list():
            if dest["type"] != "webhook":
                continue
            wanted = set(dest["segments"])
            mine = [c for c in changes if c.segment_id in wanted]
            if not mine:
                continue
            raw = store.get(OUTBOX_SEQ, dest["id"])
            seq = int(raw) if raw else 0
            for change in mine:
                seq += 1
                body = change.to_json()
                body["identities"] = _identities(store, change.profile_id)
                wb.put(OUTBOX, key(dest["id"], f"{seq:015d}"), dump_json(body))
            # written at once so a second listener call before ``wb`` lands continues the sequence
            store.write(WriteBatch().put(OUTBOX_SEQ, dest["id"], str(seq).encode()))

    def forget(self, profile_ids: set[str], identity_values: Sequence[str]) -> int:
        """Privacy delete: drop pending webhook deliveries about these people (they would send the
        deleted identities out again). Returns how many were dropped."""
        values = [orjson.dumps(v) for v in identity_values]
        wb = WriteBatch()
        for k, raw in self.store.scan(OUTBOX):
            body = orjson.loads(raw)
            if body.get("profileId") in profile_ids or any(v in raw for v in values):
                wb.delete(OUTBOX, k)
        self.store.write(wb)
        return len(wb.ops)

    def pending(self, dest_id: str) -> int:
        return self.store.count(OUTBOX, key(dest_id, ""))

    def state(self, dest_id: str) -> dict[str, Any]:
        """Delivery state: consecutive failures, next attempt time, delivered count, last error."""
        doc = get_json(self.store, DELIVERY_STATE, dest_id)
        result: dict[str, Any] = doc or {
            "attempts": 0,
            "nextAttempt": None,
            "delivered": 0,
            "lastError": None,
        }
        return result

    def deliver(self, now: datetime | None = None, *, force: bool = False) -> int:
        """Send what is due to every webhook destination; returns how many changes were delivered.

        ``force`` ignores the backoff wait (tests and manual retries).
        """
        delivered = 0
        for dest in self.list():
            if dest["type"] == "webhook":
                delivered += self._deliver_one(dest, now or utcnow(), force)
        return delivered

    def _deliver_one(self, dest: dict[str, Any], now: datetime, force: bool) -> int:
        state = self.state(dest["id"])
        if not force and state["nextAttempt"] and parse_time(state["nextAttempt"]) > now:
            return 0
        total = 0
        while True:
            entries = list(self.store.scan(OUTBOX, key(dest["id"], ""), limit=dest["batchSize"]))
            if not entries:
                return total
            changes = [orjson.loads(v) for _, v in entries]
            first, last = entries[0][0].rsplit("\x1f", 1)[1], entries[-1][0].rsplit("\x1f", 1)[1]
            body = orjson.dumps(
                {"destinationId": dest["id"], "deliveryId": f"{int(first)}-{int(last)}", "changes": changes}
            )
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(dest["secret"], body),
                "X-Tessera-Delivery": f"{int(first)}-{int(last)}",
            }
            error: str | None = None
            try:
                if self._client is None:
                    self._client = httpx.Client()
                resp = self._client.post(
                    dest["url"], content=body, headers=headers, timeout=dest["timeoutSeconds"]
                )
                if not 200 <= resp.status_code < 300:
                    error = f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            wb = WriteBatch()
            if error is not None:
                state["attempts"] += 1
                wait = backoff(state["attempts"], dest["backoffSeconds"], dest["maxBackoffSeconds"])
                state["nextAttempt"] = format_time(now + timedelta(seconds=wait))
                state["lastError"] = error
                self.store.write(wb.put_json(DELIVERY_STATE, dest["id"], state))
                return total
            for k, _ in entries:
                wb.delete(OUTBOX, k)
            state.update({"attempts": 0, "nextAttempt": None, "delivered": state["delivered"] + len(entries)})
            self.store.write(wb.put_json(DELIVERY_STATE, dest["id"], state))
            total += len(entries)

    # -- file destinations --------------------------------------------------------------------------------

    def run_file(self, dest_id: str, now: datetime | None = None) -> dict[str, Any]:
        """Write one file of the destination's audience members (all, or changed since the last run)."""
        dest = self.get(dest_id)
        if dest["type"] != "file":
            raise InvalidInput(f"Destination {dest_id} is not a file destination", path="id")
        now = now or utcnow()
        state = self.state(dest_id)
        since = (
            parse_time(state["lastRun"]) if dest["mode"] == "incremental" and state.get("lastRun") else None
        )
        statuses = (
            ["realized", "existing", "exited"] if dest["mode"] == "incremental" else ["realized", "existing"]
        )
        members = select_members(
            self._sandbox, [{"segmentId": s, "status": statuses} for s in dest["segments"]], since=since
        )
        rows = profile_rows(
            self._sandbox, members, [f.strip() for f in dest["fields"].split(",") if f.strip()]
        )
        stamp = now.strftime("%Y%m%dT%H%M%S")
        path = Path(dest["folder"]) / f"{dest['mode']}-{stamp}.{dest['format']}"
        write_file(rows, path, dest["format"])
        state["lastRun"] = format_time(now)
        self.store.write(WriteBatch().put_json(DELIVERY_STATE, dest_id, state))
        return {"destinationId": dest_id, "path": str(path), "profiles": len(rows), "mode": dest["mode"]}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


__all__ = ["DESTINATIONS", "OUTBOX", "SIGNATURE_HEADER", "Destinations", "backoff", "sign"]
