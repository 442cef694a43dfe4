"""Load the demo into a sandbox: schemas, linking rules, generated datasets, the real Luma files.

Used by ``tessera demo`` (and ``make demo``), by tests and by benchmarks, so all three see the
same data. Loading is idempotent per sandbox: a sandbox that already holds the demo is left as is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tessera.demo.generator import generate
from tessera.demo.real import CRM_CSV, CRM_CSV_MAPPING, CRM_IDENTITY_FIELDS, LUMA_EVENTS, LUMA_IDENTITY_FIELDS
from tessera.errors import NotFound
from tessera.model import utcnow
from tessera.store import WriteBatch, get_json

if TYPE_CHECKING:
    from tessera.platform import Sandbox

DEMO_META = "demo_meta"

DATASET_NAMES = {
    "crm_profiles": "CRM Profiles",
    "loyalty_members": "Loyalty Members",
    "web_events": "Web Events",
    "login_events": "Login Events",
    "mobile_events": "Mobile App Events",
    "offline_purchases": "Offline Purchases",
    "call_center": "Call Centre Contacts",
}

LINKING_RULES: dict[str, Any] = {
    "unique": ["CRMID"],
    "priority": ["CRMID", "Email", "Phone", "loginID", "LOYALTYID", "IDFA", "GAID", "ECID", "AAID"],
    "limit": 50,
}
"""One person per CRM id; people ids rank above devices, devices above cookies (``spec/aep.md`` §c5)."""

Report = Callable[[str, int, int], None]
"""Progress callback: (dataset name, rows done, rows total)."""


def demo_status(sandbox: Sandbox) -> dict[str, Any] | None:
    """What demo data the sandbox holds, or ``None``."""
    doc = get_json(sandbox.store, DEMO_META, "loaded")
    return dict(doc) if doc else None


def load_demo(
    sandbox: Sandbox,
    *,
    people: int = 20_000,
    seed: int = 7,
    real_data: bool = True,
    progress: Report | None = None,
) -> dict[str, Any]:
    """Provision and load the demo; returns a summary with counts and rates per dataset.

    Args:
        sandbox: the target sandbox (normally ``prod`` of a fresh data directory).
        people: generated people.
        seed: generator seed (same seed, same data).
        real_data: also load the Luma web events and CRM sample files.
        progress: called as rows are ingested.
    """
    existing = demo_status(sandbox)
    if existing is not None:
        return existing
    started = time.perf_counter()
    schemas = sandbox.schemas.ensure_standard_schemas()
    try:
        sandbox.identity.namespace("LOYALTYID")
    except NotFound:
        sandbox.identity.create_namespace(
            "LOYALTYID", "Loyalty ID", "CROSS_DEVICE", "Luma loyalty programme ids"
        )
    sandbox.identity.set_rules(**LINKING_RULES)
    summary: dict[str, Any] = {"people": people, "seed": seed, "datasets": []}
    # The story is "now": recent purchases make the 24-hour streaming segment live, and its members
    # leave on their own as the hours pass. Same seed and same hour give the same data.
    reference = utcnow().replace(minute=0, second=0, microsecond=0)
    demo = generate(people, seed=seed, reference_time=reference)
    summary["referenceTime"] = reference.isoformat()
    for ds in demo.datasets:
        name = DATASET_NAMES.get(ds.name, ds.name)
        kind = "profile" if ds.xdm_class == "profile" else "event"
        dataset = _dataset(sandbox, name, schemas[kind], ds.title)
        total = ds.count()
        t0 = time.perf_counter()

        def tick(done: int, _name: str = name, _total: int = total) -> None:
            if progress is not None:
                progress(_name, done, _total)

        batch = sandbox.ingest.ingest_records(dataset["id"], ds.records(), progress=tick)
        summary["datasets"].append(_entry(name, batch, time.perf_counter() - t0))
    if real_data:
        luma = _dataset(
            sandbox, "Luma Web Events", schemas["event"], "Adobe's Luma demo site web events (real data)"
        )
        sandbox.datasets.patch(luma["id"], {"identitySource": {"fields": LUMA_IDENTITY_FIELDS}})
        t0 = time.perf_counter()
        batch = sandbox.ingest.ingest_file(
            luma["id"], LUMA_EVENTS, progress=lambda n: progress and progress("Luma Web Events", n, 23_055)
        )
        summary["datasets"].append(_entry("Luma Web Events", batch, time.perf_counter() - t0))
        crm = _dataset(
            sandbox,
            "Luma CRM Profiles",
            schemas["profile"],
            "Adobe's sample CRM file (real data, with bad dates)",
        )
        sandbox.datasets.patch(crm["id"], {"identitySource": {"fields": CRM_IDENTITY_FIELDS}})
        t0 = time.perf_counter()
        batch = sandbox.ingest.ingest_file(crm["id"], CRM_CSV, mapping=CRM_CSV_MAPPING)
        summary["datasets"].append(_entry("Luma CRM Profiles", batch, time.perf_counter() - t0))
    summary["segments"] = _sample_segments(sandbox)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["profiles"] = sandbox.profiles.count()
    summary["graph"] = {
        k: v for k, v in sandbox.identity.stats(3).items() if k in ("graphs", "identities", "refused")
    }
    sandbox.store.write(WriteBatch().put_json(DEMO_META, "loaded", summary))
    return summary


SAMPLE_SEGMENTS: tuple[tuple[str, str, str, bool], ...] = (
    ("US customers", "People whose home address is in the United States",
     'homeAddress.countryCode = "US"', False),
    ("Gold and platinum members", "Loyalty members in the two top tiers",
     '_tessera.loyalty.tier in ["gold", "platinum"]', True),
    ("Bought in the last 24 hours", "Any purchase in the last day; exits on its own a day later",
     'xEvent[eventType = "commerce.purchases" and timestamp occurs < 24 hours before now].count() > 0', True),
    ("Cart abandoners", "Added to cart in the last 30 days and never bought in that time",
     'xEvent[eventType = "commerce.productListAdds" and timestamp occurs < 30 days before now].count() > 0 and '
     'xEvent[eventType = "commerce.purchases" and timestamp occurs < 30 days before now].count() = 0', False),
    ("Big spenders", "More than 500 spent on purchases in the last 90 days",
     'xEvent[eventType = "commerce.purchases" and timestamp occurs < 90 days before now]'
     '.sum(commerce.order.priceTotal) > 500', False),
)  # fmt: skip
"""Segments the demo starts with: batch and streaming, attribute and event conditions."""


def _sample_segments(sandbox: Sandbox) -> list[dict[str, Any]]:
    """Create the sample segments, evaluate them once and add a file destination for one."""
    if sandbox.segments is None:
        return []
    created = []
    for name, description, expression, streaming in SAMPLE_SEGMENTS:
        created.append(
            sandbox.segments.create(
                {
                    "name": name,
                    "description": description,
                    "expression": {"type": "PQL", "format": "pql/text", "value": expression},
                    "evaluationInfo": {
                        "batch": {"enabled": not streaming},
                        "continuous": {"enabled": streaming},
                        "synchronous": {"enabled": False},
                    },
                }
            )
        )
    job = sandbox.segments.run_job([{"segmentId": seg["id"]} for seg in created])
    counts = job.get("metrics", {}).get("segmentedProfileCounter", {})
    gold = created[1]
    sandbox.segments.activation.destinations.create(
        {
            "type": "file",
            "name": "Gold members file",
            "segments": [gold["id"]],
            "format": "csv",
            "mode": "full",
            "fields": "identities,person.name,personalEmail.address",
        }  # fmt: skip
    )
    return [{"id": seg["id"], "name": seg["name"], "members": counts.get(seg["id"], 0)} for seg in created]


def _dataset(sandbox: Sandbox, name: str, schema_id: str, description: str) -> dict[str, Any]:
    try:
        return sandbox.datasets.find(name)
    except NotFound:
        return sandbox.datasets.create(name, schema_id, description=description)


def _entry(name: str, batch: dict[str, Any], seconds: float) -> dict[str, Any]:
    m = batch["metrics"]
    return {
        "dataset": name,
        "batchId": batch["id"],
        "records": m["inputRecordCount"],
        "ingested": m["outputRecordCount"],
        "rejected": m["failedRecordCount"],
        "seconds": round(seconds, 2),
        "recordsPerSecond": round(m["inputRecordCount"] / seconds) if seconds > 0 else None,
    }
