"""``tessera keys``: create, list and revoke API keys scoped to sandboxes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tessera.api.keys import ALL_SANDBOXES, create_key, list_keys, revoke_key
from tessera.errors import TesseraError
from tessera.platform import Platform
from tessera.settings import Settings

app = typer.Typer(
    help="API keys. Example: `tessera keys create --sandbox prod --name ci`.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)

HomeOption = Annotated[Path | None, typer.Option("--home", envvar="TESSERA_HOME", help="Data directory.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _platform(home: Path | None) -> Platform:
    return Platform(Settings.from_env(home=str(home) if home else None))


def _fail(exc: TesseraError) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}")
    return typer.Exit(1)


@app.command()
def create(
    sandbox: Annotated[
        list[str], typer.Option("--sandbox", help="Sandbox the key may use; repeat, or '*' for all.")
    ],
    name: Annotated[str, typer.Option(help="A label for people.")] = "",
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print it once (only its hash is stored).

    Example: `tessera keys create --sandbox prod --sandbox dev-1 --name ci`
    """
    with _platform(home) as platform:
        try:
            for name_ in sandbox:
                if name_ != ALL_SANDBOXES:
                    platform.sandboxes.get(name_)
            token, record = create_key(platform.system, sandbox, name)
        except TesseraError as exc:
            raise _fail(exc) from exc
    if as_json:
        out.print_json(json.dumps({**record, "key": token}))
    else:
        out.print(
            f"key [bold]{record['id']}[/bold] for {', '.join(record['sandboxes'])}; store it now, it is not shown again:"
        )
        out.print(token, soft_wrap=True, highlight=False)


@app.command("list")
def list_(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List keys: id, name, sandboxes, creation time (never the secret).

    Example: `tessera keys list --json`
    """
    with _platform(home) as platform:
        keys = list_keys(platform.system)
    if as_json:
        out.print_json(json.dumps(keys))
        return
    table = Table("id", "name", "sandboxes", "created (epoch ms)")
    for key in keys:
        table.add_row(key["id"], key["name"], ", ".join(key["sandboxes"]), str(key["created"]))
    out.print(table)


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id shown by `keys list`.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a key; requests carrying it are refused at once.

    Example: `tessera keys revoke 3f2a9c0d1b7e4a55`
    """
    with _platform(home) as platform:
        try:
            revoke_key(platform.system, key_id)
        except TesseraError as exc:
            raise _fail(exc) from exc
    if as_json:
        out.print_json(json.dumps({"revoked": key_id}))
    else:
        out.print(f"revoked {key_id}")
