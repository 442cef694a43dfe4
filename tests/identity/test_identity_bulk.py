from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from identity_helpers import canonical

from tessera.errors import Conflict, InvalidInput
from tessera.identity import IdentityGraph, LinkingRules, resolve_bulk, resolve_columns
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


def test_columns_from_arrow_match_rows() -> None:
    """A batch read as Arrow columns resolves exactly as the same rows of Identity objects."""
    rows = [*ROWS, row("CRMID:Jane, CRMID:Jane, ECID:5"), row("IDFA:7, IDFA:6, Phone:1")]
    by_rows = IdentityGraph(RULES)
    expected = resolve_bulk(by_rows, rows, ts=list(range(100, 100 + len(rows))))
    offsets = [0]
    for r in rows:
        offsets.append(offsets[-1] + len(r))
    flat = [i for r in rows for i in r]
    by_cols = IdentityGraph(RULES)
    out = resolve_columns(
        by_cols,
        offsets,
        pa.chunked_array(
            [pa.array([i.namespace for i in flat[:5]]), pa.array([i.namespace for i in flat[5:]])]
        ),
        pa.array([i.id for i in flat]),
        ts=np.arange(100, 100 + len(rows)),
    )
    assert canonical(by_cols) == canonical(by_rows)
    assert [None if p < 0 else flat[p] for p in out.primary.tolist()] == expected.primary
    assert [out.rejected.get(i) for i in range(len(rows))] == expected.rejected
    # the duplicated CRMID:Jane is merged, not rejected; two unlisted IDFAs tie on rank and namespace: the smaller value wins
    assert expected.rejected[-2] is None and expected.primary[-1] == Identity("IDFA", "6")


def test_batches_with_many_namespaces_match_row_at_a_time() -> None:
    """More namespaces in one batch than fit the per-row bit masks still resolve identically."""
    rows = [
        [Identity(f"NS{i}", "v"), Identity(f"NS{i + 1}", "v"), Identity(f"NS{i}", "w")] for i in range(70)
    ]
    rules = LinkingRules.of(unique=["NS3"], priority=["NS5", "NS3"], limit=20)
    inc = IdentityGraph(rules)
    results = [inc.add_row(r) for r in rows]
    bulk = IdentityGraph(rules)
    out = resolve_bulk(bulk, rows)
    assert canonical(bulk) == canonical(inc)
    assert out.rejected == [r.rejected for r in results]
    assert out.rejected[5] is not None  # two NS5 values in the row whose top priority is NS5


def test_columns_that_do_not_fit_are_refused() -> None:
    with pytest.raises(InvalidInput):
        resolve_columns(IdentityGraph(), [0, 3], ["Email", "ECID"], ["a", "1"])
    with pytest.raises(InvalidInput):
        resolve_columns(IdentityGraph(), [0, 2], ["Email", None], ["a", "1"])


def test_only_rows_that_link_take_a_sequence_number() -> None:
    """A row that links nothing (one identity, empty, rejected, or only namespaces that build no
    graph) changes nothing, so it takes no sequence number; row at a time and bulk agree."""
    rows = [
        row("ECID:1"),
        row("Email:a, ECID:1"),
        row("ECID:2"),
        row("CRMID:A, CRMID:B"),  # rejected: two identities of the unique namespace
        row("Email:a, ECID:3"),
        [],
    ]
    inc = IdentityGraph(RULES)
    for r in rows:
        inc.add_row(r)
    bulk = IdentityGraph(RULES)
    resolve_bulk(bulk, rows)
    assert inc.seq == bulk.seq == 2
    assert canonical(bulk) == canonical(inc)
    assert [h.seq for h in inc.profile_history()] == [1]  # created by the first linking row
    assert sorted(li.seq for li in inc.links()) == [1, 2]
