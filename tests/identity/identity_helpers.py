"""Shared helpers for identity tests: canonical graph state for equality checks."""

from __future__ import annotations

from typing import Any

from tessera.identity import IdentityGraph
from tessera.identity.graph import GraphDelta, IdentityRow, LinkRow, ProfileRow


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


class DictStore:
    """A stand-in for the SQLite tables the lead keeps, fed only by ``drain_journal`` deltas."""

    def __init__(self) -> None:
        self.identities: dict[tuple[str, str], IdentityRow] = {}
        self.links: dict[tuple[str, str, str, str], LinkRow] = {}
        self.profiles: dict[str, ProfileRow] = {}
        self.seq = 0

    def apply(self, delta: GraphDelta) -> None:
        for ident in delta.delete_identities:
            self.identities.pop((ident.namespace, ident.id), None)
        for row in delta.upsert_identities:
            self.identities[(row.namespace, row.id)] = row
        for a, b in delta.delete_links:
            self.links.pop((a.namespace, a.id, b.namespace, b.id), None)
        for link in delta.upsert_links:
            self.links[(link.ns_a, link.id_a, link.ns_b, link.id_b)] = link
        for pid in delta.delete_profiles:
            self.profiles.pop(pid, None)
        for p in delta.upsert_profiles:
            self.profiles[p.profile_id] = p
        self.seq = delta.seq

    def matches(self, graph: IdentityGraph) -> bool:
        state = graph.to_rows()
        return (
            set(self.identities.values()) == set(state.identities)
            and set(self.links.values()) == set(state.links)
            and set(self.profiles.values()) == set(state.profiles)
            and self.seq == state.seq
        )
