"""``tessera``: every operation from the command line, in-process on a data directory.

Each command group lives in its own module and is mounted here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tessera.settings import Settings

app = typer.Typer(
    name="tessera",
    help="Tessera: real-time customer profiles. Example: `tessera demo --people 2000`.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)

HomeOption = Annotated[Path | None, typer.Option("--home", envvar="TESSERA_HOME", help="Data directory.")]


def load_settings(home: Path | None, host: str | None = None, port: int | None = None) -> Settings:
    return Settings.from_env(home=str(home) if home else None, host=host, port=port)


@app.command()
def serve(
    home: HomeOption = None,
    host: Annotated[str, typer.Option(help="Bind address; non-loopback needs API keys.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
) -> None:
    """Serve the REST API and the web UI.

    Example: `tessera serve --home ./tessera-data --port 8000`
    """
    from tessera.api.server import run_server
    from tessera.platform import Platform

    settings = load_settings(home, host, port)
    run_server(Platform(settings), host=host, port=port)


def _mount() -> None:
    from tessera.cli import catalog, ingest, profile

    app.add_typer(catalog.sandbox_app, name="sandbox")
    app.add_typer(catalog.dataset_app, name="dataset")
    app.add_typer(ingest.app, name="ingest")
    app.add_typer(profile.app, name="profile")
    app.add_typer(profile.policy_app, name="merge-policy")
    for module, name in (
        ("tessera.cli.identity", "identity"),
        ("tessera.cli.keys", "keys"),
        ("tessera.cli.segment", "segment"),
        ("tessera.cli.demo", "demo-data"),
    ):
        try:
            sub = __import__(module, fromlist=["app"])
        except ImportError:
            continue
        app.add_typer(sub.app, name=name)


_mount()
