"""Backup and restore of a sandbox: the restored copy answers every query as the original does."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow.parquet as pq
import pytest
from tests.conftest import crm_record, ecid, web_event
from typer.testing import CliRunner

from tessera.api import create_app
from tessera.cli.main import app as cli
from tessera.errors import Conflict, InvalidInput
from tessera.ops.backup import backup_sandbox, read_manifest, restore_sandbox
from tessera.ops.migrations import CURRENT_FORMAT
from tessera.platform import Platform, Sandbox
from tessera.settings import Settings

pytestmark = pytest.mark.anyio
UPS = "/data/core/ups"
ENTITIES = f"{UPS}/access/entities"
PEOPLE = 12


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def platform(home: Path) -> Iterator[Platform]:
    with Platform(Settings(home=str(home), group_commit_ms=0.0)) as opened:
        yield opened


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


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(platform), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_restored_sandbox_answers_every_query_identically(
    platform: Platform, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    platform.sandboxes.create("shop")
    made = populate(platform.sandbox("shop"))
    manifest = backup_sandbox(platform, "shop", tmp_path / "bk")
    assert manifest["storeFormat"] == CURRENT_FORMAT and manifest["counts"]["rows"] > PEOPLE * 3
    # the tables are plain Parquet: a reader outside Tessera sees every row
    fragments = pq.read_table(tmp_path / "bk" / manifest["tables"]["memberships"]["file"])
    assert fragments.num_rows == manifest["tables"]["memberships"]["rows"] > 0

    result = restore_sandbox(platform, tmp_path / "bk", as_name="shop-copy")
    assert result["rows"] == manifest["counts"]["rows"]
    original = await answers(client, "shop", made)
    copy = await answers(client, "shop-copy", made)
    assert set(original) == set(copy)
    for label, answer in original.items():
        assert answer[0] == 200, (label, answer)
        restored = normalise(copy[label], "shop", "shop-copy")
        assert restored == answer, (label, first_difference(restored, answer))
    # the comparison covered segment memberships: the Anns' profiles carry the segment
    anns = [
        v for k, v in copy.items() if k.startswith("profile") and made["segment"] in orjson.dumps(v).decode()
    ]
    assert len(anns) == 2 * len(range(0, PEOPLE, 3))


def test_restore_into_another_installation_via_cli(platform: Platform, tmp_path: Path) -> None:
    made = populate(platform.sandbox())
    before = platform.sandbox().profiles.count()
    platform.close()
    runner = CliRunner()
    backup = runner.invoke(
        cli, ["sandbox", "backup", "prod", str(tmp_path / "bk"), "--home", str(platform.home), "--json"]
    )
    assert backup.exit_code == 0, backup.output
    assert orjson.loads(backup.output)["rows"] > 0
    other = tmp_path / "other-home"
    restored = runner.invoke(
        cli, ["sandbox", "restore", str(tmp_path / "bk"), "--home", str(other), "--json"]
    )
    assert restored.exit_code == 2 and "already exists" in restored.output  # prod always exists
    restored = runner.invoke(
        cli, ["sandbox", "restore", str(tmp_path / "bk"), "--as", "copy", "--home", str(other), "--json"]
    )
    assert restored.exit_code == 0, restored.output
    with Platform(Settings(home=str(other))) as second:
        sb = second.sandbox("copy")
        assert sb.profiles.count() == before
        assert sb.merge_policies.get(made["policy"]).name == "crm-first"
        assert [p.name for p in sb.merge_policies.list()].count("crm-first") == 1


def test_damaged_or_foreign_backups_are_refused_before_anything_is_created(
    platform: Platform, tmp_path: Path
) -> None:
    populate(platform.sandbox())
    backup_sandbox(platform, "prod", tmp_path / "bk")
    with pytest.raises(Conflict):
        backup_sandbox(platform, "prod", tmp_path / "bk")  # not empty
    with pytest.raises(Conflict):
        restore_sandbox(platform, tmp_path / "bk")  # prod exists
    damaged = tmp_path / "damaged"
    shutil.copytree(tmp_path / "bk", damaged)
    table = next((damaged / "tables").iterdir())
    table.write_bytes(table.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(InvalidInput, match="damaged"):
        restore_sandbox(platform, damaged, as_name="x")
    assert not platform.sandboxes.exists("x")
    escaping = tmp_path / "escaping"
    shutil.copytree(tmp_path / "bk", escaping)
    manifest = orjson.loads((escaping / "manifest.json").read_bytes())
    manifest["files"]["../../evil"] = {"bytes": 1, "sha256": "0"}
    (escaping / "manifest.json").write_bytes(orjson.dumps(manifest))
    with pytest.raises(InvalidInput, match="outside"):
        read_manifest(escaping)
    with pytest.raises(InvalidInput, match="not a Tessera"):
        (tmp_path / "foreign").mkdir()
        (tmp_path / "foreign" / "manifest.json").write_bytes(b"{}")
        restore_sandbox(platform, tmp_path / "foreign", as_name="y")
