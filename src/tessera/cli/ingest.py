"""``tessera ingest …``: batch files with a progress bar, streaming messages from stdin."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from tessera.cli.common import HomeOption, JsonOption, SandboxOption, console, emit, open_sandbox

app = typer.Typer(
    help="Ingest data. Example: `tessera ingest file crm ./profiles.jsonl`.", no_args_is_help=True
)


@app.command("file")
def ingest_file(
    dataset: Annotated[str, typer.Argument(help="Dataset id or name.")],
    files: Annotated[list[Path], typer.Argument(help="JSON, JSONL, CSV or Parquet files.")],
    fmt: Annotated[str | None, typer.Option("--format", help="json, jsonl, csv or parquet.")] = None,
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
) -> None:
    """Ingest files as batches, showing progress; prints each batch's status and counts.

    Example: `tessera ingest file "CRM" crm.jsonl --json`
    """
    results = []
    with open_sandbox(home, sandbox) as sb:
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
                m = batch["metrics"]
                console.print(
                    f"{file.name}: batch {batch['id']} {batch['status']}: {m['outputRecordCount']} ingested, "
                    f"{m['failedRecordCount']} rejected"
                )
                for err in sb.batches.errors(batch["id"], limit=5):
                    console.print(
                        f"  row {err['row']}: {err['message']}"
                        + (f" at {err['path']}" if err.get("path") else "")
                    )
    if as_json:
        emit(results, True)


@app.command("stream")
def ingest_stream(
    dataset: Annotated[
        str | None, typer.Option(help="Dataset for bare XDM records (envelopes name their own).")
    ] = None,
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
) -> None:
    """Stream messages from stdin, one JSON message (envelope or XDM record) per line.

    Example: `cat events.jsonl | tessera ingest stream --dataset web-events`
    """
    with open_sandbox(home, sandbox) as sb:
        ds_id = sb.datasets.find(dataset)["id"] if dataset else None
        ok = failed = 0
        for line_no, line in enumerate(sys.stdin, 1):
            if not line.strip():
                continue
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                failed += 1
                console.print(f"line {line_no}: not JSON ({exc})")
                continue
            result = sb.ingest.stream([message], dataset_id=ds_id)[0]
            if "xactionId" in result:
                ok += 1
            else:
                failed += 1
                if not as_json:
                    console.print(f"line {line_no}: {result['message']}")
        summary = {"ingested": ok, "rejected": failed}
        emit(summary, as_json) if as_json else console.print(f"{ok} ingested, {failed} rejected")


def _advance(bar: Progress, task: TaskID, rows_done: int) -> None:
    bar.update(task, completed=rows_done)
