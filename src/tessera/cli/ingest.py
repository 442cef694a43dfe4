"""``tessera ingest …``: batch files with a progress bar, streaming messages from stdin."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from tessera.cli.common import SharedOptions, console, emit, shared_options
from tessera.errors import NotFound
from tessera.platform import Sandbox

if TYPE_CHECKING:
    from tessera.client import TesseraClient

app = typer.Typer(
    help="Ingest data. Example: `tessera ingest file crm ./profiles.jsonl`.", no_args_is_help=True
)


@app.command("file")
@shared_options()
def ingest_file(
    opts: SharedOptions,
    dataset: Annotated[str, typer.Argument(help="Dataset id or name.")],
    files: Annotated[list[Path], typer.Argument(help="JSON, JSONL, CSV or Parquet files.")],
    fmt: Annotated[str | None, typer.Option("--format", help="json, jsonl, csv or parquet.")] = None,
) -> None:
    """Ingest files as batches, showing progress; prints each batch's status and counts.

    Example: `tessera ingest file "CRM" crm.jsonl --json` (with `--url`, through the batch API)
    """
    results = opts.run(
        remote=lambda client: _ingest_files_remote(client, dataset, files, fmt, opts.as_json),
        local=lambda sb: _ingest_files_local(sb, dataset, files, fmt, opts.as_json),
    )
    if opts.as_json:
        emit(results, True)


@app.command("stream")
@shared_options()
def ingest_stream(
    opts: SharedOptions,
    dataset: Annotated[
        str | None, typer.Option(help="Dataset for bare XDM records (envelopes name their own).")
    ] = None,
) -> None:
    """Stream messages from stdin, one JSON message (envelope or XDM record) per line.

    Example: `cat events.jsonl | tessera ingest stream --dataset web-events`
    """
    ok, failed = opts.run(
        remote=lambda client: _stream_remote(client, dataset, opts.as_json),
        local=lambda sb: _stream_local(sb, dataset, opts.as_json),
    )
    if opts.as_json:
        emit({"ingested": ok, "rejected": failed}, True)
    else:
        console.print(f"{ok} ingested, {failed} rejected")


def _advance(bar: Progress, task: TaskID, rows_done: int) -> None:
    bar.update(task, completed=rows_done)


def _ingest_files_local(
    sb: Sandbox, dataset: str, files: list[Path], fmt: str | None, as_json: bool
) -> list[Mapping[str, Any]]:
    results: list[Mapping[str, Any]] = []
    for file in files:
        with Progress(
            TextColumn(f"[bold]{file.name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=as_json,
            transient=True,
        ) as bar:
            task = bar.add_task("rows", total=None)
            batch = sb.ingest.ingest_file(dataset, file, fmt=fmt, progress=partial(_advance, bar, task))
        results.append(batch)
        if not as_json:
            _print_batch(file.name, batch)
            for err in sb.batches.errors(batch["id"], limit=5):
                console.print(
                    f"  row {err['row']}: {err['message']}"
                    + (f" at {err['path']}" if err.get("path") else "")
                )
    return results


_NOT_JSON = object()
"""Stands for a line of standard input that is not JSON (already reported)."""


def _stdin_messages() -> Iterator[tuple[int, Any]]:
    """(line number, decoded message) for each non-blank line of standard input; a line that is
    not JSON is reported here and yielded as :data:`_NOT_JSON` so that callers count it."""
    for line_no, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            yield line_no, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            console.print(f"line {line_no}: not JSON ({exc})")
            yield line_no, _NOT_JSON


def _stream_local(sb: Sandbox, dataset: str | None, as_json: bool) -> tuple[int, int]:
    """One message at a time through the sandbox's streaming flow; returns (ingested, rejected)."""
    ds_id = sb.datasets.find(dataset)["id"] if dataset else None
    ok = failed = 0
    for line_no, message in _stdin_messages():
        if message is _NOT_JSON:
            failed += 1
            continue
        result = sb.ingest.stream([message], dataset_id=ds_id)[0]
        if "xactionId" in result:
            ok += 1
        else:
            failed += 1
            if not as_json:
                console.print(f"line {line_no}: {result['message']}")
    return ok, failed


def _dataset_id(client: TesseraClient, name_or_id: str) -> dict[str, Any]:
    datasets = client.list_datasets(limit=100)
    if name_or_id in datasets:
        return {"id": name_or_id, **datasets[name_or_id]}
    for dataset_id, doc in datasets.items():
        if doc.get("name") == name_or_id:
            return {"id": dataset_id, **doc}
    raise NotFound(f"Dataset {name_or_id!r} does not exist (by id or name)", path="datasetId")


def _ingest_files_remote(
    client: TesseraClient, dataset: str, files: list[Path], fmt: str | None, as_json: bool
) -> list[Mapping[str, Any]]:
    results: list[Mapping[str, Any]] = []
    ds = _dataset_id(client, dataset)
    for file in files:
        kind = fmt or {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl"}.get(
            file.suffix.lower(), "json"
        )
        batch = client.create_batch(ds["id"], kind)
        with console.status(f"uploading {file.name}", spinner="dots") if not as_json else nullcontext():
            client.upload_file(batch["id"], ds["id"], file.name, file.read_bytes())
            client.complete_batch(batch["id"])
        done = client.get_batch(batch["id"])
        results.append(done)
        if not as_json:
            _print_batch(file.name, done)
    return results


def _print_batch(file_name: str, batch: Mapping[str, Any]) -> None:
    """One line per ingested file, the same for a data directory and a server."""
    m = batch["metrics"]
    console.print(
        f"{file_name}: batch {batch['id']} {batch['status']}: {m['outputRecordCount']} ingested, "
        f"{m['failedRecordCount']} rejected"
    )


def _stream_remote(client: TesseraClient, dataset: str | None, as_json: bool) -> tuple[int, int]:
    """Through a streaming connection, 500 messages per ``/collection/batch`` call; returns
    (ingested, rejected)."""
    ok = failed = 0
    ds = _dataset_id(client, dataset) if dataset else None
    inlet = client.create_connection("tessera-cli")["id"]

    def flush(chunk: list[tuple[int, dict[str, Any]]]) -> None:
        nonlocal ok, failed
        if not chunk:
            return
        answers = client.send_messages(inlet, [m for _, m in chunk])["responses"]
        for (line_no, _), answer in zip(chunk, answers, strict=True):
            if "xactionId" in answer:
                ok += 1
            else:
                failed += 1
                if not as_json:
                    console.print(f"line {line_no}: {answer.get('message')}")
        chunk.clear()

    pending: list[tuple[int, dict[str, Any]]] = []
    for line_no, message in _stdin_messages():
        if message is _NOT_JSON:
            failed += 1
            continue
        if ds is not None and not (isinstance(message, dict) and "header" in message):
            ref = {
                "id": ds["schemaRef"]["id"],
                "contentType": "application/vnd.adobe.xed-full+json;version=1",
            }
            message = {
                "header": {"schemaRef": ref, "datasetId": ds["id"]},
                "body": {"xdmMeta": {"schemaRef": ref}, "xdmEntity": message},
            }
        pending.append((line_no, message))
        if len(pending) >= 500:
            flush(pending)
    flush(pending)
    return ok, failed
