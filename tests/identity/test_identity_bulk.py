from __future__ import annotations

import pytest
from identity_helpers import canonical

from tessera.errors import Conflict
from tessera.identity import IdentityGraph, LinkingRules, resolve_bulk
from tessera.model import Identity


def row(text: str) -> list[Identity]:
    return [Identity(*p.strip().split(":", 1)) for p in text.split(",")]


ROWS = [
    row("CRMID:Jane, Email:jane@x"),
    row("CRMID:John, Email:john@x"),
    row("ECID:1"),
    row("CRMID:Jane, ECID:111"),
    row("CRMID:John, ECID:111"),
    row("CRMID:A, CRMID:B"),
    row("IDFA:d, ECID:9, Phone:5"),
]
RULES = LinkingRules(unique=frozenset({"CRMID", "Email"}), priority=("CRMID", "Email", "ECID"))


def test_bulk_matches_row_at_a_time_and_reports_rows() -> None:
    inc = IdentityGraph(RULES)
    results = [inc.add_row(r, dataset="crm", batch="b1") for r in ROWS]
    bulk = IdentityGraph(RULES)
    out = resolve_bulk(bulk, ROWS, dataset="crm", batch="b1")
    assert canonical(bulk) == canonical(inc)
    assert out.primary == [r.primary for r in results]
    assert out.rejected == [r.rejected for r in results]
    assert out.rejected[5] is not None
    assert out.replayed_rows == 4  # only the four rows of the Jane/John/ECID:111 group needed the rules


def test_bulk_into_an_existing_graph_merges_existing_components() -> None:
    g = IdentityGraph()
    a = g.add_row(row("Email:a, ECID:1")).changes
    b = g.add_row(row("Email:b, ECID:2")).changes
    assert a is not None and b is not None
    older, younger = a.created[0], b.created[0]
    out = resolve_bulk(g, [row("ECID:1, Phone:7"), row("Phone:7, ECID:2")], ts=[10, 11])
    assert out.changes.merged == {younger: older}
    assert set(out.changes.profiles[older]) == set(row("Email:a, ECID:1, Email:b, ECID:2, Phone:7"))
    assert g.seq == 4


def test_journal_must_be_enabled() -> None:
    with pytest.raises(Conflict):
        IdentityGraph().drain_journal()
