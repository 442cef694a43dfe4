"""``tessera segment …``: definitions, evaluation, estimates, explanations, jobs and exports."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from tessera.cli.common import (
    ApiKeyOption,
    HomeOption,
    JsonOption,
    SandboxOption,
    UrlOption,
    console,
    emit,
    open_client,
    open_sandbox,
)
from tessera.model import Identity

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
def create(
    name: str,
    expression: Annotated[str, typer.Argument(help="PQL text.")],
    streaming: Annotated[
        bool, typer.Option("--streaming", help="Evaluate continuously as data arrives.")
    ] = False,
    edge: Annotated[bool, typer.Option("--edge", help="Also allow synchronous (edge) evaluation.")] = False,
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Create a segment definition (checked against the union schema; streaming eligibility explained).

    Example: `tessera segment create "Buyers 3h" 'xEvent[eventType = "commerce.purchases" and timestamp occurs < 3 hours before now].count() > 0' --streaming`
    """
    if url:
        with open_client(url, api_key, sandbox) as client:
            emit(client.create_segment(_body(name, expression, streaming, edge, description)), as_json)
        return
    with open_sandbox(home, sandbox) as sb:
        emit(sb.segments.create(_body(name, expression, streaming, edge, description)), as_json)


@app.command("list")
def list_segments(
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List segment definitions. Example: `tessera segment list`."""
    if url:
        with open_client(url, api_key, sandbox) as client:
            segments: list[dict[str, Any]] = list(client.list_segments(limit=1000)["segments"])
    else:
        with open_sandbox(home, sandbox) as sb:
            segments = sb.segments.definitions.list(limit=10_000)["segments"]
    if as_json:
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
def evaluate(
    segment_ids: Annotated[list[str] | None, typer.Argument(help="Segment ids (default: all).")] = None,
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Run a batch segment job now and print its status and counts. Example: `tessera segment evaluate`."""
    started = time.perf_counter()
    with console.status("evaluating segments…"):
        if url:
            with open_client(url, api_key, sandbox) as client:
                job: dict[str, Any] = dict(client.run_segment_job(segment_ids or ["*"]))
        else:
            with open_sandbox(home, sandbox) as sb:
                job = sb.segments.run_job([{"segmentId": s} for s in segment_ids] if segment_ids else None)
    if as_json:
        emit(job, True)
        return
    console.print(f"job {job['id']}: {job['status']} in {time.perf_counter() - started:.1f} s")
    for seg_id, count in job.get("metrics", {}).get("segmentedProfileCounter", {}).items():
        console.print(f"  {seg_id}: {count} profiles")


@app.command("estimate")
def estimate(
    expression: Annotated[str, typer.Argument(help="PQL text (need not be saved).")],
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Estimate an expression's audience with a 95 % interval and a sample.

    Example: `tessera segment estimate 'homeAddress.countryCode = "US"'`
    """
    if url:
        with open_client(url, api_key, sandbox) as client:
            preview = client.create_preview(expression)
            emit({**client.get_estimate(preview["previewId"]), "previewId": preview["previewId"]}, as_json)
        return
    with open_sandbox(home, sandbox) as sb:
        emit(sb.segments.preview(expression), as_json)


@app.command("explain")
def explain(
    segment_id: str,
    namespace: str,
    value: str,
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Why a person is (or is not) in a segment: conditions that held and matching events.

    Example: `tessera segment explain <segmentId> Email jane@example.com`
    """
    if url:
        with open_client(url, api_key, sandbox) as client:
            emit(client.explain_segment(segment_id, value, namespace), as_json)
        return
    with open_sandbox(home, sandbox) as sb:
        pid = sb.profiles.resolve(Identity(namespace, value))
        if pid is None:
            console.print(f"no profile holds {namespace}:{value}")
            raise typer.Exit(1)
        emit(sb.segments.explain(segment_id, pid), as_json)


@app.command("jobs")
def jobs(
    watch: Annotated[str | None, typer.Option("--watch", help="Poll one job id until it finishes.")] = None,
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List segment jobs, or watch one. Example: `tessera segment jobs --watch <jobId>`."""
    if url:
        from tessera.cli.jobs import watch_remote

        with open_client(url, api_key, sandbox) as client:
            emit(watch_remote(client, watch) if watch else client.list_segment_jobs()["children"], as_json)
        return
    with open_sandbox(home, sandbox) as sb:
        if watch:
            job = sb.segments.job(watch)
            while job["status"] in ("NEW", "QUEUED", "PROCESSING"):
                time.sleep(0.5)
                job = sb.segments.job(watch)
            emit(job, as_json)
            return
        emit(sb.segments.jobs(), as_json)


@app.command("export")
def export(
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
    """Export a segment's members to a file. Example: `tessera segment export <segmentId> --format csv`."""
    body = export_body(segment_id, fmt, fields)
    if url:
        with open_client(url, api_key, sandbox) as client:
            emit(client.create_export(body), as_json)
        return
    with open_sandbox(home, sandbox) as sb:
        emit(sb.segments.activation.exports.create(body), as_json)


def export_body(segment_id: str, fmt: str, fields: str) -> dict[str, Any]:
    return {
        "fields": fields,
        "filter": {"segments": [{"segmentId": segment_id, "status": ["realized", "existing"]}]},
        "destination": {"format": fmt},
    }
