"""The documented identity scenarios through real ingestion: graphs equal the simulator's.

Each scenario is run twice: by the simulator (the engine with no store) and as ExperienceEvents
ingested one by one into a real sandbox, whose graph is then reloaded from the store. Both must
give the same graphs, and the stored graph must survive a restart unchanged.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tessera.identity import simulate
from tessera.model import Identity
from tessera.platform import Platform


def _ecid(value: str) -> str:
    """Scenario ECIDs (``111``, ``E``) as valid 38-digit ECIDs."""
    if value.isdigit():
        return value.rjust(38, "0")
    return str(int(hashlib.sha256(value.encode()).hexdigest(), 16))[:38].rjust(38, "0")


def _rows(text: str) -> list[list[Identity]]:
    rows = []
    for line in text.strip().splitlines():
        row = []
        for part in line.split(","):
            ns, _, value = part.strip().partition(":")
            value = value.strip()
            row.append(Identity(ns.strip(), _ecid(value) if ns.strip() == "ECID" else value))
        rows.append(row)
    return rows


def _ingest(
    home: Path, rows: list[list[Identity]], unique: list[str], priority: list[str], limit: int
) -> set[frozenset[str]]:
    with Platform.open(home) as platform:
        sb = platform.sandbox()
        schemas = sb.schemas.ensure_standard_schemas()
        ds = sb.datasets.create("Events", schemas["event"])
        sb.identity.set_rules(unique=unique, priority=priority, limit=limit)
        for n, row in enumerate(rows):
            imap: dict[str, list[dict[str, str]]] = {}
            for ident in row:
                imap.setdefault(ident.namespace, []).append({"id": ident.id})
            event = {
                "_id": f"row-{n}",
                "timestamp": f"2024-01-01T00:{n // 60:02d}:{n % 60:02d}Z",
                "identityMap": imap,
            }
            sb.ingest.stream([event], dataset_id=ds["id"])
        live = {frozenset(str(i) for i in g) for g in sb.identity.graph.components().values() if len(g) >= 2}
    with Platform.open(home) as platform:  # the stored graph, rebuilt after a restart
        again = {
            frozenset(str(i) for i in g)
            for g in platform.sandbox().identity.graph.components().values()
            if len(g) >= 2
        }
    assert live == again
    return live


SCENARIOS = {
    "ID-LINK-1": (
        """CRMID: 60013ABC, Phone: 555-555-1234, Email: julien@acme.com
        CRMID: 31260XYZ, Phone: 777-777-6890, Email: evan@acme.com
        ECID: 38652
        ECID: 38652, CRMID: 31260XYZ
        ECID: 44675
        ECID: 44675, CRMID: 31260XYZ""",
        [], [], 50,
    ),
    "IOA-1": ("CRMID: Jane, ECID: 111\nCRMID: John, ECID: 111", ["CRMID"], ["CRMID", "ECID"], 50),
    "IOA-2": (
        """CRMID: Jane, Email: jane@x.com
        CRMID: John, Email: john@x.com
        CRMID: Jane, ECID: 111
        CRMID: John, ECID: 111""",
        ["CRMID", "Email"], ["CRMID", "Email", "ECID"], 50,
    ),
    "IOA-3": (
        """CRMID: Jane, ECID: 1
        CRMID: John, ECID: 2
        CRMID: Jane, Email: test@test.com
        CRMID: John, Email: test@test.com""",
        ["CRMID", "Email"], ["CRMID", "Email", "ECID"], 50,
    ),
    "IOA-4": (
        """CRMID: Kevin, ECID: E
        CRMID: Nora, ECID: E
        ECID: E
        CRMID: Kevin, ECID: E""",
        ["CRMID"], ["CRMID", "ECID"], 50,
    ),
    "ID-CAP-2 (limit 6)": (
        """CRMID: 60013, ECID: 35577
        CRMID: 25212, ECID: 35577
        CRMID: 60013, IDFA: a1
        CRMID: 60013, IDFA: a2
        CRMID: 25212, IDFA: b1
        CRMID: 25212, IDFA: b2
        CRMID: 25212, ECID: 32110""",
        [], [], 6,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_through_ingestion_matches_simulator(name: str, tmp_path: Path) -> None:
    text, unique, priority, limit = SCENARIOS[name]
    rows = _rows(text)
    expected = {
        frozenset(str(i) for i in g)
        for g in simulate(rows, unique=unique, priority=priority, limit=limit).graphs
    }
    assert _ingest(tmp_path / "home", rows, unique, priority, limit) == expected


def test_cap_2_split_when_the_bridge_is_removed(tmp_path: Path) -> None:
    text, unique, priority, limit = SCENARIOS["ID-CAP-2 (limit 6)"]
    graphs = _ingest(tmp_path / "home", _rows(text), unique, priority, limit)
    assert all(len(g) <= 6 for g in graphs)
    assert not any("CRMID:60013" in g and "CRMID:25212" in g for g in graphs)


NAMESPACES = ["CRMID", "Email", "ECID", "IDFA"]
identity_strategy = st.builds(
    lambda ns, n: Identity(ns, _ecid(str(n)) if ns == "ECID" else f"{ns.lower()}-{n}"),
    st.sampled_from(NAMESPACES),
    st.integers(0, 5),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(identity_strategy, min_size=1, max_size=4, unique=True), min_size=1, max_size=12),
    unique=st.sets(st.sampled_from(["CRMID", "Email"])),
    limit=st.integers(3, 8),
)
def test_random_rows_ingestion_equals_simulator(
    rows: list[list[Identity]], unique: set[str], limit: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    priority = ["CRMID", "Email", "IDFA", "ECID"]
    expected = {
        frozenset(str(i) for i in g)
        for g in simulate(rows, unique=sorted(unique), priority=priority, limit=limit).graphs
    }
    home = tmp_path_factory.mktemp("home")
    assert _ingest(home, rows, sorted(unique), priority, limit) == expected
