"""Ingestion: batch files and streaming messages into the flow, with batches and diagnostics.

Batch files are read in chunks; every chunk is committed atomically, and while one chunk goes
through the graph and the store the next is read and checked. The batch's status, counts and
per-record error diagnostics are kept in the catalog. Streaming
messages are processed as they come, one chunk per call, acknowledged after the commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.catalog.ids import epoch_ms, new_id
from tessera.errors import Conflict, InvalidInput, NotFound, SemanticError
from tessera.flow import (
    ChunkResult,
    PreparedChunk,
    Rejection,
    apply_batch,
    prepare_batch,
    process_batch,
    process_chunk,
)
from tessera.gc_pause import gc_paused
from tessera.ingest.coalesce import StreamGroups
from tessera.ingest.files import Staging, format_of
from tessera.store import WriteBatch, get_json, scan_json

if TYPE_CHECKING:
    from tessera.platform import Sandbox

CHUNK_ROWS = 50_000
"""Rows of a batch file committed together. Large, because a commit rewrites every store page it
touches and a chunk's events land all over the per-person key space: 10k-row chunks of the demo's
web events wrote 5.5 GB for 336k events, 50k-row chunks 2.7 GB, with 25% less SQLite CPU. A
chunk's rows and staged writes stay around a hundred MB."""
INLETS = "inlets"
BULK_STREAM_ROWS = 100
"""Streaming messages grouped into one chunk go through the bulk path from this many on: it costs
a fixed ~0.5 ms per chunk and less per message (new events, measured: 26-30 µs against 31-35 µs
per message at 100, 24 against 34-45 at 500; at 16 it is 63 against 44)."""
Progress = Callable[[int], None]


