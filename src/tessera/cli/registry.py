"""``tessera namespace …``, ``tessera schema …`` and ``tessera privacy …``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

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

namespace_app = typer.Typer(
    help="Identity namespaces. Example: `tessera namespace list`.", no_args_is_help=True
)
schema_app = typer.Typer(help="XDM schemas. Example: `tessera schema list`.", no_args_is_help=True)
privacy_app = typer.Typer(help="Privacy requests. Example: `tessera privacy delete Email jane@example.com`.",
                          no_args_is_help=True)  # fmt: skip


@namespace_app.command("list")
def namespace_list(
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List standard and custom namespaces. Example: `tessera namespace list --json`."""
    if url:
        with open_client(url, api_key, sandbox) as client:
            docs = client.list_namespaces()
        if as_json:
            emit(docs, True)
            return
        table = Table("code", "id", "name", "type", "custom")
        for doc in docs:
            table.add_row(doc["code"], "" if doc.get("id") is None else str(doc["id"]), doc["name"],
                          doc["idType"], "yes" if doc.get("custom") else "")  # fmt: skip
        console.print(table)
        return
    with open_sandbox(home, sandbox) as sb:
        namespaces = sb.identity.namespaces()
        if as_json:
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


@namespace_app.command("create")
def namespace_create(
    code: str,
    id_type: Annotated[
        str, typer.Option("--type", help="COOKIE, DEVICE, CROSS_DEVICE, EMAIL, PHONE, NON_PEOPLE, PARTNER.")
    ],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Create a custom namespace. Example: `tessera namespace create LoyaltyId --type CROSS_DEVICE`."""
    if url:
        with open_client(url, api_key, sandbox) as client:
            emit(client.create_namespace(code, name or code, id_type), as_json)
        return
    with open_sandbox(home, sandbox) as sb:
        ns = sb.identity.create_namespace(code, name or code, id_type)
        emit(sb.identity.namespace_doc(ns), as_json)


@namespace_app.command("rules")
def namespace_rules(
    unique: Annotated[str | None, typer.Option(help="Comma-separated unique namespaces.")] = None,
    priority: Annotated[
        str | None, typer.Option(help="Comma-separated namespaces, highest priority first.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Graph size limit.")] = None,
    re_resolve: Annotated[
        bool, typer.Option("--re-resolve", help="Apply the rules to existing graphs too.")
    ] = False,
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
) -> None:
    """Show or change the identity linking rules.

    Example: `tessera namespace rules --unique CRMID --priority CRMID,Email,ECID --re-resolve`
    """
    with open_sandbox(home, sandbox) as sb:
        current = sb.identity.settings()
        if unique is None and priority is None and limit is None and not re_resolve:
            emit(current, as_json)
            return
        result = sb.identity.set_rules(
            unique=current["unique"] if unique is None else [u for u in unique.split(",") if u],
            priority=current["priority"] if priority is None else [p for p in priority.split(",") if p],
            limit=current["limit"] if limit is None else limit,
            re_resolve=re_resolve,
        )
        emit(result, as_json)


@schema_app.command("list")
def schema_list(
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List schemas. Example: `tessera schema list`."""
    if url:
        with open_client(url, api_key, sandbox) as client:
            schemas = list(client.list_schemas()["results"])
    else:
        with open_sandbox(home, sandbox) as sb:
            schemas = [s.to_json() for s in sb.schemas.registry.list_schemas()]
    if as_json:
        emit(schemas, True)
        return
    table = Table("title", "$id", "class")
    for s in schemas:
        table.add_row(s["title"], s["$id"], s.get("meta:class", ""))
    console.print(table)


@schema_app.command("standard")
def schema_standard(
    home: HomeOption = None, sandbox: SandboxOption = "prod", as_json: JsonOption = False
) -> None:
    """Create Tessera's standard Profile and ExperienceEvent schemas. Example: `tessera schema standard`."""
    with open_sandbox(home, sandbox) as sb:
        emit(sb.schemas.ensure_standard_schemas(), as_json)


@schema_app.command("union")
def schema_union(
    klass: Annotated[
        str, typer.Argument(help="Class: profile or experienceevent (or a class $id).")
    ] = "profile",
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = True,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Print the union schema of a class as resolved JSON Schema. Example: `tessera schema union profile`."""
    ref = {"profile": "https://ns.adobe.com/xdm/context/profile",
           "experienceevent": "https://ns.adobe.com/xdm/context/experienceevent"}.get(klass, klass)  # fmt: skip
    if url:
        with open_client(url, api_key, sandbox) as client:
            emit(client.get_union(ref), as_json)
        return
    with open_sandbox(home, sandbox) as sb:
        emit(sb.schemas.union(ref), as_json)


@privacy_app.command("access")
def privacy_access(
    namespace: str,
    value: str,
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = True,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Everything stored about the person holding an identity. Example: `tessera privacy access Email a@b.c`."""
    request = {"users": [{"key": "cli", "action": ["access"],
               "userIDs": [{"namespace": namespace, "value": value}]}], "expandIds": True}  # fmt: skip
    if url:
        with open_client(url, api_key, sandbox) as client:
            emit(client.create_privacy_jobs(request)["jobs"][0], as_json)
        return
    with open_sandbox(home, sandbox) as sb:
        emit(sb.privacy.run(request)[0], as_json)


@privacy_app.command("delete")
def privacy_delete(
    namespace: str,
    value: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    home: HomeOption = None,
    sandbox: SandboxOption = "prod",
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Delete the person holding an identity: fragments, events, identities, memberships.

    Example: `tessera privacy delete Email jane@example.com --yes`
    """
    if not yes:
        typer.confirm(f"Delete every trace of the person holding {namespace}:{value}?", abort=True)
    request = {"users": [{"key": "cli", "action": ["delete"],
               "userIDs": [{"namespace": namespace, "value": value}]}], "expandIds": True}  # fmt: skip
    if url:
        with open_client(url, api_key, sandbox) as client:
            job = client.create_privacy_jobs(request)["jobs"][0]
    else:
        with open_sandbox(home, sandbox) as sb:
            job = sb.privacy.run(request)[0]
    emit({k: job.get(k) for k in ("jobId", "status", "deleted")}, as_json)
