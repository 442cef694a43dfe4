"""Datasets and batches: the Catalog's view of what data arrived where.

Documents follow the reference Catalog shapes (``spec/aep.md`` §b13-§b14): a dataset has
``name``, ``schemaRef`` and ``tags`` (``unifiedProfile``/``unifiedIdentity``, ``isUpsert``);
a batch has ``status``, ``relatedObjects`` and ``metrics``, and its rejected records are kept as
error diagnostics, one entry per record, in their own table.
"""

from __future__ import annotations

import builtins
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from tessera.catalog.ids import epoch_ms, new_id
from tessera.errors import Conflict, InvalidInput, NotFound
from tessera.store import PointStore, WriteBatch, dump_json, get_json, key, scan_json

DATASETS = "datasets"
BATCHES = "batches"
BATCH_ERRORS = "batch_errors"

BATCH_STATES = ("loading", "processing", "success", "failed", "aborted", "reverted")
NAME_RE = re.compile(r"^[^\x00-\x1f]{1,256}$")


class Datasets:
    """Create, read, patch and delete datasets of one sandbox.

    :meth:`get` answers from the stored document as read at most :attr:`CACHE_SECONDS` ago:
    every streaming call reads its dataset, and a point read right after a commit costs ~17 µs
    on the embedded store (the readers' page caches start cold after every write), about a tenth
    of a one-message call. This process's own changes are seen at once; another process's within
    that time. Patches and deletes always start from the stored document.
    """

    CACHE_SECONDS = 1.0

    def __init__(self, store: PointStore, schema_exists: Callable[[str], bool] | None = None) -> None:
        self._store = store
        # the catalog sits below the schema registry in the flow, so it is told how to ask
        self._schema_exists = schema_exists
        self._read: dict[str, tuple[float, bytes]] = {}  # id → (when read, stored bytes)

    def _save(self, doc: dict[str, Any]) -> None:
        raw = dump_json(doc)
        self._store.write(WriteBatch().put(DATASETS, doc["id"], raw))
        self._read[doc["id"]] = (time.monotonic(), raw)

    def _stored(self, dataset_id: str) -> dict[str, Any]:
        raw = self._store.get(DATASETS, dataset_id)
        if raw is None:
            self._read.pop(dataset_id, None)
            raise NotFound(f"Dataset {dataset_id!r} does not exist", path="datasetId")
        self._read[dataset_id] = (time.monotonic(), raw)
        doc: dict[str, Any] = orjson.loads(raw)
        return doc

    def create(
        self,
        name: str,
        schema_id: str,
        *,
        profile: bool = True,
        identity: bool = True,
        upsert: bool = False,
        description: str = "",
        identity_source: dict[str, Any] | str | None = None,
        dataset_id: str | None = None,
    ) -> dict[str, Any]:
        """Create a dataset for a schema, enabled for Profile and Identity by default.

        Args:
            name: display name, unique in the sandbox.
            schema_id: ``$id`` of the schema the records conform to.
            profile: load records into Real-Time Profile (``unifiedProfile`` tag).
            identity: feed the identity graph (``unifiedIdentity`` tag).
            upsert: record datasets only; new records update supplied attributes instead of replacing.
            description: free text.
            identity_source: where identities come from besides ``identityMap`` and descriptors
                (``{"fields": {"<path>": "<namespace>"}}``), for data such as the Luma events.
            dataset_id: use this id instead of minting one (tests, restores).
        """
        if not NAME_RE.match(name or ""):
            raise InvalidInput("Dataset name must be 1-256 printable characters", path="name")
        if any(d["name"] == name for d in self.list()):
            raise Conflict(f"A dataset named {name!r} already exists", path="name")
        if self._schema_exists is not None and not self._schema_exists(schema_id):
            raise InvalidInput(
                f"Schema {schema_id!r} does not exist in this sandbox; create it in the schema registry first "
                "(a dataset's records are validated against its schema)",
                path="schemaRef.id",
            )
        now = epoch_ms()
        tags: dict[str, list[str]] = {
            "unifiedProfile": ["enabled:true" if profile else "enabled:false"]
            + (["isUpsert:true"] if upsert else []),
            "unifiedIdentity": ["enabled:true" if identity else "enabled:false"],
        }
        doc: dict[str, Any] = {
            "id": dataset_id or new_id(),
            "name": name,
            "description": description,
            "schemaRef": {"id": schema_id, "contentType": "application/vnd.adobe.xed+json;version=1"},
            "tags": tags,
            "created": now,
            "updated": now,
            "version": "1.0.0",
        }
        if identity_source:
            doc["identitySource"] = identity_source
        self._save(doc)
        return doc

    def get(self, dataset_id: str) -> dict[str, Any]:
        """The dataset's document (a fresh copy: callers may change it)."""
        hit = self._read.get(dataset_id)
        if hit is not None and time.monotonic() - hit[0] < self.CACHE_SECONDS:
            doc: dict[str, Any] = orjson.loads(hit[1])
            return doc
        return self._stored(dataset_id)

    def find(self, name_or_id: str) -> dict[str, Any]:
        """A dataset by id or by exact name."""
        doc = get_json(self._store, DATASETS, name_or_id)
        if doc is not None:
            return dict(doc)
        for candidate in self.list():
            if candidate["name"] == name_or_id:
                return candidate
        raise NotFound(f"Dataset {name_or_id!r} does not exist (by id or name)", path="datasetId")

    def list(self) -> list[dict[str, Any]]:
        return [doc for _, doc in scan_json(self._store, DATASETS)]

    def patch(self, dataset_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Update ``name``, ``description`` or ``tags`` (the reference PATCH of Catalog)."""
        doc = self._stored(dataset_id)
        unknown = set(changes) - {"name", "description", "tags", "identitySource"}
        if unknown:
            raise InvalidInput(
                f"Cannot change {', '.join(sorted(unknown))} of a dataset", path=sorted(unknown)[0]
            )
        if "tags" in changes:
            tags = changes["tags"]
            if not isinstance(tags, dict) or not all(isinstance(v, list) for v in tags.values()):
                raise InvalidInput("tags must be an object of string lists", path="tags")
            doc["tags"] = {**doc["tags"], **tags}
        for field_name in ("name", "description", "identitySource"):
            if field_name in changes:
                doc[field_name] = changes[field_name]
        doc["updated"] = epoch_ms()
        self._save(doc)
        return doc

    def delete(self, dataset_id: str) -> None:
        self._stored(dataset_id)
        self._store.write(WriteBatch().delete(DATASETS, dataset_id))
        self._read.pop(dataset_id, None)


def profile_enabled(dataset: dict[str, Any]) -> bool:
    return "enabled:true" in dataset.get("tags", {}).get("unifiedProfile", [])


def identity_enabled(dataset: dict[str, Any]) -> bool:
    return "enabled:true" in dataset.get("tags", {}).get("unifiedIdentity", [])


def upsert_enabled(dataset: dict[str, Any]) -> bool:
    return "isUpsert:true" in dataset.get("tags", {}).get("unifiedProfile", [])


class Batches:
    """Batches of one sandbox: status, counts and per-record error diagnostics."""

    def __init__(self, store: PointStore, schema_exists: Callable[[str], bool] | None = None) -> None:
        self._store = store
        # the catalog sits below the schema registry in the flow, so it is told how to ask
        self._schema_exists = schema_exists

    def create(
        self, dataset_id: str, input_format: str = "json", *, batch_id: str | None = None
    ) -> dict[str, Any]:
        if input_format not in {"json", "jsonl", "csv", "parquet"}:
            raise InvalidInput(
                f"Unsupported input format {input_format!r}; use json, jsonl, csv or parquet",
                path="inputFormat.format",
            )
        now = epoch_ms()
        doc: dict[str, Any] = {
            "id": batch_id or new_id(),
            "status": "loading",
            "relatedObjects": [{"type": "dataSet", "id": dataset_id}],
            "inputFormat": {"format": input_format},
            "created": now,
            "updated": now,
            "version": "1.0.0",
            "tags": {},
            "files": [],
            "metrics": {"inputRecordCount": 0, "outputRecordCount": 0, "failedRecordCount": 0},
        }
        self._store.write(WriteBatch().put_json(BATCHES, doc["id"], doc))
        return doc

    def get(self, batch_id: str) -> dict[str, Any]:
        doc = get_json(self._store, BATCHES, batch_id)
        if doc is None:
            raise NotFound(f"Batch {batch_id!r} does not exist", path="batchId")
        return dict(doc)

    def list(self, dataset_id: str | None = None) -> list[dict[str, Any]]:
        docs = [doc for _, doc in scan_json(self._store, BATCHES)]
        if dataset_id:
            docs = [d for d in docs if d["relatedObjects"][0]["id"] == dataset_id]
        return sorted(docs, key=lambda d: d["created"], reverse=True)

    def save(self, doc: dict[str, Any], batch: WriteBatch | None = None) -> None:
        doc["updated"] = epoch_ms()
        wb = batch if batch is not None else WriteBatch()
        wb.put_json(BATCHES, doc["id"], doc)
        if batch is None:
            self._store.write(wb)

    def set_status(self, batch_id: str, status: str, **fields: Any) -> dict[str, Any]:
        if status not in BATCH_STATES:
            raise InvalidInput(f"unknown batch status {status!r}", path="status")
        doc = self.get(batch_id)
        doc["status"] = status
        doc.update(fields)
        self.save(doc)
        return doc

    def record_error(self, batch: WriteBatch, batch_id: str, index: int, error: dict[str, Any]) -> None:
        batch.put_json(BATCH_ERRORS, key(batch_id, f"{index:012d}"), error)

    def record_stream_error(self, dataset_id: str, error: dict[str, Any]) -> None:
        """Keep a refused streaming message (streaming has no batch; diagnostics are per dataset)."""
        record_stream_error(self._store, dataset_id, {**error, "at": epoch_ms()})

    def stream_errors(self, dataset_id: str, limit: int = 100) -> builtins.list[dict[str, Any]]:
        return [doc for _, doc in scan_json(self._store, STREAM_ERRORS, key(dataset_id, ""), limit=limit)]

    def errors(
        self, batch_id: str, *, limit: int | None = None, start_after: int | None = None
    ) -> Iterator[dict[str, Any]]:
        after = None if start_after is None else key(batch_id, f"{start_after:012d}")
        for _, doc in scan_json(self._store, BATCH_ERRORS, key(batch_id, ""), start_after=after, limit=limit):
            yield doc


STREAM_ERRORS = "stream_errors"


def _stream_error_key(dataset_id: str) -> str:
    return key(dataset_id, f"{epoch_ms():015d}", new_id())


def record_stream_error(store: PointStore, dataset_id: str, error: dict[str, Any]) -> None:
    store.write(WriteBatch().put_json(STREAM_ERRORS, _stream_error_key(dataset_id), error))
