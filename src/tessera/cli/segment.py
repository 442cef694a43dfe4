"""``tessera segment …``: definitions, evaluation, estimates, explanations, jobs and exports."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tessera.cli.common import SharedOptions, console, emit, no_profile, profile_or_exit, shared_options
from tessera.model import Identity
from tessera.platform import Sandbox

if TYPE_CHECKING:
    from tessera.client import TesseraClient

app = typer.Typer(
    help='Segments in PQL. Example: `tessera segment create "US people" \'homeAddress.countryCode = "US"\'`.',
    no_args_is_help=True,
)


def _body(name: str, expression: str, streaming: bool, edge: bool, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "schema": {"name": "_xdm.context.profile"},
        "expression": {"type": "PQL", "format": "pql/text", "value": expression},
        "evaluationInfo": {
            "batch": {"enabled": not streaming},
            "continuous": {"enabled": streaming},
            "synchronous": {"enabled": edge},
        },
    }


@app.command("create")
@shared_options()
def create(
    opts: SharedOptions,
    name: str,
    expression: Annotated[str, typer.Argument(help="PQL text.")],
    streaming: Annotated[
        bool, typer.Option("--streaming", help="Evaluate continuously as data arrives.")
    ] = False,
    edge: Annotated[bool, typer.Option("--edge", help="Also allow synchronous (edge) evaluation.")] = False,
    description: Annotated[str, typer.Option(help="Free text.")] = "",
) -> None:
    """Create a segment definition (checked against the union schema; streaming eligibility explained).

    Example: `tessera segment create "Buyers 3h" 'xEvent[eventType = "commerce.purchases" and timestamp occurs < 3 hours before now].count() > 0' --streaming`
    """
    body = _body(name, expression, streaming, edge, description)
    opts.emit(
        opts.run(remote=lambda client: client.create_segment(body), local=lambda sb: sb.segments.create(body))
    )


@app.command("list")
@shared_options()
def list_segments(opts: SharedOptions) -> None:
    """List segment definitions. Example: `tessera segment list`."""
    segments: Sequence[Mapping[str, Any]] = opts.run(
        remote=lambda client: list(client.list_segments(limit=1000)["segments"]),
        local=lambda sb: sb.segments.definitions.list(limit=10_000)["segments"],
    )
    if opts.as_json:
        emit(segments, True)
        return
    table = Table("id", "name", "streaming", "expression")
    for seg in segments:
        table.add_row(
            seg["id"],
            seg["name"],
            "yes" if seg["evaluationInfo"]["continuous"]["enabled"] else "",
            seg["expression"]["value"][:60],
        )
    console.print(table)


@app.command("evaluate")
@shared_options()
def evaluate(
    opts: SharedOptions,
    segment_ids: Annotated[list[str] | None, typer.Argument(help="Segment ids (default: all).")] = None,
) -> None:
    """Run a batch segment job now and print its status and counts. Example: `tessera segment evaluate`."""
    started = time.perf_counter()
    with console.status("evaluating segments…"):
        job: dict[str, Any] = opts.run(
            remote=lambda client: dict(client.run_segment_job(segment_ids or ["*"])),
            local=lambda sb: sb.segments.run_job(
                [{"segmentId": s} for s in segment_ids] if segment_ids else None
            ),
        )
    if opts.as_json:
        emit(job, True)
        return
    console.print(f"job {job['id']}: {job['status']} in {time.perf_counter() - started:.1f} s")
    for seg_id, count in job.get("metrics", {}).get("segmentedProfileCounter", {}).items():
        console.print(f"  {seg_id}: {count} profiles")


@app.command("estimate")
@shared_options()
def estimate(
    opts: SharedOptions, expression: Annotated[str, typer.Argument(help="PQL text (need not be saved).")]
) -> None:
    """Estimate an expression's audience with a 95 % interval and a sample.

    Example: `tessera segment estimate 'homeAddress.countryCode = "US"'`
    """

    def remote(client: TesseraClient) -> dict[str, Any]:
        preview = client.create_preview(expression)
        return {**client.get_estimate(preview["previewId"]), "previewId": preview["previewId"]}

    opts.emit(opts.run(remote, local=lambda sb: sb.segments.preview(expression)))


@app.command("explain")
@shared_options()
def explain(opts: SharedOptions, segment_id: str, namespace: str, value: str) -> None:
    """Why a person is (or is not) in a segment: conditions that held and matching events.

    Example: `tessera segment explain <segmentId> Email jane@example.com`
    """

    def local(sb: Sandbox) -> Any:
        pid = sb.profiles.resolve(Identity(namespace, value))
        if pid is None:
            raise no_profile(namespace, value)
        return sb.segments.explain(segment_id, pid)

    opts.emit(
        opts.run(
            remote=lambda client: profile_or_exit(
                namespace, value, lambda: client.explain_segment(segment_id, value, namespace)
            ),
            local=local,
        )
    )


@app.command("jobs")
@shared_options()
def jobs(
    opts: SharedOptions,
    watch: Annotated[str | None, typer.Option("--watch", help="Poll one job id until it finishes.")] = None,
) -> None:
    """List segment jobs, or watch one. Example: `tessera segment jobs --watch <jobId>`."""
    from tessera.cli.jobs import watch_remote

    def local(sb: Sandbox) -> Any:
        if watch:
            job = sb.segments.job(watch)
            while job["status"] in ("NEW", "QUEUED", "PROCESSING"):
                time.sleep(0.5)
                job = sb.segments.job(watch)
            return job
        return sb.segments.jobs()

    opts.emit(
        opts.run(
            remote=lambda client: (
                watch_remote(client, watch) if watch else client.list_segment_jobs()["children"]
            ),
            local=local,
        )
    )


@app.command("export")
@shared_options()
def export(
    opts: SharedOptions,
    segment_id: str,
    fmt: Annotated[str, typer.Option("--format", help="csv, parquet or jsonl.")] = "jsonl",
    fields: Annotated[
        str, typer.Option(help="Comma-separated XDM paths.")
    ] = "identities.id,personalEmail.address",
) -> None:
    """Export a segment's members to a file. Example: `tessera segment export <segmentId> --format csv`."""
    body = export_body(segment_id, fmt, fields)
    opts.emit(
        opts.run(
            remote=lambda client: client.create_export(body),
            local=lambda sb: sb.segments.activation.exports.create(body),
        )
    )


def export_body(segment_id: str, fmt: str, fields: str) -> dict[str, Any]:
    return {
        "fields": fields,
        "filter": {"segments": [{"segmentId": segment_id, "status": ["realized", "existing"]}]},
        "destination": {"format": fmt},
    }
