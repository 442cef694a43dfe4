"""``tessera sandbox …`` and ``tessera dataset …``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tessera.cli.common import SharedOptions, console, emit, open_platform, shared_options
from tessera.platform import Sandbox

if TYPE_CHECKING:
    from tessera.client import TesseraClient

sandbox_app = typer.Typer(help="Sandboxes. Example: `tessera sandbox create dev`.", no_args_is_help=True)
dataset_app = typer.Typer(help="Datasets. Example: `tessera dataset list --json`.", no_args_is_help=True)


@sandbox_app.command("list")
@shared_options(sandbox=False)
def sandbox_list(opts: SharedOptions) -> None:
    """List sandboxes. Example: `tessera sandbox list` (or `--url http://127.0.0.1:8000`)."""
    rows: Sequence[Mapping[str, Any]] = opts.run_platform(
        remote=lambda client: client.list_sandboxes()["sandboxes"],
        local=lambda platform: platform.sandboxes.list(),
    )
    if opts.as_json:
        emit(rows, True)
        return
    table = Table("name", "title", "type", "default")
    for row in rows:
        table.add_row(row["name"], row["title"], row["type"], "yes" if row["isDefault"] else "")
    console.print(table)


@sandbox_app.command("create")
@shared_options(sandbox=False)
def sandbox_create(
    opts: SharedOptions, name: str, title: Annotated[str | None, typer.Option(help="Display title.")] = None
) -> None:
    """Create a development sandbox. Example: `tessera sandbox create dev --title "Dev"`."""
    opts.emit(
        opts.run_platform(
            remote=lambda client: client.create_sandbox(name, title),
            local=lambda platform: platform.sandboxes.create(name, title),
        )
    )


@sandbox_app.command("delete")
@shared_options(sandbox=False)
def sandbox_delete(opts: SharedOptions, name: str) -> None:
    """Delete a sandbox and all its data. Example: `tessera sandbox delete dev`."""
    opts.run_platform(
        remote=lambda client: client.delete_sandbox(name),
        local=lambda platform: platform.delete_sandbox(name),
    )
    if opts.as_json:
        emit({"deleted": name}, True)
    else:
        console.print(f"deleted sandbox {name}")


@dataset_app.command("list")
@shared_options()
def dataset_list(opts: SharedOptions) -> None:
    """List datasets. Example: `tessera dataset list`."""
    rows = opts.run(
        remote=lambda client: [{"id": k, **v} for k, v in client.list_datasets(limit=100).items()],
        local=lambda sb: sb.datasets.list(),
    )
    if opts.as_json:
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
@shared_options()
def dataset_create(
    opts: SharedOptions,
    name: str,
    schema: Annotated[str, typer.Option(help="Schema $id or title.")],
    upsert: Annotated[bool, typer.Option(help="Upsert mode (record datasets).")] = False,
) -> None:
    """Create a Profile- and Identity-enabled dataset.

    Example: `tessera dataset create crm --schema "CRM Profiles"`
    """

    def remote(client: TesseraClient) -> Any:
        schema_id = schema
        if not schema.startswith("https://"):
            titles = {s.get("title"): s["$id"] for s in client.list_schemas()["results"]}
            schema_id = titles.get(schema, schema)
        return client.get_dataset(client.create_dataset(name, schema_id, upsert=upsert))

    def local(sb: Sandbox) -> Any:
        return sb.datasets.create(name, sb.schemas.find(schema)["$id"], upsert=upsert)

    opts.emit(opts.run(remote, local))


@sandbox_app.command("backup")
@shared_options(sandbox=False, remote=False)
def sandbox_backup(
    opts: SharedOptions,
    name: str,
    target: Annotated[Path, typer.Argument(help="New or empty folder for the backup.")],
) -> None:
    """Back up a sandbox into a folder of Parquet files with a manifest (safe while a server runs).

    Example: `tessera sandbox backup prod ./backups/prod-2026-03-01`
    """
    from tessera.ops.backup import backup_sandbox

    with open_platform(opts.home) as platform:
        manifest = backup_sandbox(platform, name, target)
        opts.emit(
            {
                "sandbox": name,
                "dir": str(target),
                **manifest["counts"],
                "storeFormat": manifest["storeFormat"],
            }
        )


@sandbox_app.command("restore")
@shared_options(sandbox=False, remote=False)
def sandbox_restore(
    opts: SharedOptions,
    source: Annotated[Path, typer.Argument(help="A folder written by `tessera sandbox backup`.")],
    as_name: Annotated[str | None, typer.Option("--as", help="Restore under this sandbox name.")] = None,
) -> None:
    """Restore a backup as a new sandbox (checksums are verified first).

    Example: `tessera sandbox restore ./backups/prod-2026-03-01 --as prod-copy`
    """
    from tessera.ops.backup import restore_sandbox

    with open_platform(opts.home) as platform:
        opts.emit(restore_sandbox(platform, source, as_name))
