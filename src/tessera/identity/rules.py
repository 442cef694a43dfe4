"""Identity graph linking rules (``spec/aep.md`` §c5): unique namespaces, priority, graph limit.

Everything that decides *order* lives here so it can be changed in one place: the Reading-B
link ordering used by the identity optimisation algorithm, the primary-identity choice for
events, and the row-rejection rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tessera.errors import InvalidInput
from tessera.model import Identity

DEFAULT_GRAPH_LIMIT = 50
"""Identities per graph before the oldest cookie/device/person ids are removed (§c4)."""


@dataclass(frozen=True, slots=True)
class LinkingRules:
    """Per-sandbox identity graph settings.

    Attributes:
        unique: namespaces allowed at most once per graph.
        priority: namespace codes, highest priority first. Namespaces not listed rank below
            every listed one (all unlisted namespaces share one rank).
        limit: maximum identities per graph, or ``None`` for no limit.

    >>> r = LinkingRules(unique=frozenset({"CRMID"}), priority=("CRMID", "ECID"))
    >>> r.rank("CRMID"), r.rank("ECID"), r.rank("Phone")
    (0, 1, 2)
    """

    unique: frozenset[str] = frozenset()
    priority: tuple[str, ...] = ()
    limit: int | None = DEFAULT_GRAPH_LIMIT
    _ranks: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if len(set(self.priority)) != len(self.priority):
            raise InvalidInput("The namespace priority lists a namespace twice.", path="priority")
        if self.limit is not None and self.limit < 2:
            raise InvalidInput("The graph limit must be at least 2 identities.", path="limit")
        object.__setattr__(self, "unique", frozenset(self.unique))
        object.__setattr__(self, "priority", tuple(self.priority))
        object.__setattr__(self, "_ranks", {ns: i for i, ns in enumerate(self.priority)})

    @classmethod
    def of(
        cls, unique: Iterable[str] = (), priority: Iterable[str] = (), limit: int | None = DEFAULT_GRAPH_LIMIT
    ) -> LinkingRules:
        """Build rules from any iterables (convenience for callers holding lists)."""
        return cls(frozenset(unique), tuple(priority), limit)

    @property
    def enabled(self) -> bool:
        """Whether linking rules (unique namespaces or a priority) are configured."""
        return bool(self.unique or self.priority)

    def rank(self, namespace: str) -> int:
        """0-based priority rank; every unlisted namespace gets ``len(priority)``."""
        return self._ranks.get(namespace, len(self.priority))


def link_sort_key(
    newest: bool, priority_sum: int, last_ts: int, last_seq: int, stable: tuple[str, str, str, str]
) -> tuple[int, int, int, int, tuple[str, str, str, str]]:
    """Sort key of one link when the identity optimisation algorithm replays a component.

    This is §c5 "Reading B" and the single place to change it: links asserted by the newest
    row first; then the others by ascending sum of their endpoints' priority ranks; equal sums
    newest first (by last-asserted time, then by the row sequence that asserted them); finally
    by the endpoints' namespace and value so the order never depends on memory layout.

    >>> a = link_sort_key(False, 1, 5, 5, ("CRMID", "Tom", "Email", "t@x"))
    >>> b = link_sort_key(False, 3, 9, 9, ("CRMID", "Tom", "ECID", "1"))
    >>> c = link_sort_key(True, 7, 10, 10, ("ECID", "1", "loginID", "A"))
    >>> sorted([a, b, c]) == [c, a, b]
    True
    """
    return (0 if newest else 1, priority_sum, -last_ts, -last_seq, stable)


def choose_primary(identities: Sequence[Identity], rules: LinkingRules) -> Identity | None:
    """Primary identity of an event: the highest-priority namespace, then the smallest value.

    Namespaces missing from the priority rank below listed ones; ties are broken by namespace
    code and value so the choice is stable.

    >>> rules = LinkingRules(priority=("CRMID", "IDFA", "GAID", "ECID"))
    >>> str(choose_primary([Identity("ECID", "1"), Identity("IDFA", "a")], rules))
    'IDFA:a'
    """
    ranks, unlisted = rules._ranks, len(rules.priority)
    best: Identity | None = None
    best_key: tuple[int, str, str] | None = None
    for ident in identities:
        key = (ranks.get(ident.namespace, unlisted), ident.namespace, ident.id)
        if best_key is None or key < best_key:
            best, best_key = ident, key
    return best


def row_rejection(identities: Sequence[Identity], rules: LinkingRules) -> str | None:
    """Why a row is rejected by the linking rules, or ``None`` (identities already de-duplicated).

    Two rules (§c5 "Rejected rows"): two different values of one unique namespace; and, when a
    priority is configured, two different identities of the row's highest-priority namespace.

    >>> rules = LinkingRules(unique=frozenset({"CRMID"}), priority=("CRMID", "GAID", "ECID"))
    >>> row_rejection([Identity("GAID", "a"), Identity("GAID", "b"), Identity("ECID", "1")], rules)
    'Rejected: the row carries 2 different GAID identities (GAID:a, GAID:b) and GAID is its highest-priority namespace.'
    """
    if not rules.enabled or len(identities) < 2:
        return None
    by_ns: dict[str, list[str]] = {}
    for ident in identities:
        by_ns.setdefault(ident.namespace, []).append(ident.id)
    # both rules need a namespace with two values
    repeated = [ns for ns, values in by_ns.items() if len(values) > 1]
    if not repeated:
        return None
    for ns in sorted(repeated):
        if ns in rules.unique:
            values = by_ns[ns]
            shown = ", ".join(f"{ns}:{v}" for v in sorted(values)[:5])
            return f"Rejected: the row carries {len(values)} different values of unique namespace {ns} ({shown})."
    ranks, unlisted = rules._ranks, len(rules.priority)
    if any(ns in ranks for ns in repeated):
        top = min(by_ns, key=lambda ns: (ranks.get(ns, unlisted), ns))
        values = by_ns[top]
        if top in ranks and len(values) > 1:
            shown = ", ".join(f"{top}:{v}" for v in sorted(values)[:5])
            return (
                f"Rejected: the row carries {len(values)} different {top} identities ({shown}) "
                f"and {top} is its highest-priority namespace."
            )
    return None
