"""A populated sandbox and every query a user can ask of it, for backup/restore comparisons.

The embedded backup test and the Redis one (``tests/scaleout/test_backup_on_redis.py``) share
these, so both prove "answers every query identically" against the same list of queries.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from tests.conftest import crm_record, ecid, web_event

from tessera.api import create_app
from tessera.platform import Platform, Sandbox

UPS = "/data/core/ups"
ENTITIES = f"{UPS}/access/entities"
PEOPLE = 12


def populate(sb: Sandbox) -> dict[str, Any]:
    """Records, events, a stitched graph, a merge policy, segments with a finished job, a destination."""
    ids = sb.schemas.ensure_standard_schemas()
    sb.identity.create_namespace("LoyaltyId", "Loyalty id", "CROSS_DEVICE")
    crm = sb.datasets.create("CRM", ids["profile"])
    web = sb.datasets.create("Web", ids["event"])
    records = [
        crm_record(f"c{i}", f"p{i}@x.com", "Ann" if i % 3 == 0 else "Bob", loyalty={"points": i * 10})
        for i in range(PEOPLE)
    ]
    sb.ingest.ingest_records(crm["id"], records)
    events = [
        web_event(f"e{i}-{j}", ecid(i), f"2026-01-0{1 + j}T10:00:00Z", Email=f"p{i}@x.com")
        for i in range(PEOPLE)
        for j in range(2)
    ]
    sb.ingest.ingest_records(web["id"], events)
    policy = sb.merge_policies.create(
        {
            "name": "crm-first",
            "identityGraph": {"type": "pdg"},
            "attributeMerge": {"type": "dataSetPrecedence", "order": [crm["id"]]},
        }
    )
    anns = sb.segments.create(
        {
            "name": "Anns",
            "schema": {"name": "_xdm.context.profile"},
            "expression": {"type": "PQL", "format": "pql/text", "value": 'person.name.firstName = "Ann"'},
        }
    )
    sb.segments.run_job([{"segmentId": anns["id"]}])
    sb.segments.activation.destinations.create(
        {
            "type": "webhook",
            "name": "hook",
            "url": "http://127.0.0.1:9/hook",
            "secret": "s3cret-s3cret",
            "segments": [anns["id"]],
        }
    )
    return {"crm": crm["id"], "web": web["id"], "policy": policy.id, "segment": anns["id"]}


def normalise(value: Any, original: str, copy: str) -> Any:
    """The copy's answer with its sandbox name (and folder) written as the original's."""
    raw = orjson.dumps(value).decode()
    return orjson.loads(
        raw.replace(f"sandboxes/{copy}", f"sandboxes/{original}").replace(f'"{copy}"', f'"{original}"')
    )


def first_difference(a: Any, b: Any, where: str = "") -> str:
    if type(a) is not type(b):
        return f"{where}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return first_difference(a.get(k), b.get(k), f"{where}.{k}")
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{where}[{i}]")
    return f"{where}: {a!r} != {b!r}"


async def answers(client: httpx.AsyncClient, sandbox: str, made: dict[str, Any]) -> dict[str, Any]:
    """Every query a user can ask of the sandbox's data, keyed by a label."""
    h = {"x-sandbox-name": sandbox}
    out: dict[str, Any] = {}

    async def get(label: str, path: str, **params: Any) -> None:
        response = await client.get(path, params=params, headers=h)
        out[label] = [response.status_code, response.json()]

    for i in range(PEOPLE):
        profile = {"schema.name": "_xdm.context.profile", "entityId": f"p{i}@x.com", "entityIdNS": "Email"}
        await get(f"profile {i}", ENTITIES, **profile)
        await get(f"profile {i} crm-first", ENTITIES, **profile, mergePolicyId=made["policy"])
        await get(
            f"events {i}",
            ENTITIES,
            **{
                "schema.name": "_xdm.context.experienceevent",
                "relatedSchema.name": "_xdm.context.profile",
                "relatedEntityId": ecid(i),
                "relatedEntityIdNS": "ECID",
                "orderby": "-timestamp",
            },
        )
        await get(f"cluster {i}", "/data/core/identity/cluster/members", namespace="Email", id=f"p{i}@x.com")
        await get(f"history {i}", "/data/core/identity/cluster/history", namespace="Email", id=f"p{i}@x.com")
    await get("stats", "/tessera/stats")
    await get("datasets", "/data/foundation/catalog/dataSets")
    await get("batches", "/data/foundation/catalog/batches")
    await get("merge policies", f"{UPS}/config/mergePolicies")
    await get("merge policy", f"{UPS}/config/mergePolicies/{made['policy']}")
    await get("segments", f"{UPS}/segment/definitions")
    await get("segment jobs", f"{UPS}/segment/jobs")
    await get("schemas", "/data/foundation/schemaregistry/tenant/schemas")
    await get("namespaces", "/data/core/idnamespace/identities")
    for ns in out["namespaces"][1]:
        if (
            ns["code"] != "LoyaltyId"
        ):  # built-in namespaces report the time of the request, created ones their own
            ns.pop("createTime"), ns.pop("updateTime")
    await get("alerts", "/tessera/alerts")
    return out


async def answers_of(platform: Platform, sandbox: str, made: dict[str, Any]) -> dict[str, Any]:
    """:func:`answers` through the HTTP API of ``platform`` (in process, no server)."""
    transport = httpx.ASGITransport(app=create_app(platform), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await answers(client, sandbox, made)


def assert_same_answers(
    original: dict[str, Any], copy: dict[str, Any], original_name: str, copy_name: str, made: dict[str, Any]
) -> None:
    """Every answer of the copy equals the original's (its own name written as the original's)."""
    assert set(original) == set(copy)
    for label, answer in original.items():
        assert answer[0] == 200, (label, answer)
        restored = normalise(copy[label], original_name, copy_name)
        assert restored == answer, (label, first_difference(restored, answer))
    # the comparison covered segment memberships: the Anns' profiles carry the segment
    anns = [
        v for k, v in copy.items() if k.startswith("profile") and made["segment"] in orjson.dumps(v).decode()
    ]
    assert len(anns) == 2 * len(range(0, PEOPLE, 3))
