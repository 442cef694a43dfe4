"""Identity graph engine (``spec/aep.md`` §c): pure in-memory; the storage layer persists it.

* :func:`validate_row` — refusal rules for one row's identities (junk values, ECID shape, at
  most 20 per row, duplicates merged).
* :class:`LinkingRules` — unique namespaces, namespace priority, graph limit (default 50).
* :class:`IdentityGraph` — incremental linking (``add_row``), the identity optimisation
  algorithm (Reading B, ``rules.link_sort_key``), the graph limit, ``unlink``,
  ``delete_identity``, ``re_resolve``, cluster history and queries (``members``,
  ``profile_id``, ``mapping``, ``explain``, ``stats``).
* :func:`resolve_bulk` — vectorised resolution of a batch, identical to row-at-a-time;
  :func:`resolve_columns` — the same for a batch held as columns (e.g. Arrow arrays).
* :func:`simulate` — the graph simulator (same engine, no store).

Persistence: either a full snapshot (``IdentityGraph.to_rows()`` → :class:`GraphState`, rebuilt
with ``IdentityGraph.from_rows(state, rules)``), or a delta journal: build the engine with
``journal=True`` and call ``drain_journal()`` after each row or batch; the :class:`GraphDelta`
holds identity, link and profile rows to upsert or delete plus new history entries. Applying
every delta to empty tables reproduces ``to_rows()`` exactly.

Profile ids: each :class:`GraphChanges` (from ``add_row``, ``unlink``, ...) lists profile ids
created, merged (old → surviving), split (new → source) and deleted, the identities that left
the graph, and each changed profile's members, so the profile layer can move fragments.

>>> g = IdentityGraph(LinkingRules.of(unique=["CRMID"], priority=["CRMID", "ECID"]))
>>> r = g.add_row([Identity("CRMID", "Tom"), Identity("ECID", "1")], ts=1000, dataset="web")
>>> str(r.primary), len(r.changes.created) if r.changes else 0
('CRMID:Tom', 1)
"""

from tessera.identity.bulk import BulkResult, ColumnResult, resolve_bulk, resolve_columns
from tessera.identity.graph import (
    GraphChanges,
    GraphDelta,
    GraphState,
    GraphStats,
    HistoryEntry,
    IdentityGraph,
    LinkInfo,
    RowResult,
)
from tessera.identity.namespaces import DEFAULT_NAMESPACES, IdentityType, Namespace
from tessera.identity.rules import LinkingRules
from tessera.identity.simulate import SimulationResult, simulate
from tessera.identity.validation import ValidatedRow, validate_row
from tessera.model import Identity

__all__ = [
    "DEFAULT_NAMESPACES",
    "BulkResult",
    "ColumnResult",
    "GraphChanges",
    "GraphDelta",
    "GraphState",
    "GraphStats",
    "HistoryEntry",
    "Identity",
    "IdentityGraph",
    "IdentityType",
    "LinkInfo",
    "LinkingRules",
    "Namespace",
    "RowResult",
    "SimulationResult",
    "ValidatedRow",
    "resolve_bulk",
    "resolve_columns",
    "simulate",
    "validate_row",
]
