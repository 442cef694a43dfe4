"""Shared helpers for identity tests: canonical graph state for equality checks."""

from __future__ import annotations

from typing import Any

from tessera.identity import IdentityGraph


def canonical(graph: IdentityGraph) -> dict[str, Any]:
    """Everything that defines a graph, independent of internal ids and ordering (history excluded)."""
    state = graph.to_rows()
    created = {p.profile_id: p.created_seq for p in state.profiles}
    profiles: dict[str, set[tuple[str, str, int]]] = {}
    for row in state.identities:
        profiles.setdefault(row.profile_id, set()).add((row.namespace, row.id, row.first_seen))
    return {
        "profiles": {(pid, created[pid], frozenset(m)) for pid, m in profiles.items()},
        "links": set(state.links),
        "seq": state.seq,
    }
