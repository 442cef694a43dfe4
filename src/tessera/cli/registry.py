"""``tessera namespace …``, ``tessera schema …`` and ``tessera privacy …``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tessera.cli.common import SharedOptions, console, emit, shared_options
from tessera.platform import Sandbox

if TYPE_CHECKING:
    from tessera.client import TesseraClient

namespace_app = typer.Typer(
    help="Identity namespaces. Example: `tessera namespace list`.", no_args_is_help=True
)
schema_app = typer.Typer(help="XDM schemas. Example: `tessera schema list`.", no_args_is_help=True)
privacy_app = typer.Typer(help="Privacy requests. Example: `tessera privacy delete Email jane@example.com`.",
                          no_args_is_help=True)  # fmt: skip


@namespace_app.command("list")
@shared_options()
def namespace_list(opts: SharedOptions) -> None:
    """List standard and custom namespaces. Example: `tessera namespace list --json`."""

    def remote(client: TesseraClient) -> None:
        docs = client.list_namespaces()
        if opts.as_json:
            emit(docs, True)
            return
        table = Table("code", "id", "name", "type", "custom")
        for doc in docs:
            table.add_row(doc["code"], "" if doc.get("id") is None else str(doc["id"]), doc["name"],
                          doc["idType"], "yes" if doc.get("custom") else "")  # fmt: skip
        console.print(table)

    def local(sb: Sandbox) -> None:
        namespaces = sb.identity.namespaces()
        if opts.as_json:
            emit([sb.identity.namespace_doc(ns) for ns in namespaces], True)
            return
        table = Table("code", "id", "name", "type", "custom")
        for ns in namespaces:
            table.add_row(
                ns.code,
                "" if ns.id is None else str(ns.id),
                ns.name,
                ns.type.value,
                "yes" if ns.custom else "",
            )
        console.print(table)

    opts.run(remote, local)


@namespace_app.command("create")
@shared_options()
def namespace_create(
    opts: SharedOptions,
    code: str,
    id_type: Annotated[
        str, typer.Option("--type", help="COOKIE, DEVICE, CROSS_DEVICE, EMAIL, PHONE, NON_PEOPLE, PARTNER.")
    ],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
) -> None:
    """Create a custom namespace. Example: `tessera namespace create LoyaltyId --type CROSS_DEVICE`."""
    opts.emit(
        opts.run(
            remote=lambda client: client.create_namespace(code, name or code, id_type),
            local=lambda sb: sb.identity.namespace_doc(
                sb.identity.create_namespace(code, name or code, id_type)
            ),
        )
    )


@namespace_app.command("rules")
@shared_options(remote=False)
def namespace_rules(
    opts: SharedOptions,
    unique: Annotated[str | None, typer.Option(help="Comma-separated unique namespaces.")] = None,
    priority: Annotated[
        str | None, typer.Option(help="Comma-separated namespaces, highest priority first.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Graph size limit.")] = None,
    re_resolve: Annotated[
        bool, typer.Option("--re-resolve", help="Apply the rules to existing graphs too.")
    ] = False,
) -> None:
    """Show or change the identity linking rules.

    Example: `tessera namespace rules --unique CRMID --priority CRMID,Email,ECID --re-resolve`
    """
    with opts.local() as sb:
        current = sb.identity.settings()
        if unique is None and priority is None and limit is None and not re_resolve:
            opts.emit(current)
            return
        result = sb.identity.set_rules(
            unique=current["unique"] if unique is None else [u for u in unique.split(",") if u],
            priority=current["priority"] if priority is None else [p for p in priority.split(",") if p],
            limit=current["limit"] if limit is None else limit,
            re_resolve=re_resolve,
        )
        opts.emit(result)


@schema_app.command("list")
@shared_options()
def schema_list(opts: SharedOptions) -> None:
    """List schemas. Example: `tessera schema list`."""
    schemas = opts.run(
        remote=lambda client: list(client.list_schemas()["results"]),
        local=lambda sb: [s.to_json() for s in sb.schemas.registry.list_schemas()],
    )
    if opts.as_json:
        emit(schemas, True)
        return
    table = Table("title", "$id", "class")
    for s in schemas:
        table.add_row(s["title"], s["$id"], s.get("meta:class", ""))
    console.print(table)


@schema_app.command("standard")
@shared_options(remote=False)
def schema_standard(opts: SharedOptions) -> None:
    """Create Tessera's standard Profile and ExperienceEvent schemas. Example: `tessera schema standard`."""
    with opts.local() as sb:
        opts.emit(sb.schemas.ensure_standard_schemas())


@schema_app.command("union")
@shared_options(json_default=True)
def schema_union(
    opts: SharedOptions,
    klass: Annotated[
        str, typer.Argument(help="Class: profile or experienceevent (or a class $id).")
    ] = "profile",
) -> None:
    """Print the union schema of a class as resolved JSON Schema. Example: `tessera schema union profile`."""
    ref = {"profile": "https://ns.adobe.com/xdm/context/profile",
           "experienceevent": "https://ns.adobe.com/xdm/context/experienceevent"}.get(klass, klass)  # fmt: skip
    opts.emit(opts.run(remote=lambda client: client.get_union(ref), local=lambda sb: sb.schemas.union(ref)))


def _privacy_request(action: str, namespace: str, value: str) -> dict[str, Any]:
    return {"users": [{"key": "cli", "action": [action],
            "userIDs": [{"namespace": namespace, "value": value}]}], "expandIds": True}  # fmt: skip


@privacy_app.command("access")
@shared_options(json_default=True)
def privacy_access(opts: SharedOptions, namespace: str, value: str) -> None:
    """Everything stored about the person holding an identity. Example: `tessera privacy access Email a@b.c`."""
    request = _privacy_request("access", namespace, value)
    opts.emit(
        opts.run(
            remote=lambda client: client.create_privacy_jobs(request)["jobs"][0],
            local=lambda sb: sb.privacy.run(request)[0],
        )
    )


@privacy_app.command("delete")
@shared_options()
def privacy_delete(
    opts: SharedOptions,
    namespace: str,
    value: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete the person holding an identity: fragments, events, identities, memberships.

    Example: `tessera privacy delete Email jane@example.com --yes`
    """
    if not yes:
        typer.confirm(f"Delete every trace of the person holding {namespace}:{value}?", abort=True)
    request = _privacy_request("delete", namespace, value)
    job = opts.run(
        remote=lambda client: client.create_privacy_jobs(request)["jobs"][0],
        local=lambda sb: sb.privacy.run(request)[0],
    )
    opts.emit({k: job.get(k) for k in ("jobId", "status", "deleted")})
