"""``tessera sandbox …`` and ``tessera dataset …``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    open_platform,
    open_sandbox,
)

sandbox_app = typer.Typer(help="Sandboxes. Example: `tessera sandbox create dev`.", no_args_is_help=True)
dataset_app = typer.Typer(help="Datasets. Example: `tessera dataset list --json`.", no_args_is_help=True)


@sandbox_app.command("list")
def sandbox_list(
    home: HomeOption = None, as_json: JsonOption = False, url: UrlOption = None, api_key: ApiKeyOption = None
) -> None:
    """List sandboxes. Example: `tessera sandbox list` (or `--url http://127.0.0.1:8000`)."""
    if url:
        with open_client(url, api_key, None) as client:
            rows = client.list_sandboxes()["sandboxes"]
    else:
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
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Create a development sandbox. Example: `tessera sandbox create dev --title "Dev"`."""
    if url:
        with open_client(url, api_key, None) as client:
            emit(client.create_sandbox(name, title), as_json)
        return
    with open_platform(home) as platform:
        emit(platform.sandboxes.create(name, title), as_json)


@sandbox_app.command("delete")
def sandbox_delete(
    name: str,
    home: HomeOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Delete a sandbox and all its data. Example: `tessera sandbox delete dev`."""
    if url:
        with open_client(url, api_key, None) as client:
            client.delete_sandbox(name)
    else:
        with open_platform(home) as platform:
            platform.delete_sandbox(name)
    if as_json:
        emit({"deleted": name}, True)
    else:
        console.print(f"deleted sandbox {name}")


@dataset_app.command("list")
def dataset_list(
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List datasets. Example: `tessera dataset list`."""
    if url:
        with open_client(url, api_key, sandbox) as client:
            rows = [{"id": k, **v} for k, v in client.list_datasets(limit=100).items()]
    else:
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
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Create a Profile- and Identity-enabled dataset.

    Example: `tessera dataset create crm --schema "CRM Profiles"`
    """
    if url:
        with open_client(url, api_key, sandbox) as client:
            schema_id = schema
            if not schema.startswith("https://"):
                titles = {s.get("title"): s["$id"] for s in client.list_schemas()["results"]}
                schema_id = titles.get(schema, schema)
            dataset_id = client.create_dataset(name, schema_id, upsert=upsert)
            emit(client.get_dataset(dataset_id), as_json)
        return
    with open_sandbox(home, sandbox) as sb:
        schema_id = sb.schemas.find(schema)["$id"]
        emit(sb.datasets.create(name, schema_id, upsert=upsert), as_json)


@sandbox_app.command("backup")
def sandbox_backup(
    name: str,
    target: Annotated[Path, typer.Argument(help="New or empty folder for the backup.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Back up a sandbox into a folder of Parquet files with a manifest (safe while a server runs).

    Example: `tessera sandbox backup prod ./backups/prod-2026-03-01`
    """
    from tessera.ops.backup import backup_sandbox

    with open_platform(home) as platform:
        manifest = backup_sandbox(platform, name, target)
        emit({"sandbox": name, "dir": str(target), **manifest["counts"], "storeFormat": manifest["storeFormat"]},
             as_json)  # fmt: skip


@sandbox_app.command("restore")
def sandbox_restore(
    source: Annotated[Path, typer.Argument(help="A folder written by `tessera sandbox backup`.")],
    as_name: Annotated[str | None, typer.Option("--as", help="Restore under this sandbox name.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restore a backup as a new sandbox (checksums are verified first).

    Example: `tessera sandbox restore ./backups/prod-2026-03-01 --as prod-copy`
    """
    from tessera.ops.backup import restore_sandbox

    with open_platform(home) as platform:
        emit(restore_sandbox(platform, source, as_name), as_json)
