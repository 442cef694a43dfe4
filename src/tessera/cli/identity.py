"""``tessera identity`` commands: the identity graph simulator."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from tessera.cli.common import ApiKeyOption, SharedOptions, UrlOption, emit, open_client, shared_options
from tessera.errors import TesseraError
from tessera.identity.simulate import simulate
from tessera.model import Identity
from tessera.platform import Sandbox

if TYPE_CHECKING:
    from tessera.client import TesseraClient

app = typer.Typer(
    help="Identity graphs. Example: `tessera identity graph Email jane@example.com`.", no_args_is_help=True
)


def _split(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


@app.callback()
def _identity() -> None:
    """Identity graph tools."""


# Not @shared_options: the simulator reads no data directory (no --home or --sandbox) and its
# local run needs no sandbox, so only --url and --api-key are shared.
@app.command("simulate")
def simulate_command(
    file: Annotated[
        str, typer.Argument(help="File with one row per line ('CRMID: Tom, ECID: 111'), or - for stdin.")
    ] = "-",
    unique: Annotated[str | None, typer.Option(help="Unique namespaces, comma-separated.")] = None,
    priority: Annotated[
        str | None, typer.Option(help="Namespace priority, highest first, comma-separated.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Identities per graph (0 = no limit).")] = 50,
    validate: Annotated[
        bool, typer.Option(help="Also refuse invalid values (ECID not 38 digits, 'null', ...).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Run rows (in time order) through the identity graph engine and print the resulting graphs.

    Example: `printf 'CRMID: Tom, ECID: 111\\nCRMID: Ann, ECID: 111\\n' | tessera identity simulate --unique CRMID`
    """
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        typer.echo(f"Cannot read {file}: {exc.strerror}.", err=True)
        raise typer.Exit(2) from exc
    if url:
        with open_client(url, api_key, None) as client:
            remote = client.simulate(text, _split(unique), _split(priority), limit or None, validate)
        if as_json:
            typer.echo(orjson.dumps(remote).decode())
            return
        table = Table(title=f"{len(remote['graphs'])} graph(s)")
        table.add_column("#", justify="right")
        table.add_column("identities")
        for i, g in enumerate(remote["graphs"], start=1):
            table.add_row(str(i), ", ".join(f"{x['namespace']}:{x['id']}" for x in g["identities"]))
        Console().print(table)
        return
    try:
        result = simulate(
            text, unique=_split(unique), priority=_split(priority), limit=limit or None, validate=validate
        )
    except TesseraError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(orjson.dumps(result.to_json()).decode())
        return
    console = Console()
    graphs = Table(title=f"{len(result.graphs)} graph(s)")
    graphs.add_column("#", justify="right")
    graphs.add_column("identities")
    for i, g in enumerate(result.graphs, start=1):
        graphs.add_row(str(i), ", ".join(str(x) for x in g))
    console.print(graphs)
    rows = Table(title="rows")
    rows.add_column("row", justify="right")
    rows.add_column("primary identity")
    rows.add_column("rejected")
    for i, r in enumerate(result.rows, start=1):
        rows.add_row(str(i), "-" if r.primary is None else str(r.primary), r.rejected or "")
    console.print(rows)


@app.command("graph")
@shared_options()
def graph_command(
    opts: SharedOptions,
    namespace: Annotated[str, typer.Argument(help="Namespace code, e.g. Email, ECID, CRMID.")],
    value: Annotated[str, typer.Argument(help="Identity value.")],
) -> None:
    """The identities linked with one identity (its identity graph).

    Example: `tessera identity graph Email jane@example.com --json`
    """

    def remote(client: TesseraClient) -> list[dict[str, Any]]:
        cluster = client.cluster_members(namespace=namespace, value=value)
        return [{"namespace": m.get("namespace"), "id": m["id"]} for m in cluster["members"]]

    def local(sb: Sandbox) -> list[dict[str, Any]]:
        identity = Identity(sb.identity.namespace(namespace).code, value)
        return [m.to_json() for m in sb.identity.cluster(identity)]

    members = opts.run(remote, local)
    if opts.as_json:
        emit(members, True)
        return
    table = Table(title=f"graph of {namespace}:{value}")
    table.add_column("namespace")
    table.add_column("id")
    for m in members:
        table.add_row(str(m["namespace"]), str(m["id"]))
    Console().print(table)


@app.command("explain")
@shared_options()
def explain_command(
    opts: SharedOptions,
    from_identity: Annotated[str, typer.Argument(help="Namespace:value, e.g. Email:jane@example.com.")],
    to_identity: Annotated[str, typer.Argument(help="Namespace:value, e.g. ECID:1234.")],
) -> None:
    """The chain of links (first/last seen, dataset, batch) joining two identities.

    Example: `tessera identity explain Email:jane@example.com ECID:8914...`
    """
    links = opts.run(
        remote=lambda client: client.explain_link(from_identity, to_identity)["links"],
        local=lambda sb: sb.identity.explain(_parse(sb, from_identity), _parse(sb, to_identity)),
    )
    opts.emit({"links": links})


def _parse(sb: Sandbox, text: str) -> Identity:
    ns, sep, value = text.partition(":")
    if not sep or not ns or not value:
        raise typer.BadParameter(f"write identities as Namespace:value, not {text!r}")
    return Identity(sb.identity.namespace(ns).code, value)
