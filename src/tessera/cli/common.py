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


UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="TESSERA_URL",
        help="Talk to a running server (e.g. http://127.0.0.1:8000) instead of a data directory.",
    ),
]
ApiKeyOption = Annotated[
    str | None, typer.Option("--api-key", envvar="TESSERA_API_KEY", help="API key for --url.")
]


@contextmanager
def open_client(url: str, api_key: str | None, sandbox: str | None) -> Iterator[Any]:
    """A :class:`~tessera.client.TesseraClient` for ``--url``; API errors print like local ones."""
    import httpx

    from tessera.client import TesseraClient

    with TesseraClient(url, api_key=api_key, sandbox=sandbox) as client:
        try:
            yield client
        except TesseraError as err:
            err_console.print(f"[red]error:[/red] {err}")
            raise typer.Exit(2) from None
        except httpx.TransportError as err:
            err_console.print(f"[red]error:[/red] cannot reach {url}: {err}")
            raise typer.Exit(2) from None
