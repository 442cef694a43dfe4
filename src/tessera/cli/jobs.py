"""``tessera job …`` (segment jobs, watched until they finish) and ``tessera export …``."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from tessera.cli.common import (
    ApiKeyOption,
    HomeOption,
    JsonOption,
    SandboxOption,
    UrlOption,
    emit,
    open_client,
    open_sandbox,
)

job_app = typer.Typer(help="Segment jobs. Example: `tessera job watch <jobId>`.", no_args_is_help=True)
export_app = typer.Typer(
    help="Export jobs. Example: `tessera export run <segmentId> --format csv`.", no_args_is_help=True
)
RUNNING = ("NEW", "QUEUED", "PROCESSING", "CANCELLING")
IntervalOption = Annotated[float, typer.Option("--interval", help="Seconds between polls.")]


def watch_remote(client: Any, job_id: str, interval: float = 0.5) -> dict[str, Any]:
    """Poll a segment job over HTTP until it leaves the running states."""
    job: dict[str, Any] = dict(client.get_segment_job(job_id))
    while job["status"] in RUNNING:
        time.sleep(interval)
        job = dict(client.get_segment_job(job_id))
    return job


@job_app.command("watch")
def job_watch(
    job_id: str,
    interval: IntervalOption = 0.5,
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Wait for a segment job to finish and print it (exit code 1 when it failed).

    Example: `tessera job watch d3b4a50d-dfea-43eb-9fca-557ea53771fd --url http://127.0.0.1:8000`
    """
    if url:
        with open_client(url, api_key, sandbox) as client:
            job = watch_remote(client, job_id, interval)
    else:
        with open_sandbox(home, sandbox) as sb:
            job = sb.segments.job(job_id)
            while job["status"] in RUNNING:
                time.sleep(interval)
                job = sb.segments.job(job_id)
    emit(job, as_json)
    if job["status"] == "FAILED":
        raise typer.Exit(1)


@job_app.command("list")
def job_list(
    status: Annotated[
        str | None, typer.Option(help="NEW, PROCESSING, SUCCEEDED, FAILED or CANCELLED.")
    ] = None,
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List segment jobs, newest first. Example: `tessera job list --status SUCCEEDED --json`."""
    if url:
        with open_client(url, api_key, sandbox) as client:
            emit(client.list_segment_jobs(status=status)["children"], as_json)
        return
    with open_sandbox(home, sandbox) as sb:
        emit(sb.segments.jobs(status=status), as_json)


@export_app.command("run")
def export_run(
    segment_id: str,
    fmt: Annotated[str, typer.Option("--format", help="csv, parquet or jsonl.")] = "jsonl",
    fields: Annotated[
        str, typer.Option(help="Comma-separated XDM paths.")
    ] = "identities.id,personalEmail.address",
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Export a segment's members (the job is finished when this returns).

    Example: `tessera export run <segmentId> --format csv --fields identities.id,person.name`
    """
    from tessera.cli.segment import export_body

    body = export_body(segment_id, fmt, fields)
    if url:
        with open_client(url, api_key, sandbox) as client:
            emit(client.create_export(body), as_json)
        return
    with open_sandbox(home, sandbox) as sb:
        emit(sb.segments.activation.exports.create(body), as_json)


@export_app.command("list")
def export_list(
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List export jobs. Example: `tessera export list --json`."""
    if url:
        with open_client(url, api_key, sandbox) as client:
            emit(client.list_exports()["records"], as_json)
        return
    with open_sandbox(home, sandbox) as sb:
        emit(sb.segments.activation.exports.list(), as_json)


@export_app.command("get")
def export_get(
    export_id: str,
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Show one export job with its file and counts. Example: `tessera export get <exportJobId>`."""
    if url:
        with open_client(url, api_key, sandbox) as client:
            emit(client.get_export(export_id), as_json)
        return
    with open_sandbox(home, sandbox) as sb:
        emit(sb.segments.activation.exports.get(export_id), as_json)
