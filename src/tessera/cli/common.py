"""Shared CLI plumbing: options, opening the platform, printing results as JSON or tables."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

from tessera.errors import TesseraError
from tessera.platform import Platform, Sandbox
from tessera.settings import Settings

console = Console()
err_console = Console(stderr=True)

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", envvar="TESSERA_HOME", help="Data directory (default ./tessera-data)."),
]
SandboxOption = Annotated[
    str, typer.Option("--sandbox", "-s", envvar="TESSERA_SANDBOX", help="Sandbox name.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@contextmanager
def open_platform(home: Path | None) -> Iterator[Platform]:
    settings = Settings.from_env(home=str(home) if home else None)
    if settings.distributed:  # other processes share the store: take part in its write lock
        from tessera.scaleout.distributed import DistributedPlatform

        platform: Platform = DistributedPlatform(settings, role="api")
    else:
        platform = Platform(settings)
    try:
        yield platform
    except TesseraError as err:
        err_console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    finally:
        platform.close()


@contextmanager
def open_sandbox(home: Path | None, sandbox: str) -> Iterator[Sandbox]:
    with open_platform(home) as platform:
        yield platform.sandbox(sandbox)


def emit(data: Any, as_json: bool) -> None:
    """Print ``data`` as JSON (``--json``) or pretty for people."""
    if as_json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
    else:
        console.print_json(orjson.dumps(data, default=str).decode())