class IngestService:
    """Batch and streaming ingestion for one sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self.staging = Staging(sandbox.folder / "staging")
        # concurrent streaming calls of one dataset share a chunk and its commit
        self._stream_groups = StreamGroups(self._process_stream)
        # Inlets never change once created, and every streaming request looks its inlet up (on
        # the server's event loop): remember the ones found.
        self._inlets: dict[str, dict[str, Any]] = {}

    # -- batches ---------------------------------------------------------------------------------

    def create_batch(self, dataset_id: str, input_format: str = "json") -> dict[str, Any]:
        """Open a batch for uploads (the reference ``POST /batches``)."""
        self._sandbox.datasets.get(dataset_id)
        return self._sandbox.batches.create(dataset_id, input_format)

    def upload(self, batch_id: str, file_name: str, data: bytes) -> None:
        """Store one file of an open batch (the reference ``PUT .../files/{name}``)."""
        self._require_loading(batch_id)
        self.staging.put(batch_id, file_name, data)

    def complete(self, batch_id: str, *, progress: Progress | None = None) -> dict[str, Any]:
        """Process every uploaded file of the batch and close it with its final status."""
        batch = self._require_loading(batch_id)
        files = self.staging.files(batch_id)
        if not files:
            raise SemanticError(
                f"Batch {batch_id} has no files; upload at least one before completing", path="batchId"
            )
        batch = self._sandbox.batches.set_status(batch_id, "processing")
        return self._process_staged(batch, files, progress)

    def recover(self) -> list[dict[str, Any]]:
        """Finish the batches a stopped process left ``processing``; returns them as they end.

        A batch whose uploaded files are still staged is processed again from the start: records
        land by primary identity and events by ``_id``, so rows committed before the stop are not
        stored twice. A batch with nothing staged (ingested from a local file or from memory, whose
        source is gone) is marked ``failed`` with the reason.
        """
        finished = []
        for batch in self._sandbox.batches.list():
            if batch["status"] != "processing":
                continue
            files = self.staging.files(batch["id"])
            if files:
                batch["resumed"] = int(batch.get("resumed", 0)) + 1
                self._sandbox.batches.save(batch)
                finished.append(self._process_staged(batch, files, None))
                continue
            batch.update(
                status="failed",
                completed=epoch_ms(),
                errors=[
                    {
                        "code": "INTERRUPTED",
                        "description": "The server stopped while this batch was processing and its "
                        "source is no longer available; rows committed before the stop are kept. "
                        "Ingest the data again (rows already stored are not duplicated).",
                    }
                ],
            )
            self._sandbox.batches.save(batch)
            finished.append(batch)
        return finished

    def _process_staged(
        self, batch: dict[str, Any], files: list[Path], progress: Progress | None
    ) -> dict[str, Any]:
        dataset = self._sandbox.datasets.get(batch["relatedObjects"][0]["id"])
        declared = batch["inputFormat"]["format"]
        totals = _Totals()
        started = time.perf_counter()
        for path in files:
            fmt = format_of(path.name, declared)
            try:
                rows = self._rows(path, fmt, dataset, batch)
                self._run(dataset, batch, rows, totals, progress)
            except InvalidInput as err:
                totals.file_errors.append({"file": path.name, "message": err.message})
        return self._finish(batch, totals, time.perf_counter() - started, files=[p.name for p in files])

    def abort(self, batch_id: str) -> dict[str, Any]:
        self._require_loading(batch_id)
        self.staging.drop(batch_id)
        return self._sandbox.batches.set_status(batch_id, "aborted")

    def revert(self, batch_id: str) -> dict[str, Any]:
        """Remove a finished batch's events from Profile (record batches cannot be reverted, §b9)."""
        batch = self._sandbox.batches.get(batch_id)
        if batch["status"] not in {"success", "failed"}:
            raise Conflict(f"Batch {batch_id} is {batch['status']}; only finished batches can be reverted")
        self._sandbox.profiles.delete_event_batch(batch_id)
        return self._sandbox.batches.set_status(batch_id, "reverted")

    def ingest_file(
        self,
        dataset: str,
        path: str | Path,
        *,
        fmt: str | None = None,
        mapping: dict[str, str] | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Ingest one local file into a dataset as a new batch; returns the finished batch.

        Args:
            dataset: dataset id or name.
            path: a JSON array, JSON-lines, CSV or Parquet file.
            fmt: ``json``, ``jsonl``, ``csv`` or ``parquet`` (default: from the suffix).
            mapping: CSV only: column name → XDM path.
            progress: called with the number of rows processed so far.
        """
        ds = self._sandbox.datasets.find(dataset)
        file = Path(path)
        if not file.is_file():
            raise NotFound(f"File {str(file)!r} does not exist", path="file")
        file_format = format_of(file.name, fmt)
        batch = self._sandbox.batches.create(ds["id"], file_format)
        batch = self._sandbox.batches.set_status(
            batch["id"], "processing", files=[file.name], **({"mapping": mapping} if mapping else {})
        )
        totals = _Totals()
        started = time.perf_counter()
        try:
            self._run(ds, batch, self._rows(file, file_format, ds, batch), totals, progress)
        except InvalidInput as err:
            totals.file_errors.append({"file": file.name, "message": err.message})
        return self._finish(batch, totals, time.perf_counter() - started, files=[file.name])

    def ingest_records(
        self, dataset: str, records: Iterable[dict[str, Any]], *, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Ingest in-memory records as one batch (tests, the demo, the Python API)."""
        ds = self._sandbox.datasets.find(dataset)
        batch = self._sandbox.batches.create(ds["id"], "json")
        batch = self._sandbox.batches.set_status(batch["id"], "processing")
        totals = _Totals()
        started = time.perf_counter()
        self._run(ds, batch, enumerate(records), totals, progress)
        return self._finish(batch, totals, time.perf_counter() - started, files=[])

    # -- streaming -------------------------------------------------------------------------------

    def create_inlet(
        self, name: str, *, data_type: str = "xdm", dataset_id: str | None = None
    ) -> dict[str, Any]:
        """A streaming connection; messages are posted to ``/collection/{inletId}``."""
        if data_type not in {"xdm", "raw"}:
            raise InvalidInput("dataType must be 'xdm' or 'raw'", path="auth.params.dataType")
        if dataset_id:
            self._sandbox.datasets.get(dataset_id)
        inlet_id = new_id() + new_id()[:16]
        doc = {
            "id": inlet_id,
            "name": name,
            "dataType": data_type,
            "datasetId": dataset_id,
            "inletId": inlet_id,
            "inletUrl": f"/collection/{inlet_id}",
            "created": epoch_ms(),
        }
        self._sandbox.store.write(WriteBatch().put_json(INLETS, inlet_id, doc))
        return doc

    def inlet(self, inlet_id: str) -> dict[str, Any]:
        doc = self._inlets.get(inlet_id)
        if doc is None:
            doc = get_json(self._sandbox.store, INLETS, inlet_id)
            if doc is None:
                raise NotFound(f"Streaming inlet {inlet_id!r} does not exist", path="inletId")
            self._inlets[inlet_id] = doc
        return dict(doc)

    def inlets(self) -> list[dict[str, Any]]:
        return [doc for _, doc in scan_json(self._sandbox.store, INLETS)]

    def stream(self, messages: list[Any], *, dataset_id: str | None = None) -> list[dict[str, Any]]:
        """Ingest streaming messages (reference envelopes or, with ``dataset_id``, bare XDM records).

        Returns one result per message, in order: ``{"xactionId": ...}`` when stored (durably, before
        this returns) or ``{"statusCode": 400, "message": ..., "path": ...}`` when refused.
        """
        from tessera.ingest.envelope import MessageError, parse_request

        parsed = parse_request(messages, dataset_id=dataset_id).messages
        results: list[dict[str, Any]] = [{} for _ in parsed]
        by_dataset: dict[str, list[tuple[int, Any]]] = {}
        for i, item in enumerate(parsed):
            if isinstance(item, MessageError):
                results[i] = item.to_json()
                continue
            by_dataset.setdefault(item.dataset_id, []).append((i, item.record))
        for ds_id, rows in by_dataset.items():
            try:
                accepted, rejected = self._stream_groups.submit(ds_id, rows)
            except NotFound as err:
                for i, _ in rows:
                    results[i] = {"statusCode": 404, "message": err.message}
                continue
            for i in accepted:
                results[i] = {"xactionId": f"{ds_id}-{epoch_ms()}-{i}"}
            for rej in rejected:
                results[rej.index] = {"statusCode": 400, "message": rej.message, "path": rej.path}
                self._sandbox.record_stream_rejection(ds_id, rej)
        return results

    # -- internals -------------------------------------------------------------------------------

    def _process_stream(self, ds_id: str, rows: list[tuple[int, Any]]) -> ChunkResult:
        """One chunk of streaming messages: row by row when few, through the bulk path (graph and
        writes over the whole chunk, same results) when many. Raises ``NotFound`` for an unknown
        dataset."""
        dataset = self._sandbox.datasets.get(ds_id)
        # Segment evaluation decodes every event of every touched profile (five containers an
        # event, no cycles): with a few hundred events a profile, the collector's passes over
        # them (and the identity graph) were a third of the call. See tessera.gc_pause.
        with gc_paused():
            if len(rows) >= BULK_STREAM_ROWS:
                return process_batch(self._sandbox, dataset, rows, batch_id=None)
            return process_chunk(self._sandbox, dataset, rows, batch_id=None)

    def _rows(
        self, path: Path, fmt: str, dataset: dict[str, Any], batch: dict[str, Any]
    ) -> Iterator[tuple[int, Any]]:
        from tessera.ingest.readers import end_user_ids, read_file

        source = dataset.get("identitySource")
        identity_source: Any = None
        if source == "endUserIDs":
            identity_source = end_user_ids
        elif isinstance(source, dict):
            identity_source = source.get("fields", source)
        return read_file(path, fmt, mapping=batch.get("mapping"), identity_source=identity_source)

    def _run(
        self,
        dataset: dict[str, Any],
        batch: dict[str, Any],
        rows: Iterable[tuple[int, Any]],
        totals: _Totals,
        progress: Progress | None,
    ) -> None:
        """Ingest ``rows`` chunk by chunk, reading and checking the next chunk while one is applied.

        Reading and checking a chunk (parse, normalise, validate, identities) touches neither the
        graph nor the store, so a single helper thread does it for chunk N+1 while this thread
        applies chunk N (graph, writes, commit) under the write lock it may already hold; SQLite
        and the file readers release the GIL, so the two overlap on a second core. Chunks are
        applied and counted in order, and a reading error surfaces after the chunks before it.
        """
        iterator = iter(rows)
        consumed = 0

        def read_and_check() -> tuple[PreparedChunk, dict[int, int]] | None:
            nonlocal consumed
            with gc_paused():
                chunk = list(islice(iterator, CHUNK_ROWS))
                if not chunk:
                    return None
                numbered = [(consumed + n, record) for n, (_, record) in enumerate(chunk)]
                row_numbers = {consumed + n: row_no for n, (row_no, _) in enumerate(chunk)}
                consumed += len(chunk)
                return prepare_batch(self._sandbox, dataset, numbered), row_numbers

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tessera-batch-read") as reader:
            upcoming = reader.submit(read_and_check)
            while (ready := upcoming.result()) is not None:
                prepared, row_numbers = ready
                upcoming = reader.submit(read_and_check)
                with gc_paused():
                    result = apply_batch(self._sandbox, dataset, prepared, batch_id=batch["id"])
                totals.add(result, row_numbers)
                wb = WriteBatch()
                for rej in result.rejected:
                    self._sandbox.batches.record_error(wb, batch["id"], rej.index, totals.diagnostic(rej))
                if wb.ops:
                    self._sandbox.store.write(wb)
                if progress is not None:
                    progress(totals.seen)

    def _finish(
        self, batch: dict[str, Any], totals: _Totals, seconds: float, *, files: list[str]
    ) -> dict[str, Any]:
        failed = totals.failed + len(totals.file_errors)
        if totals.accepted and not failed:
            status = "success"
        elif totals.accepted:
            status = "success"  # partial: good rows landed, failures are in the diagnostics
        else:
            status = "failed"
        batch = self._sandbox.batches.get(batch["id"])
        batch.update(
            status=status,
            completed=epoch_ms(),
            files=files,
            partial=bool(totals.accepted and failed),
            metrics={
                "inputRecordCount": totals.seen,
                "outputRecordCount": totals.accepted,
                "failedRecordCount": totals.failed,
                "inputFileCount": len(files),
                "processingSeconds": round(seconds, 3),
                "recordsPerSecond": round(totals.seen / seconds, 1) if seconds > 0 else None,
            },
        )
        if totals.file_errors:
            batch["errors"] = [
                {"code": "FILE", "description": f"{e['file']}: {e['message']}"} for e in totals.file_errors
            ]
        elif totals.failed:
            batch["errors"] = [
                {
                    "code": "RECORDS",
                    "description": f"{totals.failed} of {totals.seen} records were rejected; see the batch's failed records",
                }
            ]
        self._sandbox.batches.save(batch)
        self.staging.drop(batch["id"])
        return batch

    def _require_loading(self, batch_id: str) -> dict[str, Any]:
        batch = self._sandbox.batches.get(batch_id)
        if batch["status"] != "loading":
            raise Conflict(
                f"Batch {batch_id} is {batch['status']}; files can only be added while it is loading"
            )
        return batch


class _Totals:
    def __init__(self) -> None:
        self.seen = 0
        self.accepted = 0
        self.failed = 0
        self.file_errors: list[dict[str, str]] = []
        self._row_numbers: dict[int, int] = {}

    def add(self, result: ChunkResult, row_numbers: dict[int, int]) -> None:
        self.seen += len(result.accepted) + len(result.rejected)
        self.accepted += len(result.accepted)
        self.failed += len(result.rejected)
        self._row_numbers = row_numbers

    def diagnostic(self, rej: Rejection) -> dict[str, Any]:
        body = rej.to_json()
        body["row"] = self._row_numbers.get(rej.index, rej.index)
        return body
