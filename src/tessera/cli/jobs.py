"""``tessera job …`` (segment jobs, watched until they finish) and ``tessera export …``."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from tessera.cli.common import SharedOptions, shared_options
from tessera.platform import Sandbox

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
@shared_options()
def job_watch(opts: SharedOptions, job_id: str, interval: IntervalOption = 0.5) -> None:
    """Wait for a segment job to finish and print it (exit code 1 when it failed).

    Example: `tessera job watch d3b4a50d-dfea-43eb-9fca-557ea53771fd --url http://127.0.0.1:8000`
    """

    def local(sb: Sandbox) -> dict[str, Any]:
        job: dict[str, Any] = sb.segments.job(job_id)
        while job["status"] in RUNNING:
            time.sleep(interval)
            job = sb.segments.job(job_id)
        return job

    job = opts.run(remote=lambda client: watch_remote(client, job_id, interval), local=local)
    opts.emit(job)
    if job["status"] == "FAILED":
        raise typer.Exit(1)


@job_app.command("list")
@shared_options()
def job_list(
    opts: SharedOptions,
    status: Annotated[
        str | None, typer.Option(help="NEW, PROCESSING, SUCCEEDED, FAILED or CANCELLED.")
    ] = None,
) -> None:
    """List segment jobs, newest first. Example: `tessera job list --status SUCCEEDED --json`."""
    opts.emit(
        opts.run(
            remote=lambda client: client.list_segment_jobs(status=status)["children"],
            local=lambda sb: sb.segments.jobs(status=status),
        )
    )


@export_app.command("run")
@shared_options()
def export_run(
    opts: SharedOptions,
    segment_id: str,
    fmt: Annotated[str, typer.Option("--format", help="csv, parquet or jsonl.")] = "jsonl",
    fields: Annotated[
        str, typer.Option(help="Comma-separated XDM paths.")
    ] = "identities.id,personalEmail.address",
) -> None:
    """Export a segment's members (the job is finished when this returns).

    Example: `tessera export run <segmentId> --format csv --fields identities.id,person.name`
    """
    from tessera.cli.segment import export_body

    body = export_body(segment_id, fmt, fields)
    opts.emit(
        opts.run(
            remote=lambda client: client.create_export(body),
            local=lambda sb: sb.segments.activation.exports.create(body),
        )
    )


@export_app.command("list")
@shared_options()
def export_list(opts: SharedOptions) -> None:
    """List export jobs. Example: `tessera export list --json`."""
    opts.emit(
        opts.run(
            remote=lambda client: client.list_exports()["records"],
            local=lambda sb: sb.segments.activation.exports.list(),
        )
    )


@export_app.command("get")
@shared_options()
def export_get(opts: SharedOptions, export_id: str) -> None:
    """Show one export job with its file and counts. Example: `tessera export get <exportJobId>`."""
    opts.emit(
        opts.run(
            remote=lambda client: client.get_export(export_id),
            local=lambda sb: sb.segments.activation.exports.get(export_id),
        )
    )
