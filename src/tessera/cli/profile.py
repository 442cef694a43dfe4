"""``tessera profile …`` and ``tessera merge-policy …``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from tessera.cli.common import SharedOptions, no_profile, profile_or_exit, shared_options
from tessera.model import Identity, parse_time
from tessera.platform import Sandbox

if TYPE_CHECKING:
    from tessera.client import TesseraClient

app = typer.Typer(
    help="Merged profiles. Example: `tessera profile get Email jane@example.com`.", no_args_is_help=True
)
policy_app = typer.Typer(help="Merge policies. Example: `tessera merge-policy list`.", no_args_is_help=True)


@app.command("get")
@shared_options()
def profile_get(
    opts: SharedOptions,
    namespace: Annotated[str, typer.Argument(help="Namespace code, e.g. Email, ECID, CRMID.")],
    value: Annotated[str, typer.Argument(help="Identity value.")],
    merge_policy: Annotated[str | None, typer.Option("--merge-policy", help="Merge policy id.")] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="ISO time: attributes as they were then.")
    ] = None,
) -> None:
    """Show the merged profile of whoever holds an identity.

    Example: `tessera profile get Email jane@example.com --json`
    """
    if opts.url and as_of:
        raise typer.BadParameter("--as-of reads the data directory; drop --url", param_hint="--as-of")

    def local(sb: Sandbox) -> dict[str, Any]:
        view = sb.profiles.get(
            Identity(namespace, value),
            merge_policy_id=merge_policy,
            as_of=parse_time(as_of) if as_of else None,
        )
        if view is None:
            raise no_profile(namespace, value)
        return view.to_json()

    profile = opts.run(
        remote=lambda client: profile_or_exit(
            namespace, value, lambda: client.get_profile(value, namespace, merge_policy_id=merge_policy)
        ),
        local=local,
    )
    opts.emit(profile)


@app.command("events")
@shared_options()
def profile_events(
    opts: SharedOptions,
    namespace: str,
    value: str,
    limit: Annotated[int, typer.Option(help="Most events to show.")] = 20,
    newest_first: Annotated[bool, typer.Option("--newest-first", help="Newest first.")] = False,
) -> None:
    """Show a person's events in time order. Example: `tessera profile events ECID 1234… --limit 5`."""

    def remote(client: TesseraClient) -> list[Any]:
        order = "-timestamp" if newest_first else "timestamp"
        page = client.get_events(value, namespace, limit=limit, orderby=order)
        return [child["entity"] for child in page["children"]]

    def local(sb: Sandbox) -> list[Any]:
        events, _ = sb.profiles.events(Identity(namespace, value), limit=limit, descending=newest_first)
        return [e["record"] for e in events]

    opts.emit(opts.run(remote, local))


@policy_app.command("list")
@shared_options()
def policy_list(opts: SharedOptions) -> None:
    """List merge policies. Example: `tessera merge-policy list --json`."""
    opts.emit(
        opts.run(
            remote=lambda client: client.list_merge_policies(limit=100)["children"],
            local=lambda sb: [p.to_json() for p in sb.merge_policies.list()],
        )
    )


@policy_app.command("create")
@shared_options()
def policy_create(
    opts: SharedOptions,
    body: Annotated[str, typer.Argument(help="The policy as JSON (reference object shape).")],
) -> None:
    """Create a merge policy.

    Example: `tessera merge-policy create '{"name":"crm-first","identityGraph":{"type":"pdg"},"attributeMerge":{"type":"dataSetPrecedence","order":["<datasetId>"]}}'`
    """
    try:
        policy = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON ({exc})", param_hint="'body'") from None
    opts.emit(
        opts.run(
            remote=lambda client: client.create_merge_policy(policy),
            local=lambda sb: sb.merge_policies.create(policy).to_json(),
        )
    )
