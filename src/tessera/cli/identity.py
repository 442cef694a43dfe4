"""``tessera identity`` commands: the identity graph simulator."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from tessera.errors import TesseraError
from tessera.identity.simulate import simulate

app = typer.Typer(help="Identity graph tools.", no_args_is_help=True)


def _split(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


@app.callback()
def _identity() -> None:
    """Identity graph tools."""


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
) -> None:
    """Run rows (in time order) through the identity graph engine and print the resulting graphs."""
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        typer.echo(f"Cannot read {file}: {exc.strerror}.", err=True)
        raise typer.Exit(2) from exc
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
