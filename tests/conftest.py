"""Shared fixtures: a fresh platform per test, a sandbox with the standard schemas and datasets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tessera.platform import Platform, Sandbox

DATA = Path(__file__).parent / "data"


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    p = Platform.open(tmp_path / "home")
    yield p
    p.close()


@pytest.fixture
def sandbox(platform: Platform) -> Sandbox:
    return platform.sandbox()


@pytest.fixture
def retail(sandbox: Sandbox) -> dict[str, Any]:
    """The standard profile/event schemas and three datasets: CRM, Loyalty (records) and Web (events)."""
    schemas = sandbox.schemas.ensure_standard_schemas()
    crm = sandbox.datasets.create("CRM", schemas["profile"])
    loyalty = sandbox.datasets.create("Loyalty", schemas["profile"])
    web = sandbox.datasets.create("Web", schemas["event"])
    return {"schemas": schemas, "crm": crm, "loyalty": loyalty, "web": web, "sandbox": sandbox}


def ecid(n: int) -> str:
    """A valid 38-digit ECID for test number ``n``."""
    return f"{n:038d}"


def crm_record(crm_id: str, email: str, first: str = "Jane", **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "identityMap": {
            "CRMID": [{"id": crm_id, "primary": True}],
            "Email": [{"id": email}],
        },
        "person": {"name": {"firstName": first, "lastName": "Doe"}},
        "personalEmail": {"address": email},
    }
    record.update(extra)
    return record


def web_event(
    event_id: str, ecid_value: str, ts: str, event_type: str = "web.webpagedetails.pageViews", **ids: str
) -> dict[str, Any]:
    identity_map: dict[str, Any] = {"ECID": [{"id": ecid_value, "primary": True}]}
    for ns, value in ids.items():
        identity_map[ns] = [{"id": value}]
    return {"_id": event_id, "timestamp": ts, "eventType": event_type, "identityMap": identity_map}
