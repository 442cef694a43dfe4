"""Shared CLI plumbing: options, opening the platform, printing results as JSON or tables.

Most commands can run on a data directory or, with ``--url``, against a server. They declare
their own arguments only; :func:`shared_options` appends the shared option block and hands them a
:class:`SharedOptions` whose :meth:`SharedOptions.run` picks the client or the local sandbox.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import typer
from rich.console import Console

from tessera.errors import NotFound, TesseraError
from tessera.platform import Platform, Sandbox
from tessera.settings import Settings

if TYPE_CHECKING:
    from tessera.client import TesseraClient

T = TypeVar("T")

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


def no_profile(namespace: str, value: str) -> typer.Exit:
    """The outcome when nobody holds an identity: said in words, exit status 1 (an answer, not a
    usage error), whether the command read a data directory or a server."""
    console.print(f"no profile holds {namespace}:{value}")
    return typer.Exit(1)


def profile_or_exit(namespace: str, value: str, call: Callable[[], T]) -> T:
    """``call()`` against a server, with the server's "no such profile" answer (404 on the
    identity or the profile id) turned into :func:`no_profile`; other errors pass on."""
    try:
        return call()
    except NotFound as err:
        if err.path in ("entityId", "profileId"):
            raise no_profile(namespace, value) from None
        raise


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
def open_client(url: str, api_key: str | None, sandbox: str | None) -> Iterator[TesseraClient]:
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


@dataclass(frozen=True)
class SharedOptions:
    """Where a command runs and how it prints, from the shared options :func:`shared_options` adds.

    Attributes:
        home: ``--home``, the data directory (``None``: the settings' default).
        sandbox: ``--sandbox``; ``None`` for commands about the platform itself.
        url: ``--url``; when set the command talks to that server instead of ``home``.
        api_key: ``--api-key``, sent with ``--url``.
        as_json: ``--json``.
    """

    home: Path | None
    sandbox: str | None
    url: str | None
    api_key: str | None
    as_json: bool

    def run(self, remote: Callable[[TesseraClient], T], local: Callable[[Sandbox], T]) -> T:
        """``remote(client)`` with ``--url``, else ``local(sandbox)`` on the data directory.

        Either way a :class:`~tessera.errors.TesseraError` prints as ``error: …`` and exits with 2.
        """
        if self.url:
            with open_client(self.url, self.api_key, self.sandbox) as client:
                return remote(client)
        with self.local() as sandbox:
            return local(sandbox)

    def run_platform(self, remote: Callable[[TesseraClient], T], local: Callable[[Platform], T]) -> T:
        """:meth:`run` for commands about the platform itself (sandboxes): no sandbox is opened."""
        if self.url:
            with open_client(self.url, self.api_key, None) as client:
                return remote(client)
        with open_platform(self.home) as platform:
            return local(platform)

    def local(self) -> AbstractContextManager[Sandbox]:
        """The sandbox on the data directory, for commands that have no REST operation."""
        if self.sandbox is None:
            raise TypeError("this command was declared shared_options(sandbox=False)")
        return open_sandbox(self.home, self.sandbox)

    def emit(self, data: Any) -> None:
        """Print ``data`` as JSON with ``--json``, else pretty (see :func:`emit`)."""
        emit(data, self.as_json)


def shared_options(
    *, sandbox: bool = True, remote: bool = True, json_default: bool = False
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Declare the shared option block once: append it to a command, which receives ``opts``.

    The decorated function takes ``opts: SharedOptions`` plus its own arguments; Typer sees its own
    arguments followed by ``--home``, ``--sandbox`` (if ``sandbox``), ``--json`` (default
    ``json_default``), and ``--url`` and ``--api-key`` (if ``remote``). Put it below
    ``@app.command``.

    Args:
        sandbox: Whether the command acts in one sandbox (``False``: on the platform's sandboxes).
        remote: Whether the command has a REST operation to go through with ``--url``.
        json_default: The ``--json`` default (a few commands only print JSON).
    """
    shared: list[tuple[str, Any, Any]] = [("home", HomeOption, None)]
    if sandbox:
        shared.append(("sandbox", SandboxOption, "prod"))
    shared.append(("as_json", JsonOption, json_default))
    if remote:
        shared += [("url", UrlOption, None), ("api_key", ApiKeyOption, None)]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        # Typer builds the command from the signature, evaluating string annotations itself; a
        # replaced signature must carry evaluated ones, so the command's own are resolved here.
        own = inspect.signature(command, eval_str=True).parameters
        if "opts" not in own:
            raise TypeError(f"{command.__name__} must take an `opts: SharedOptions` parameter")
        params = [p for name, p in own.items() if name != "opts"] + [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
            for name, annotation, default in shared
        ]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> None:
            opts = SharedOptions(
                home=kwargs.pop("home"),
                sandbox=kwargs.pop("sandbox", None),
                url=kwargs.pop("url", None),
                api_key=kwargs.pop("api_key", None),
                as_json=kwargs.pop("as_json"),
            )
            command(**kwargs, opts=opts)

        wrapper.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate
