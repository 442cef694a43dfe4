"""Identity graph engine (``spec/aep.md`` §c): pure in-memory, persisted by the storage layer.

* :func:`validate_row` — refusal rules for one row's identities (junk values, ECID, count).
* :class:`LinkingRules` — unique namespaces, namespace priority, graph limit.
* :class:`IdentityGraph` — incremental linking with the identity optimisation algorithm, graph
  limit, unlink/delete, re-resolve, cluster history, queries and ``to_rows``/``from_rows``.
* :func:`resolve_bulk` — vectorised resolution of a batch, identical to row-at-a-time.
* :func:`simulate` — the graph simulator (same engine, no store).
"""

from tessera.identity.bulk import BulkResult, resolve_bulk
from tessera.identity.graph import GraphChanges, GraphState, GraphStats, IdentityGraph, LinkInfo, RowResult
from tessera.identity.namespaces import DEFAULT_NAMESPACES, IdentityType, Namespace
from tessera.identity.rules import LinkingRules
from tessera.identity.simulate import SimulationResult, simulate
from tessera.identity.validation import ValidatedRow, validate_row

__all__ = [
    "DEFAULT_NAMESPACES",
    "BulkResult",
    "GraphChanges",
    "GraphState",
    "GraphStats",
    "IdentityGraph",
    "IdentityType",
    "LinkInfo",
    "LinkingRules",
    "Namespace",
    "RowResult",
    "SimulationResult",
    "ValidatedRow",
    "resolve_bulk",
    "simulate",
    "validate_row",
]
