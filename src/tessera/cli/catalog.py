"""``tessera sandbox …`` and ``tessera dataset …``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tessera.cli.common import (
    HomeOption,
    JsonOption,
    SandboxOption,
    console,
    emit,
    open_platform,
    open_sandbox,
)

sandbox_app = typer.Typer(help="Sandboxes. Example: `tessera sandbox create dev`.", no_args_is_help=True)
dataset_app = typer.Typer(help="Datasets. Example: `tessera dataset list --json`.", no_args_is_help=True)


@sandbox_app.command("list")
def sandbox_list(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List sandboxes. Example: `tessera sandbox list`."""
    with open_platform(home) as platform:
        rows = platform.sandboxes.list()
        if as_json:
            emit(rows, True)
            return
        table = Table("name", "title", "type", "default")
        for row in rows:
            table.add_row(row["name"], row["title"], row["type"], "yes" if row["isDefault"] else "")
        console.print(table)


@sandbox_app.command("create")
def sandbox_create(
    name: str,
    title: Annotated[str | None, typer.Option(help="Display title.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a development sandbox. Example: `tessera sandbox create dev --title "Dev"`."""
    with open_platform(home) as platform:
        emit(platform.sandboxes.create(name, title), as_json)


@sandbox_app.command("delete")
def sandbox_delete(name: str, home: HomeOption = None) -> None:
    """Delete a sandbox and all its data. Example: `tessera sandbox delete dev`."""
    with open_platform(home) as platform:
        platform.delete_sandbox(name)
        console.print(f"deleted sandbox {name}")


@dataset_app.command("list")
def dataset_list(
    home: HomeOption = None, sandbox: SandboxOption = "prod", as_json: JsonOption = False
) -> None:
    """List datasets. Example: `tessera dataset list`."""
    with open_sandbox(home, sandbox) as sb:
        rows = sb.datasets.list()
        if as_json:
            emit(rows, True)
            return
        table = Table("id", "name", "schema", "profile", "identity")
        for row in rows:
            tags = row["tags"]
            table.add_row(
                row["id"],
                row["name"],
                row["schemaRef"]["id"],
                ",".join(tags.get("unifiedProfile", [])),
                ",".join(tags.get("unifiedIdentity", [])),
            )
        console.print(table)


@dataset_app.command("create")
def dataset_create(
    name: str,
    schema: Annotated[str, typer.Option(help="Schema $id or title.")],
    upsert: Annotated[bool, typer.Option(help="Upsert mode (record datasets).")] = False,
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
) -> None:
    """Create a Profile- and Identity-enabled dataset.

    Example: `tessera dataset create crm --schema "CRM Profiles"`
    """
    with open_sandbox(home, sandbox) as sb:
        schema_id = sb.schemas.find(schema)["$id"]
        emit(sb.datasets.create(name, schema_id, upsert=upsert), as_json)
