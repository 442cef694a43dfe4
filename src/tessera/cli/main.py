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
SettingsOption = Annotated[
    Path | None,
    typer.Option(
        "--settings",
        envvar="TESSERA_SETTINGS",
        help="Settings file (TOML) selecting embedded or distributed backends.",
    ),
]


def load_settings(
    home: Path | None, host: str | None = None, port: int | None = None, settings_file: Path | None = None
) -> Settings:
    return Settings.from_env(
        settings_file=settings_file, home=str(home) if home else None, host=host, port=port
    )


@app.command()
def serve(
    home: HomeOption = None,
    host: Annotated[
        str | None, typer.Option(help="Bind address (default 127.0.0.1); non-loopback needs API keys.")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    settings_file: SettingsOption = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="API processes (more than 1 needs distributed backends).")
    ] = 1,
) -> None:
    """Serve the REST API and the web UI.

    With distributed backends in the settings file (`point_store = "redis"`, `kafka_bootstrap`),
    runs `--workers` API processes sharing them; streaming collection is then published to the
    topic and applied by `tessera worker` processes.

    Example: `tessera serve --home ./tessera-data --port 8000`,
    `tessera serve --settings cluster.toml --workers 4`
    """
    from tessera.errors import TesseraError

    settings = load_settings(home, host, port, settings_file)
    if workers == 1 and not settings.distributed:
        from tessera.api.server import run_server
        from tessera.platform import Platform

        run_server(Platform(settings), host=settings.host, port=settings.port)
        return
    from tessera.scaleout.distributed import serve_api

    try:
        serve_api(settings, workers=workers, settings_file=settings_file)
    except TesseraError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc


@app.command()
def worker(
    home: HomeOption = None,
    settings_file: SettingsOption = None,
    index: Annotated[int, typer.Option("--index", min=0, help="This worker's number, 0-based.")] = 0,
    workers: Annotated[int, typer.Option("--workers", min=1, help="How many workers share the topic.")] = 1,
    max_batch: Annotated[int, typer.Option(help="Most messages applied per poll.")] = 200,
    throttle: Annotated[float, typer.Option(help="Seconds to pause after each batch (demos, tests).")] = 0.0,
    commit_delay: Annotated[
        float, typer.Option(help="Seconds between store commit and offset commit (failure drills).")
    ] = 0.0,
    idle_exit: Annotated[
        float | None, typer.Option(help="Exit after this many idle seconds (default: run until SIGTERM).")
    ] = None,
    timers: Annotated[
        bool,
        typer.Option(
            "--timers/--no-timers",
            help="Also run the sandboxes' timers (windows, schedules, webhook deliveries), each "
            "round in one process of all that run them.",
        ),
    ] = True,
) -> None:
    """Consume the ingest topic and apply it through the streaming flow (distributed backends only).

    Worker `--index i` of `--workers n` reads partitions p with p % n == i; restart a dead worker
    with the same index and it resumes from the last committed offset (no message applied twice).

    Example: `tessera worker --settings cluster.toml --index 0 --workers 2`
    """
    from tessera.errors import TesseraError
    from tessera.scaleout.distributed import require_distributed
    from tessera.scaleout.platform_worker import serve_worker

    settings = load_settings(home, settings_file=settings_file)
    try:
        require_distributed(settings, "tessera worker")
        serve_worker(
            settings,
            worker=index,
            workers=workers,
            max_batch=max_batch,
            idle_exit_s=idle_exit,
            throttle_s=throttle,
            commit_delay_s=commit_delay,
            timers=timers,
        )
    except TesseraError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc


@app.command()
def demo(
    people: Annotated[int, typer.Option(help="Generated people (about 25 records each).")] = 20_000,
    seed: Annotated[int, typer.Option(help="Generator seed: same seed, same data.")] = 7,
    home: HomeOption = None,
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the API and UI afterwards.")
    ] = True,
    real_data: Annotated[
        bool, typer.Option("--luma/--no-luma", help="Also load Adobe's Luma sample files.")
    ] = True,
) -> None:
    """Load realistic demo data (once per data directory) and serve the API and UI.

    Example: `tessera demo --people 2000 --port 8000`
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from tessera.demo.load import demo_status, load_demo
    from tessera.platform import Platform

    settings = load_settings(home, None, port)
    platform = Platform(settings)
    sandbox = platform.sandbox()
    status = demo_status(sandbox)
    if status is None:
        console.print(
            f"[bold]Loading the demo[/bold] ({people} people, seed {seed}) into {settings.home_path.resolve()}"
        )
        with Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def report(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=total)
                bar.update(tasks[name], completed=done)

            status = load_demo(sandbox, people=people, seed=seed, real_data=real_data, progress=report)
    else:
        console.print(
            f"Demo data already loaded in {settings.home_path.resolve()} (delete the folder to reload)."
        )
    for entry in status["datasets"]:
        console.print(
            f"  {entry['dataset']:<22} {entry['ingested']:>8} ingested {entry['rejected']:>6} rejected"
            f"  ({entry['recordsPerSecond']} records/s)"
        )
    graph = status.get("graph", {})
    console.print(
        f"  {status.get('profiles', 0)} profiles, {graph.get('graphs', 0)} identity graphs, "
        f"links refused by the linking rules: {sum(graph.get('refused', {}).values())}"
        + (f"; loaded in {status['seconds']} s" if "seconds" in status else "")
    )
    for seg in status.get("segments", []):
        console.print(f"  segment {seg['name']!r}: {seg['members']} members")
    if not serve_after:
        platform.close()
        return
    from tessera.api.server import run_server

    run_server(platform, host=settings.host, port=port)


def _mount() -> None:
    from tessera.cli import catalog, ingest, profile, registry

    app.add_typer(registry.namespace_app, name="namespace")
    app.add_typer(registry.schema_app, name="schema")
    app.add_typer(registry.privacy_app, name="privacy")
    app.add_typer(catalog.sandbox_app, name="sandbox")
    app.add_typer(catalog.dataset_app, name="dataset")
    app.add_typer(ingest.app, name="ingest")
    app.add_typer(profile.app, name="profile")
    app.add_typer(profile.policy_app, name="merge-policy")
    from tessera.cli import jobs

    app.add_typer(jobs.job_app, name="job")
    app.add_typer(jobs.export_app, name="export")
    import importlib
    import importlib.util

    for module, name in (
        ("tessera.cli.identity", "identity"),
        ("tessera.cli.keys", "keys"),
        ("tessera.cli.segment", "segment"),
        ("tessera.cli.ops", "ops"),
    ):
        if importlib.util.find_spec(module) is None:
            continue  # a command group whose stage is not installed
        app.add_typer(importlib.import_module(module).app, name=name)


_mount()
