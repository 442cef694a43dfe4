"""Merge fragments into one profile under a merge policy (``spec/aep.md`` §d).

The rules, in one place:

* Which identities: ``{requested}`` for ``identityGraph.type == "none"``, the whole private
  graph for ``pdg`` (:func:`stitched_identities`).
* Which fragments: record fragments of those identities; under ``dataSetPrecedence`` only the
  datasets listed in ``order`` (unlisted datasets are not merged at all, §b2).
* Precedence is a computed key, never list position (STYLE principle 15). ``timestampOrdered``:
  newest merge timestamp (``extSourceSystemAudit.lastUpdatedDate`` when the fragment carries it,
  else ingestion time), then rank in ``order`` if any, then sequence, dataset id and identity.
  ``dataSetPrecedence``: rank in ``order``, then the same timestamp and tiebreak (fragments of one
  dataset under different identities still conflict, and the newest wins).
* Conflicts resolve per leaf path. Arrays and maps are atomic: the whole value comes from one
  fragment. ``identityMap`` entries are unioned. When shapes clash (a scalar in one fragment, an
  object in another at the same path) the higher-precedence fragment's shape wins. ``null``
  means "not set": it never overrides a value from a weaker fragment.
* Events are never conflict-resolved: all events of the allowed datasets, ordered by timestamp
  then a stable key (:func:`combine_events`, §d5).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tessera.errors import InvalidInput, SemanticError
from tessera.model import Identity, format_time
from tessera.profile.fragments import IDENTITY_MAP, Event, Fragment
from tessera.profile.policies import MergePolicy

DEFAULT_GRAPH_LIMIT = 50
"""Identities a merged profile may stitch before lookups are refused (§d6 M8, §e1)."""

_NEVER = -1.0e18  # sorts before any real timestamp


@dataclass(frozen=True, slots=True)
class MergedView:
    """A merged profile: what one policy makes of a set of fragments.

    Treat ``attributes`` as read-only: values of arrays and maps are shared with the fragments.

    Attributes:
        attributes: the merged XDM record (nested objects), including the unioned ``identityMap``.
        provenance: for every merged leaf path (dotted; arrays and maps are one leaf), the dataset
            whose fragment supplied the value. ``identityMap`` is not listed: see ``identity_sources``.
        identities: every identity seen (fragments' primary identities and identityMap entries),
            sorted.
        identity_sources: for each identity, the datasets whose fragments carry it, sorted.
        source_datasets: the datasets of the fragments that were merged, sorted.
        last_modified: the latest ingestion time among merged fragments (aware UTC), or None.
        policy_id: the policy used.
        policy_version: its version at merge time.
    """

    attributes: dict[str, Any]
    provenance: dict[str, str]
    identities: tuple[Identity, ...]
    identity_sources: dict[Identity, tuple[str, ...]]
    source_datasets: tuple[str, ...]
    last_modified: datetime | None
    policy_id: str
    policy_version: int

    @property
    def is_empty(self) -> bool:
        """True when no fragment contributed (e.g. an identity with only events)."""
        return not self.source_datasets

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO-8601 UTC)."""
        return {
            "attributes": self.attributes,
            "provenance": self.provenance,
            "identities": [i.to_json() for i in self.identities],
            "sourceDatasets": list(self.source_datasets),
            "lastModifiedAt": None if self.last_modified is None else format_time(self.last_modified),
            "mergePolicy": {"id": self.policy_id, "version": self.policy_version},
        }


def stitched_identities(
    policy: MergePolicy,
    requested: Identity,
    graph: Collection[Identity],
    *,
    limit: int = DEFAULT_GRAPH_LIMIT,
) -> frozenset[Identity]:
    """The identities whose fragments a lookup of ``requested`` merges under ``policy``.

    Args:
        policy: the merge policy.
        requested: the identity asked for.
        graph: the identities of ``requested``'s private graph (may omit ``requested``).
        limit: the most identities a stitched profile may have.

    Raises:
        SemanticError: under ``pdg``, the graph holds more than ``limit`` identities (§d6 M8:
            such a profile is not served; the API answers 422).

    >>> from tessera.profile.policies import SandboxRef
    >>> p = MergePolicy("p", "n", SandboxRef.named("prod"), identity_graph="none")
    >>> sorted(map(str, stitched_identities(p, Identity("CRMID", "c1"), [Identity("Email", "j@x")])))
    ['CRMID:c1']
    """
    if policy.identity_graph == "none":
        return frozenset((requested,))
    identities = frozenset(graph) | {requested}
    if len(identities) > limit:
        raise SemanticError(
            f"the identity graph of {requested} has {len(identities)} identities, over the limit of {limit}",
            path="identity",
            identities=len(identities),
            limit=limit,
        )
    return identities


def _precedence(policy: MergePolicy) -> tuple[dict[str, int], bool]:
    rank = {ds: i for i, ds in enumerate(policy.order)}
    return rank, policy.attribute_merge == "dataSetPrecedence"


def precedence_key(fragment: Fragment, policy: MergePolicy) -> tuple[Any, ...]:
    """The explicit sort key of a fragment under a policy: larger wins a conflict.

    >>> from datetime import UTC
    >>> from tessera.profile.policies import SandboxRef
    >>> p = MergePolicy("p", "n", SandboxRef.named("prod"))
    >>> old = Fragment("A", Identity("X", "1"), {}, datetime(2024, 1, 1, tzinfo=UTC))
    >>> new = Fragment("B", Identity("X", "2"), {}, datetime(2024, 2, 1, tzinfo=UTC))
    >>> precedence_key(new, p) > precedence_key(old, p)
    True
    """
    rank, by_dataset = _precedence(policy)
    return _key(fragment, rank, by_dataset)


def _key(fragment: Fragment, rank: Mapping[str, int], by_dataset: bool) -> tuple[Any, ...]:
    # Rank: 0 is the highest priority, so negate; unlisted datasets rank below every listed one.
    priority = -rank.get(fragment.dataset_id, len(rank))
    ts = fragment.timestamp
    tail = (fragment.sequence, fragment.dataset_id, fragment.identity.namespace, fragment.identity.id)
    if by_dataset:
        return (priority, ts, *tail)
    return (ts, priority, *tail)


def select_fragments(fragments: Iterable[Fragment], policy: MergePolicy) -> list[Fragment]:
    """The fragments a policy merges, highest precedence first.

    Tombstones are dropped; under ``dataSetPrecedence`` so are datasets not in ``order``.

    Raises:
        InvalidInput: a fragment's schema class is not the policy's, or two fragments claim the
            same (dataset, identity, sequence), which would make the result depend on input order.
    """
    rank, by_dataset = _precedence(policy)
    chosen: list[tuple[tuple[Any, ...], Fragment]] = []
    seen: set[tuple[str, Identity, int]] = set()
    for fragment in fragments:
        if fragment.schema_class != policy.schema_name:
            raise InvalidInput(
                f"fragment of {fragment.identity} in {fragment.dataset_id} has class {fragment.schema_class}, "
                f"but merge policy {policy.id} applies to {policy.schema_name}",
                path="schema_class",
            )
        ident = (fragment.dataset_id, fragment.identity, fragment.sequence)
        if ident in seen:
            raise InvalidInput(
                f"two fragments for {fragment.identity} in dataset {fragment.dataset_id} with sequence "
                f"{fragment.sequence}; pass one version per fragment",
                path="fragments",
            )
        seen.add(ident)
        if fragment.deleted or (by_dataset and fragment.dataset_id not in rank):
            continue
        chosen.append((_key(fragment, rank, by_dataset), fragment))
    chosen.sort(key=lambda pair: pair[0], reverse=True)
    return [fragment for _, fragment in chosen]


def merge(fragments: Iterable[Fragment], policy: MergePolicy) -> MergedView:
    """Merge record fragments under a policy; pure and deterministic (input order never matters).

    The caller chooses the fragments (those of :func:`stitched_identities`); this function applies
    the policy's dataset filter and conflict rules described in the module docstring.

    Args:
        fragments: current versions of the record fragments, at most one per (dataset, identity,
            sequence).
        policy: the merge policy.

    Returns:
        The merged view.

    Raises:
        InvalidInput: see :func:`select_fragments`.

    >>> from datetime import UTC
    >>> from tessera.profile.policies import SandboxRef
    >>> p = MergePolicy("p", "n", SandboxRef.named("prod"))
    >>> f1 = Fragment("CRM", Identity("CRMID", "c1"),
    ...               {"person": {"name": {"firstName": "Jane"}, "maritalStatus": "single"}},
    ...               datetime(2024, 1, 1, tzinfo=UTC))
    >>> f2 = Fragment("Loyalty", Identity("Email", "j@x"), {"person": {"maritalStatus": "married"}},
    ...               datetime(2024, 1, 2, tzinfo=UTC))
    >>> view = merge([f1, f2], p)
    >>> view.attributes
    {'person': {'maritalStatus': 'married', 'name': {'firstName': 'Jane'}}}
    >>> view.provenance["person.maritalStatus"], view.provenance["person.name.firstName"]
    ('Loyalty', 'CRM')
    """
    ordered = select_fragments(fragments, policy)
    # Highest precedence first: the first fragment to claim a leaf keeps it. Identities are keyed
    # by plain (namespace, id) tuples here because tuple hashing and ordering run in C.
    taken: dict[str, tuple[tuple[str, ...], Any, str]] = {}
    interior: set[str] = set()
    identity_entries: dict[tuple[str, str], Mapping[str, Any]] = {}
    identity_sources: dict[tuple[str, str], set[str]] = {}
    last_modified: datetime | None = None
    for fragment in ordered:
        dataset = fragment.dataset_id
        if last_modified is None or fragment.ingested_at > last_modified:
            last_modified = fragment.ingested_at
        for dotted, path, ancestors, value in fragment.leaves:
            if dotted in taken or dotted in interior:
                continue
            if ancestors and ancestors[-1] not in interior:
                # First leaf under this object: an enclosing path may already be a scalar, array or
                # map from a stronger fragment, and then the stronger shape wins.
                for ancestor in ancestors:
                    if ancestor in taken:
                        break
                else:
                    interior.update(ancestors)
                    taken[dotted] = (path, value, dataset)
                continue
            taken[dotted] = (path, value, dataset)
        primary = (fragment.identity.namespace, fragment.identity.id)
        sources = identity_sources.get(primary)
        if sources is None:
            identity_sources[primary] = {dataset}
        else:
            sources.add(dataset)
        for namespace, value_id, entry in fragment.identities:
            ident_key = (namespace, value_id)
            sources = identity_sources.get(ident_key)
            if sources is None:
                identity_sources[ident_key] = {dataset}
            else:
                sources.add(dataset)
            if ident_key not in identity_entries:
                identity_entries[ident_key] = entry

    attributes: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    for dotted, (path, value, dataset) in taken.items():
        provenance[dotted] = dataset
        if len(path) == 1:
            attributes[dotted] = value
            continue
        node = attributes
        for key in path[:-1]:
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            node = child
        node[path[-1]] = value
    if identity_entries:
        imap: dict[str, list[Mapping[str, Any]]] = {}
        for ident_key in sorted(identity_entries):
            imap.setdefault(ident_key[0], []).append(identity_entries[ident_key])
        if not _shape_conflict(IDENTITY_MAP, taken, interior):
            attributes[IDENTITY_MAP] = imap
    keys = sorted(identity_sources)
    identities = tuple(Identity(ns, value_id) for ns, value_id in keys)
    return MergedView(
        attributes=attributes,
        provenance=provenance,
        identities=identities,
        identity_sources={
            ident: tuple(sorted(identity_sources[key])) for ident, key in zip(identities, keys, strict=True)
        },
        source_datasets=tuple(sorted({f.dataset_id for f in ordered})),
        last_modified=last_modified,
        policy_id=policy.id,
        policy_version=policy.version,
    )


def _shape_conflict(dotted: str, taken: Mapping[str, Any], interior: Collection[str]) -> bool:
    # identityMap is excluded from leaves, so nothing else can claim it; kept as a guard.
    return dotted in taken or dotted in interior


def latest_writer_reference(fragments: Iterable[Fragment]) -> dict[str, Any]:
    """The naive definition of timestampOrdered for conflict-free shapes: per leaf, the newest wins.

    A slow executable specification used by the property tests; not for production use.
    """
    best: dict[str, tuple[Any, Any]] = {}
    for fragment in fragments:
        stamp = (fragment.timestamp, fragment.sequence, fragment.dataset_id, fragment.identity)
        for leaf in fragment.leaves:
            current = best.get(leaf.dotted)
            if current is None or stamp > current[0]:
                best[leaf.dotted] = (stamp, leaf.value)
    return {dotted: value for dotted, (_, value) in best.items()}


def event_sort_key(event: Event) -> tuple[datetime, str, str, str, str]:
    """Events order by timestamp, then dataset id, event id and identity (a total, stable order)."""
    return (event.timestamp, event.dataset_id, event.event_id, event.identity.namespace, event.identity.id)


def combine_events(events: Iterable[Event], policy: MergePolicy, *, descending: bool = False) -> list[Event]:
    """The profile's event list under a policy (§d5): never conflict-resolved, only selected and ordered.

    Under ``timestampOrdered`` every dataset's events are included; under ``dataSetPrecedence``
    only events of datasets listed in ``order`` (their position there does not matter: events are
    not ranked). A repeated ``_id`` in one dataset is one event (the first by ingestion time, then
    identity, is kept). Order is by timestamp, then dataset id, event id and identity.

    >>> from datetime import UTC
    >>> from tessera.profile.policies import SandboxRef
    >>> p = MergePolicy("p", "n", SandboxRef.named("prod"))
    >>> e2 = Event("Orders", Identity("CRMID", "c1"), "E2", datetime(2024, 1, 2, tzinfo=UTC), {})
    >>> e1 = Event("Web", Identity("ECID", "e1"), "E1", datetime(2024, 1, 1, tzinfo=UTC), {})
    >>> [e.event_id for e in combine_events([e2, e1], p)]
    ['E1', 'E2']
    """
    allowed = set(policy.order) if policy.attribute_merge == "dataSetPrecedence" else None
    unique: dict[tuple[str, str], Event] = {}
    for event in events:
        if allowed is not None and event.dataset_id not in allowed:
            continue
        key = (event.dataset_id, event.event_id)
        kept = unique.get(key)
        if kept is None or _first_seen(event) < _first_seen(kept):
            unique[key] = event
    return sorted(unique.values(), key=event_sort_key, reverse=descending)


def _first_seen(event: Event) -> tuple[float, str, str]:
    ingested = _NEVER if event.ingested_at is None else event.ingested_at.timestamp()
    return (ingested, event.identity.namespace, event.identity.id)
