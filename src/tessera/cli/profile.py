"""``tessera profile …`` and ``tessera merge-policy …``."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer

from tessera.cli.common import (
    ApiKeyOption,
    HomeOption,
    JsonOption,
    SandboxOption,
    UrlOption,
    console,
    emit,
    open_client,
    open_sandbox,
)
from tessera.model import Identity, parse_time

app = typer.Typer(
    help="Merged profiles. Example: `tessera profile get Email jane@example.com`.", no_args_is_help=True
)
policy_app = typer.Typer(help="Merge policies. Example: `tessera merge-policy list`.", no_args_is_help=True)


@app.command("get")
def profile_get(
    namespace: Annotated[str, typer.Argument(help="Namespace code, e.g. Email, ECID, CRMID.")],
    value: Annotated[str, typer.Argument(help="Identity value.")],
    merge_policy: Annotated[str | None, typer.Option("--merge-policy", help="Merge policy id.")] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="ISO time: attributes as they were then.")
    ] = None,
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Show the merged profile of whoever holds an identity.

    Example: `tessera profile get Email jane@example.com --json`
    """
    if url:
        if as_of:
            raise typer.BadParameter("--as-of reads the data directory; drop --url", param_hint="--as-of")
        with open_client(url, api_key, sandbox) as client:
            emit(client.get_profile(value, namespace, merge_policy_id=merge_policy), as_json)
        return
    with open_sandbox(home, sandbox) as sb:
        view = sb.profiles.get(
            Identity(namespace, value),
            merge_policy_id=merge_policy,
            as_of=parse_time(as_of) if as_of else None,
        )
        if view is None:
            console.print(f"no profile holds {namespace}:{value}")
            raise typer.Exit(1)
        emit(view.to_json(), as_json)


@app.command("events")
def profile_events(
    namespace: str,
    value: str,
    limit: Annotated[int, typer.Option(help="Most events to show.")] = 20,
    newest_first: Annotated[bool, typer.Option("--newest-first", help="Newest first.")] = False,
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Show a person's events in time order. Example: `tessera profile events ECID 1234… --limit 5`."""
    if url:
        with open_client(url, api_key, sandbox) as client:
            order = "-timestamp" if newest_first else "timestamp"
            page = client.get_events(value, namespace, limit=limit, orderby=order)
            emit([child["entity"] for child in page["children"]], as_json)
        return
    with open_sandbox(home, sandbox) as sb:
        events, _ = sb.profiles.events(Identity(namespace, value), limit=limit, descending=newest_first)
        emit([e["record"] for e in events], as_json)


@policy_app.command("list")
def policy_list(
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List merge policies. Example: `tessera merge-policy list --json`."""
    if url:
        with open_client(url, api_key, sandbox) as client:
            emit(client.list_merge_policies(limit=100)["children"], as_json)
        return
    with open_sandbox(home, sandbox) as sb:
        emit([p.to_json() for p in sb.merge_policies.list()], as_json)


@policy_app.command("create")
def policy_create(
    body: Annotated[str, typer.Argument(help="The policy as JSON (reference object shape).")],
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Create a merge policy.

    Example: `tessera merge-policy create '{"name":"crm-first","identityGraph":{"type":"pdg"},"attributeMerge":{"type":"dataSetPrecedence","order":["<datasetId>"]}}'`
    """
    if url:
        with open_client(url, api_key, sandbox) as client:
            emit(client.create_merge_policy(orjson.loads(body)), as_json)
        return
    with open_sandbox(home, sandbox) as sb:
        emit(sb.merge_policies.create(orjson.loads(body)).to_json(), as_json)
