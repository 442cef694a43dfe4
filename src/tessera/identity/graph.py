"""The identity graph engine: incremental linking, linking rules, graph limit, unlink, history.

Pure in-memory code. The storage layer persists it either as a full snapshot
(:meth:`IdentityGraph.to_rows` / :meth:`IdentityGraph.from_rows`) or through the delta journal
(``IdentityGraph(journal=True)`` and :meth:`IdentityGraph.drain_journal` after each row or
batch); each operation also returns :class:`GraphChanges` for the profile layer.

Internals, and why:

* Identities are interned to small integers (one dict per namespace), and links live in parallel
  columns indexed by a link id, keyed by the packed pair ``low << 32 | high``: no object per link.
* Each identity points straight at its component object, and merging relabels the smaller
  component's members (small-to-large). Finding a component is one list index (no path walk);
  every identity is relabelled at most log2(component size) times, and with the graph limit on
  that is at most six times. A real union-find with path compression is used where components
  are rebuilt from their links (identity optimisation, splits).
* Components keep their member and link lists, so rules, splits and queries only ever look at
  the touched components.

Profile ids. Every row that links two identities, and every unlink, delete and re-resolve,
consumes one sequence number ``seq`` (a row that links nothing changes nothing). A new id is
``hash(seq, oldest identity of the component)``; it depends on nothing else, which is what lets
the bulk path reproduce the incremental result exactly. When an operation ends, each
component that existed at its start, in age order ``(created seq, profile id)``, gives its id to
the resulting component holding its oldest remaining identity (oldest = smallest
``(first seen, namespace, value)``) unless that component already has one, in which case the id
is reported merged into it. So on a merge the older component's id survives; on a split the
part holding the oldest identity keeps the id and the others get new ids; and a component
whose members did not change always keeps its id.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from itertools import compress
from operator import attrgetter, is_not
from typing import Any, NamedTuple

from tessera.errors import Conflict, NotFound
from tessera.identity.namespaces import IdentityType, builds_graph, namespace_types, removal_rank, type_of
from tessera.identity.rules import LinkingRules, choose_primary, link_sort_key, row_rejection
from tessera.model import Identity

Time = int | datetime
"""Times are epoch milliseconds (ints); aware datetimes are accepted and converted."""


def _ms(ts: Time) -> int:
    if isinstance(ts, datetime):
        return int(ts.timestamp() * 1000)
    return int(ts)


_PID_HASH = hashlib.blake2b(digest_size=8)  # copied, never updated: half the cost of a new hasher


def _new_pid(seq: int, namespace: str, value: str) -> str:
    h = _PID_HASH.copy()
    h.update(f"{seq}\x1f{namespace}\x1f{value}".encode())
    return h.hexdigest()


class LinkInfo(NamedTuple):
    """One link between two identities (``a`` sorts before ``b``)."""

    a: Identity
    b: Identity
    first_seen: int
    last_seen: int
    dataset: str | None
    batch: str | None
    seq: int


class HistoryEntry(NamedTuple):
    """One cluster-history event.

    ``kind`` is ``created``, ``merged`` (``profile_id`` merged into ``other``), ``split``
    (``profile_id`` split off ``other``) or ``deleted`` (no identity left in the graph).
    """

    seq: int
    ts: int
    kind: str
    profile_id: str
    other: str | None


class IdentityRow(NamedTuple):
    """Persistence row: an identity currently in the graph."""

    namespace: str
    id: str
    profile_id: str
    first_seen: int


class LinkRow(NamedTuple):
    """Persistence row: a link (``dataset``/``batch`` of the row that last asserted it)."""

    ns_a: str
    id_a: str
    ns_b: str
    id_b: str
    first_seen: int
    last_seen: int
    seq: int
    dataset: str | None
    batch: str | None


class ProfileRow(NamedTuple):
    """Persistence row: a component's profile id and the sequence number that created it."""

    profile_id: str
    created_seq: int


@dataclass(slots=True)
class GraphState:
    """The engine's full state as plain rows (see :meth:`IdentityGraph.to_rows`)."""

    identities: list[IdentityRow]
    links: list[LinkRow]
    profiles: list[ProfileRow]
    history: list[HistoryEntry]
    seq: int
    refused: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class GraphDelta:
    """Changes since the previous :meth:`IdentityGraph.drain_journal`, as persistence rows."""

    upsert_identities: list[IdentityRow]
    delete_identities: list[Identity]
    upsert_links: list[LinkRow]
    delete_links: list[tuple[Identity, Identity]]
    upsert_profiles: list[ProfileRow]
    delete_profiles: list[str]
    history: list[HistoryEntry]
    seq: int
    refused: dict[str, int]


@dataclass(slots=True)
class GraphStats:
    """Graph statistics for the UI and for alerting."""

    profiles: int
    identities: int
    links: int
    size_histogram: dict[int, int]
    largest: list[tuple[str, int]]
    identities_per_namespace: dict[str, int]
    refused: dict[str, int]


class GraphChanges:
    """What one operation changed, for the profile layer to move fragments.

    Attributes:
        created: profile ids of components that did not exist before.
        merged: old profile id → the profile id it was merged into.
        split: new profile id → the profile id it split off.
        deleted: profile ids whose last identities left the graph.
        removed: identities that left the graph (optimisation, graph limit, unlink, delete).
        refused_links: ``(a, b, reason)`` for links the rules refused.
    """

    __slots__ = ("_graph", "_members", "created", "deleted", "merged", "refused_links", "removed", "split")

    def __init__(self, graph: IdentityGraph) -> None:
        self._graph = graph
        self.created: list[str] = []
        self.merged: dict[str, str] = {}
        self.split: dict[str, str] = {}
        self.deleted: list[str] = []
        self.removed: list[Identity] = []
        self.refused_links: list[tuple[Identity, Identity, str]] = []
        # changed profile id → (its member list, its length when the operation ended). Member
        # lists are only ever appended to (a component that loses members gets a new list), so
        # the prefix is the snapshot; copying it for every row would cost O(component size).
        self._members: dict[str, tuple[list[int], int]] = {}

    @property
    def changed(self) -> bool:
        """Whether any profile's membership changed."""
        return bool(self._members or self.deleted or self.removed)

    @property
    def profile_ids(self) -> list[str]:
        """The changed (or created) profile ids (the keys of :attr:`profiles`, without building it)."""
        return list(self._members)

    @property
    def profiles(self) -> dict[str, tuple[Identity, ...]]:
        """Each changed (or created) profile id → its member identities after the operation."""
        ident = self._graph._identity
        return {pid: tuple(ident(n) for n in nodes[:k]) for pid, (nodes, k) in self._members.items()}

    def __repr__(self) -> str:
        return (
            f"GraphChanges(created={self.created}, merged={self.merged}, split={self.split}, "
            f"deleted={self.deleted}, removed={[str(i) for i in self.removed]}, profiles={list(self._members)})"
        )


_PENDING: tuple[list[int], int] = ([], 0)
"""Placeholder in ``GraphChanges._members`` until the operation ends (``_snapshot``)."""


class RowResult(NamedTuple):
    """The outcome of :meth:`IdentityGraph.add_row`.

    ``changes`` is ``None`` when no profile membership changed (single identity, rejected row,
    or links that only refreshed their last-seen time).
    """

    primary: Identity | None
    rejected: str | None
    changes: GraphChanges | None


_row_result = partial(tuple.__new__, RowResult)
"""``RowResult`` from one ``(primary, rejected, changes)`` tuple, without the Python-level
``__new__`` of a NamedTuple (this runs once per row)."""


class _Comp:
    """One component: profile id, creating sequence number, member node ids, link ids."""

    __slots__ = ("created", "links", "members", "pid", "uniq")

    def __init__(
        self, pid: str, created: int, members: list[int], links: list[int], uniq: dict[int, int]
    ) -> None:
        self.pid = pid
        self.created = created
        self.members = members
        self.links = links
        self.uniq = uniq  # unique-namespace index → the one node of it in this component


_MEMBERS = attrgetter("members")
_IS_SET = partial(is_not, None)


class IdentityGraph:
    """An identity graph with linking rules, graph limit, unlink/delete, history and queries.

    Args:
        rules: linking rules (unique namespaces, priority, limit). Default: no rules, limit 50.
        types: namespace code → identity type; unknown codes are person identifiers.

    >>> g = IdentityGraph(LinkingRules(unique=frozenset({"CRMID"}), priority=("CRMID", "ECID")))
    >>> _ = g.add_row([Identity("CRMID", "Jane"), Identity("ECID", "111")], ts=1)
    >>> r = g.add_row([Identity("CRMID", "John"), Identity("ECID", "111")], ts=2)
    >>> str(r.primary), sorted(str(i) for i in g.members(Identity("ECID", "111")))
    ('CRMID:John', ['CRMID:John', 'ECID:111'])
    """

    def __init__(
        self,
        rules: LinkingRules | None = None,
        *,
        types: Mapping[str, IdentityType] | None = None,
        journal: bool = False,
    ) -> None:
        self._types: dict[str, IdentityType] = namespace_types() if types is None else dict(types)
        self._rules = rules if rules is not None else LinkingRules()
        # namespaces
        self._ns_idx: dict[str, int] = {}
        self._ns_code: list[str] = []
        self._ns_graph: list[bool] = []
        self._ns_removal: list[int] = []
        self._ns_unique: list[bool] = []
        self._ns_rank: list[int] = []
        self._intern: list[dict[str, int]] = []
        # code → intern table, for graph-building namespaces only: one lookup per identity of a row
        self._graph_tables: dict[str, dict[str, int]] = {}
        # row namespaces → (primary position or -1, positions sharing a namespace): see _shape
        self._shapes: dict[tuple[str, ...], tuple[int, tuple[tuple[int, int], ...]]] = {}
        # nodes (integer columns are arrays: no int object per entry, nothing for the GC to walk,
        # and the bulk path reads and writes them as NumPy buffers)
        self._n_ns: array[int] = array("q")
        self._n_val: list[str] = []
        self._n_first: array[int] = array("q")
        self._n_comp: list[_Comp | None] = []
        # links
        self._lk: dict[int, int] = {}
        self._la: array[int] = array("q")
        self._lb: array[int] = array("q")
        self._lfirst: array[int] = array("q")
        self._llast: array[int] = array("q")
        self._lseq: array[int] = array("q")
        self._lds: list[str | None] = []
        self._lbatch: list[str | None] = []
        self._lfree: list[int] = []
        # components, history, counters
        self._comps: dict[str, _Comp] = {}
        self._history: list[HistoryEntry] = []
        self._refused: Counter[str] = Counter()
        self._seq = 0
        # delta journal (see drain_journal): touched link keys, nodes, profile ids
        self._j_links: set[int] | None = set() if journal else None
        self._j_nodes: set[int] = set()
        self._j_pids: set[str] = set()
        self._j_history = 0

    # ------------------------------------------------------------------ settings
    @property
    def rules(self) -> LinkingRules:
        """The linking rules applied to new data."""
        return self._rules

    @property
    def seq(self) -> int:
        """Sequence number of the last operation (rows, unlink, delete, re-resolve)."""
        return self._seq

    def set_rules(self, rules: LinkingRules) -> None:
        """Apply new rules to *new* data only; use :meth:`re_resolve` to apply them to existing data."""
        self._rules = rules
        self._shapes.clear()
        for i, code in enumerate(self._ns_code):
            self._ns_unique[i] = code in rules.unique
            self._ns_rank[i] = rules.rank(code)
        # the unique-namespace index of each component follows the rules
        for comp in self._comps.values():
            comp.uniq = self._uniq_of(comp.members)

    def _ns(self, code: str) -> int:
        idx = self._ns_idx.get(code)
        if idx is None:
            idx = len(self._ns_code)
            kind = type_of(code, self._types)
            self._ns_idx[code] = idx
            self._ns_code.append(code)
            self._ns_graph.append(builds_graph(kind))
            self._ns_removal.append(removal_rank(kind))
            self._ns_unique.append(code in self._rules.unique)
            self._ns_rank.append(self._rules.rank(code))
            table: dict[str, int] = {}
            self._intern.append(table)
            if self._ns_graph[idx]:
                self._graph_tables[code] = table
        return idx

    def _node(self, nsi: int, value: str) -> int:
        table = self._intern[nsi]
        node = table.get(value)
        return self._new_node(table, nsi, value) if node is None else node

    def _new_node(self, table: dict[str, int], nsi: int, value: str) -> int:
        """Intern an identity not yet in ``table`` (the intern table of namespace ``nsi``)."""
        node = table[value] = len(self._n_ns)
        self._n_ns.append(nsi)
        self._n_val.append(value)
        self._n_first.append(-1)
        self._n_comp.append(None)
        return node

    def _lookup(self, identity: Identity) -> int | None:
        nsi = self._ns_idx.get(identity.namespace)
        if nsi is None:
            return None
        return self._intern[nsi].get(identity.id)

    def _identity(self, node: int) -> Identity:
        return Identity(self._ns_code[self._n_ns[node]], self._n_val[node])

    def _age(self, node: int) -> tuple[int, str, str]:
        return (self._n_first[node], self._ns_code[self._n_ns[node]], self._n_val[node])

    def _oldest(self, nodes: list[int]) -> int:
        """``min(nodes, key=self._age)``, comparing the strings only between identities first
        seen at the same time."""
        n_first = self._n_first
        first = min([n_first[m] for m in nodes])
        tied = [m for m in nodes if n_first[m] == first]
        return tied[0] if len(tied) == 1 else min(tied, key=self._age)

    def _uniq_of(self, members: Iterable[int]) -> dict[int, int]:
        uniq: dict[int, int] = {}
        if self._rules.unique:
            ns_unique, n_ns = self._ns_unique, self._n_ns
            for m in members:
                if ns_unique[n_ns[m]]:
                    uniq[n_ns[m]] = m
        return uniq

    # ------------------------------------------------------------------ links
    def _new_link(
        self, a: int, b: int, key: int, ts: int, seq: int, dataset: str | None, batch: str | None
    ) -> int:
        if self._lfree:
            lid = self._lfree.pop()
            self._la[lid], self._lb[lid] = a, b
            self._lfirst[lid] = self._llast[lid] = ts
            self._lseq[lid] = seq
            self._lds[lid], self._lbatch[lid] = dataset, batch
        else:
            lid = len(self._la)
            self._la.append(a)
            self._lb.append(b)
            self._lfirst.append(ts)
            self._llast.append(ts)
            self._lseq.append(seq)
            self._lds.append(dataset)
            self._lbatch.append(batch)
        self._lk[key] = lid
        if self._j_links is not None:
            self._j_links.add(key)
        return lid

    def _drop_link(self, lid: int) -> None:
        if self._j_links is not None:
            self._j_links.add(self._la[lid] << 32 | self._lb[lid])
        self._free_link(lid)

    def _free_link(self, lid: int) -> None:
        """Forget link ``lid`` and keep its slot for the next new link (not journaled)."""
        a, b = self._la[lid], self._lb[lid]
        del self._lk[a << 32 | b]
        self._la[lid] = self._lb[lid] = -1
        self._lfree.append(lid)

    def _link_row(self, lid: int) -> LinkRow:
        i = self._link_info(lid)
        return LinkRow(
            i.a.namespace, i.a.id, i.b.namespace, i.b.id, i.first_seen, i.last_seen, i.seq, i.dataset, i.batch
        )

    def _link_info(self, lid: int) -> LinkInfo:
        a, b = self._identity(self._la[lid]), self._identity(self._lb[lid])
        if b < a:
            a, b = b, a
        return LinkInfo(
            a, b, self._lfirst[lid], self._llast[lid], self._lds[lid], self._lbatch[lid], self._lseq[lid]
        )

    # ------------------------------------------------------------------ rows
    def add_row(
        self,
        identities: Sequence[Identity],
        *,
        ts: Time | None = None,
        dataset: str | None = None,
        batch: str | None = None,
        primary: Identity | None = None,
        record: bool = False,
    ) -> RowResult:
        """Link every pair of (graph-building) identities of one validated record or event.

        Args:
            identities: the row's identities, already validated (see ``validate_row``);
                exact duplicates are merged here too.
            ts: when the row was asserted (epoch ms or datetime); default: the sequence number the
                row takes when it links.
            dataset: source dataset id, kept on the links.
            batch: source batch id, kept on the links.
            primary: the row's schema/identityMap primary identity, used for records and when no
                priority is configured.
            record: True for profile records (primary from the schema), False for events
                (primary from the namespace priority when one is configured).

        Returns:
            The primary identity (``None`` when rejected), the rejection reason and the changes.
        """
        if not identities:
            return RowResult(None, None, None)
        identities, prim, reason = self._assess(identities, primary, record)
        if reason is not None:
            self._refused["rows rejected by linking rules"] += 1
            return RowResult(None, reason, None)
        if len(identities) < 2:
            return RowResult(prim, None, None)
        tables = self._graph_tables
        nodes: list[int] = []
        for ident in identities:
            table = tables.get(ident.namespace)
            if table is None:
                if ident.namespace in self._ns_idx:
                    continue  # a namespace that builds no graph
                self._ns(ident.namespace)
                table = tables.get(ident.namespace)
                if table is None:
                    continue
            node = table.get(ident.id)
            nodes.append(
                self._new_node(table, self._ns_idx[ident.namespace], ident.id) if node is None else node
            )
        if len(nodes) < 2:
            return _row_result((prim, None, None))
        # Only a row that links consumes a sequence number: the others leave the graph as it was,
        # and a store need not record the counter for them (most events carry one identity).
        self._seq += 1
        seq = self._seq
        t = seq if ts is None else _ms(ts)
        return _row_result((prim, None, self._link_nodes(nodes, seq, t, dataset, batch)))

    def _assess(
        self, identities: Sequence[Identity], primary: Identity | None, record: bool
    ) -> tuple[Sequence[Identity], Identity | None, str | None]:
        """De-duplicate a row, apply the rejection rules and choose its primary identity."""
        n = len(identities)
        if n == 1:
            return identities, identities[0], None
        rules = self._rules
        shape = (
            (identities[0].namespace, identities[1].namespace)
            if n == 2
            else tuple([i.namespace for i in identities])
        )
        known = self._shapes.get(shape)
        at, pairs = self._shape(shape) if known is None else known
        for i, j in pairs:
            if identities[i].id == identities[j].id:
                at = -1  # an exact duplicate: de-duplicate below
                break
        if at >= 0:
            # the namespaces decided: no duplicate, no rejection possible, primary known
            if primary is not None and (record or not rules.priority) and primary in identities:
                return identities, primary, None
            return identities, identities[at], None
        if len({(i.namespace, i.id) for i in identities}) < n:
            identities = list(dict.fromkeys(identities))
        if rules.enabled:
            reason = row_rejection(identities, rules)
            if reason is not None:
                return identities, None, reason
        if primary is not None and (record or not rules.priority) and primary in identities:
            return identities, primary, None
        return identities, choose_primary(identities, rules), None

    def _shape(self, shape: tuple[str, ...]) -> tuple[int, tuple[tuple[int, int], ...]]:
        """What the namespaces of a row decide on their own, remembered per sequence of namespaces:
        the position of its primary identity (-1 when the values may matter) and the position
        pairs sharing a namespace (compared for exact duplicates).

        The rules are asked about a probe row of this shape with all values distinct: that is
        the worst case for both rejection rules (de-duplication only removes values, never a
        namespace), so a probe that passes means no row of this shape is rejected; and the
        primary is value-independent when the probe's primary namespace occurs once.
        """
        rules = self._rules
        probe = [Identity(ns, str(i)) for i, ns in enumerate(shape)]
        pairs = tuple(
            (i, j) for i in range(len(shape)) for j in range(i + 1, len(shape)) if shape[i] == shape[j]
        )
        at = -1
        if not pairs or not rules.enabled or row_rejection(probe, rules) is None:
            best = choose_primary(probe, rules)
            if best is not None and shape.count(best.namespace) == 1:
                at = shape.index(best.namespace)
        if len(self._shapes) >= 4096:
            self._shapes.clear()  # rows of ever new namespace combinations: stay bounded
        self._shapes[shape] = (at, pairs)
        return at, pairs

    def _link_nodes(
        self, nodes: list[int], seq: int, ts: int, dataset: str | None, batch: str | None
    ) -> GraphChanges | None:
        lk, llast, lseq, lds, lbatch = self._lk, self._llast, self._lseq, self._lds, self._lbatch
        journal, n_comp = self._j_links, self._n_comp
        new_links: list[int] = []
        comps: list[_Comp]
        fresh: list[int]
        n = len(nodes)
        if n == 2:
            # most rows carry two identities: one link, no loops
            a, b = nodes
            if b < a:
                a, b = b, a
            key = a << 32 | b
            lid = lk.get(key)
            if lid is not None:
                # a link lies inside one component, so asserting it again changes no membership
                if ts > llast[lid]:
                    llast[lid] = ts
                lseq[lid] = seq
                lds[lid] = dataset
                lbatch[lid] = batch
                if journal is not None:
                    journal.add(key)
                return None
            new_links.append(self._new_link(a, b, key, ts, seq, dataset, batch))
            # what the loop below would collect, in row order
            x, y = nodes
            cx, cy = n_comp[x], n_comp[y]
            if cx is None:
                comps, fresh = ([], nodes) if cy is None else ([cy], [x])
            elif cy is None:
                comps, fresh = [cx], [y]
            elif cx is cy:
                cx.links.extend(new_links)
                return None
            else:
                comps, fresh = [cx, cy], []
        else:
            for i in range(n - 1):
                a = nodes[i]
                for j in range(i + 1, n):
                    b = nodes[j]
                    key = (a << 32 | b) if a < b else (b << 32 | a)
                    lid = lk.get(key)
                    if lid is None:
                        if a < b:
                            new_links.append(self._new_link(a, b, key, ts, seq, dataset, batch))
                        else:
                            new_links.append(self._new_link(b, a, key, ts, seq, dataset, batch))
                    else:
                        if ts > llast[lid]:
                            llast[lid] = ts
                        lseq[lid] = seq
                        lds[lid] = dataset
                        lbatch[lid] = batch
                        if journal is not None:
                            journal.add(key)
            comps = []
            fresh = []
            for node in nodes:
                c = n_comp[node]
                if c is None:
                    fresh.append(node)
                elif c not in comps:
                    comps.append(c)
            if not fresh and len(comps) == 1:
                comps[0].links.extend(new_links)
                return None
        log = GraphChanges(self)
        rules = self._rules
        violates = bool(rules.unique) and self._violates(comps, fresh)
        limit = rules.limit
        if not violates and (limit is None or len(fresh) + sum([len(c.members) for c in comps]) <= limit):
            # the container is the one changed component and it exists: _snapshot's work, directly
            container = self._merge(comps, fresh, new_links, seq, ts, log)
            log._members[container.pid] = (container.members, len(container.members))
            if self._j_links is not None:
                self._journal(log)
            return log
        originals = self._originals(comps)
        for f in fresh:
            self._n_first[f] = ts
        all_nodes = [m for c in comps for m in c.members] + fresh
        all_links = [lid for c in comps for lid in c.links] + new_links
        if violates:
            kept, parts = self._optimise(all_nodes, all_links, seq, log)
            for part in self._repartition(all_nodes, kept, comps, parts):
                self._enforce_limit(part)
        else:
            # only the limit is at stake: merge in place (ids settled by _finalise), then trim
            self._enforce_limit(self._merge(comps, fresh, new_links, seq, ts, GraphChanges(self), False))
        self._finalise(originals, all_nodes, seq, ts, log)
        self._snapshot(log)
        return log

    def _violates(self, comps: list[_Comp], fresh: list[int]) -> bool:
        ns_unique, n_ns = self._ns_unique, self._n_ns
        if len(comps) == 1:
            # the component itself is clash-free: only the row's new identities can clash, and
            # a fresh identity is in no component, so any other of its unique namespace is one
            uniq = comps[0].uniq
            taken: list[int] = []
            for node in fresh:
                nsi = n_ns[node]
                if ns_unique[nsi]:
                    if nsi in uniq or nsi in taken:
                        return True
                    taken.append(nsi)
            return False
        seen: dict[int, int] = {}
        for c in comps:
            for nsi, node in c.uniq.items():
                if seen.setdefault(nsi, node) != node:
                    return True
        for node in fresh:
            nsi = n_ns[node]
            if ns_unique[nsi] and seen.setdefault(nsi, node) != node:
                return True
        return False

    def _merge(
        self,
        comps: list[_Comp],
        fresh: list[int],
        new_links: list[int],
        seq: int,
        ts: int,
        log: GraphChanges,
        record: bool = True,
    ) -> _Comp:
        n_comp, n_first, n_ns, ns_unique = self._n_comp, self._n_first, self._n_ns, self._ns_unique
        if len(comps) == 1:
            container = comps[0]  # the common case: new identities join one component
        elif comps:
            survivor = min(comps, key=lambda c: (c.created, c.pid))
            container = max(comps, key=lambda c: len(c.members))
            if container is not survivor:
                # the biggest list is reused as storage; the survivor's id moves onto it
                lost = container.pid
                del self._comps[lost]
                log.merged[lost] = survivor.pid
                if record:
                    self._history.append(HistoryEntry(seq, ts, "merged", lost, survivor.pid))
                container.pid, container.created = survivor.pid, survivor.created
                self._comps[survivor.pid] = container
            for c in comps:
                if c is container:
                    continue
                for m in c.members:
                    n_comp[m] = container
                container.members.extend(c.members)
                container.links.extend(c.links)
                container.uniq.update(c.uniq)
                if c is not survivor:
                    del self._comps[c.pid]
                    log.merged[c.pid] = survivor.pid
                    if record:
                        self._history.append(HistoryEntry(seq, ts, "merged", c.pid, survivor.pid))
        else:
            code, n_val = self._ns_code, self._n_val
            # all fresh identities are first seen now: namespace and value decide the oldest
            oldest = fresh[0]
            oldest_code = code[n_ns[oldest]]
            for f in fresh[1:]:
                fc = code[n_ns[f]]
                if fc < oldest_code or (fc == oldest_code and n_val[f] < n_val[oldest]):
                    oldest, oldest_code = f, fc
            pid = _new_pid(seq, code[n_ns[oldest]], n_val[oldest])
            container = _Comp(pid, seq, [], [], {})
            self._comps[pid] = container
            log.created.append(pid)
            if record:
                self._history.append(HistoryEntry(seq, ts, "created", pid, None))
        members, uniq = container.members, container.uniq
        for f in fresh:
            n_comp[f] = container
            n_first[f] = ts
            members.append(f)
            if ns_unique[n_ns[f]]:
                uniq[n_ns[f]] = f
        container.links.extend(new_links)
        log._members[container.pid] = _PENDING
        return container

    def _snapshot(self, log: GraphChanges) -> None:
        comps = self._comps
        for pid in list(log._members):
            comp = comps.get(pid)
            if comp is None:
                del log._members[pid]
            else:
                log._members[pid] = (comp.members, len(comp.members))
        if self._j_links is not None:
            self._journal(log)

    def _journal(self, log: GraphChanges) -> None:
        """Note the profiles and identities an operation touched, for :meth:`drain_journal`."""
        pids, nodes = self._j_pids, self._j_nodes
        for pid, (members, _) in log._members.items():
            pids.add(pid)
            nodes.update(members)
        pids.update(log.merged)
        pids.update(log.deleted)
        pids.update(log.split)
        for ident in log.removed:
            node = self._lookup(ident)
            if node is not None:
                nodes.add(node)

    def drain_journal(self) -> GraphDelta:
        """What changed since the last drain, as rows to upsert and keys to delete.

        The storage layer appends this to its tables after each row or batch (the engine must be
        built with ``journal=True``); replaying every delta onto an empty store gives exactly
        :meth:`to_rows`. Link refreshes (last seen, asserting row) are included because the
        identity optimisation orders links by them.

        Raises:
            Conflict: when the engine was built without ``journal=True``.
        """
        if self._j_links is None:
            raise Conflict(
                "This identity graph keeps no journal; build it with journal=True.", path="journal"
            )
        delta = GraphDelta(
            [], [], [], [], [], [], self._history[self._j_history :], self._seq, dict(self._refused)
        )
        lk = self._lk
        for key in self._j_links:
            lid = lk.get(key)
            if lid is None:
                a, b = self._identity(key >> 32), self._identity(key & 0xFFFFFFFF)
                delta.delete_links.append((a, b) if a < b else (b, a))
            else:
                delta.upsert_links.append(self._link_row(lid))
        n_comp = self._n_comp
        for node in self._j_nodes:
            comp = n_comp[node]
            if comp is None:
                delta.delete_identities.append(self._identity(node))
            else:
                ns = self._ns_code[self._n_ns[node]]
                delta.upsert_identities.append(
                    IdentityRow(ns, self._n_val[node], comp.pid, self._n_first[node])
                )
        for pid in self._j_pids:
            comp2 = self._comps.get(pid)
            if comp2 is None:
                delta.delete_profiles.append(pid)
            else:
                delta.upsert_profiles.append(ProfileRow(pid, comp2.created))
        self._j_links = set()
        self._j_nodes = set()
        self._j_pids = set()
        self._j_history = len(self._history)
        return delta

    # ------------------------------------------------------------------ identity optimisation
    def _optimise(
        self, nodes: list[int], links: list[int], newest_seq: int, log: GraphChanges
    ) -> tuple[list[int], dict[int, int]]:
        """Replay ``links`` in Reading-B order, dropping any that would join two unique identities.

        Returns the kept links and the resulting parts (node → a representative node), which
        :meth:`_repartition` takes instead of finding them again.
        """
        la, lb, llast, lseq = self._la, self._lb, self._llast, self._lseq
        code, n_ns, n_val, rank = self._ns_code, self._n_ns, self._n_val, self._ns_rank

        def key(lid: int) -> tuple[int, int, int, int, tuple[str, str, str, str]]:
            a, b = la[lid], lb[lid]
            ca, cb, va, vb = code[n_ns[a]], code[n_ns[b]], n_val[a], n_val[b]
            stable = (ca, va, cb, vb) if ca < cb or (ca == cb and va < vb) else (cb, vb, ca, va)
            last_seq = lseq[lid]
            return link_sort_key(
                last_seq == newest_seq, rank[n_ns[a]] + rank[n_ns[b]], llast[lid], last_seq, stable
            )

        order = sorted(links, key=key)
        # union-find over positions in ``nodes`` (lists, path halving, no calls); each root's
        # unique-namespace index (namespace → its node) lives in ``uniq``, absent when empty
        pos = {n: i for i, n in enumerate(nodes)}
        parent = list(range(len(nodes)))
        ns_unique = self._ns_unique
        uniq: dict[int, dict[int, int]] = {i: {n_ns[n]: n} for i, n in enumerate(nodes) if ns_unique[n_ns[n]]}
        none: dict[int, int] = {}
        kept: list[int] = []
        for lid in order:
            ra = pos[la[lid]]
            while parent[ra] != ra:
                parent[ra] = ra = parent[parent[ra]]
            rb = pos[lb[lid]]
            while parent[rb] != rb:
                parent[rb] = rb = parent[parent[rb]]
            if ra == rb:
                kept.append(lid)
                continue
            ua, ub = uniq.get(ra, none), uniq.get(rb, none)
            if len(ua) < len(ub):
                ra, rb, ua, ub = rb, ra, ub, ua
            clash = None
            for nsi, node in ub.items():  # a plain loop: this runs once per link replayed
                if ua.get(nsi, node) != node:
                    clash = nsi
                    break
            if clash is not None:
                reason = (
                    f"link refused: it would put two {code[clash]} identities (unique namespace) in one graph"
                )
                self._refused[reason] += 1
                log.refused_links.append((self._identity(la[lid]), self._identity(lb[lid]), reason))
                self._drop_link(lid)
                continue
            parent[rb] = ra
            if ub:
                if ua:
                    ua.update(ub)
                else:
                    uniq[ra] = ub
            kept.append(lid)
        part: dict[int, int] = {}
        for i, n in enumerate(nodes):
            r = i
            while parent[r] != r:
                parent[r] = r = parent[parent[r]]
            part[n] = nodes[r]
        return kept, part

    def _repartition(
        self, nodes: list[int], links: list[int], old: list[_Comp], part: dict[int, int] | None = None
    ) -> list[_Comp]:
        """Replace the components ``old`` by the connected parts of ``nodes`` over ``links``
        (``part``: node → representative, when already known).

        Parts get provisional (empty) ids and are not registered: :meth:`_finalise` names them
        once the whole operation is done. Nodes left without a link leave the graph.
        """
        la, lb = self._la, self._lb
        if part is None:
            pos = {n: i for i, n in enumerate(nodes)}
            parent = list(range(len(nodes)))
            for lid in links:
                ra = pos[la[lid]]
                while parent[ra] != ra:
                    parent[ra] = ra = parent[parent[ra]]
                rb = pos[lb[lid]]
                while parent[rb] != rb:
                    parent[rb] = rb = parent[parent[rb]]
                if ra != rb:
                    parent[rb] = ra
            part = {}
            for i, n in enumerate(nodes):
                r = i
                while parent[r] != r:
                    parent[r] = r = parent[parent[r]]
                part[n] = nodes[r]
        groups: dict[int, list[int]] = {}
        for n in nodes:
            r = part[n]
            g = groups.get(r)
            if g is None:
                groups[r] = [n]
            else:
                g.append(n)
        glinks: dict[int, list[int]] = {}
        for lid in links:
            r = part[la[lid]]
            gl = glinks.get(r)
            if gl is None:
                glinks[r] = [lid]
            else:
                gl.append(lid)
        for c in old:
            if self._comps.get(c.pid) is c:
                del self._comps[c.pid]
        n_comp, n_first = self._n_comp, self._n_first
        out: list[_Comp] = []
        for root, members in groups.items():
            if len(members) == 1:
                n_comp[members[0]] = None
                n_first[members[0]] = -1
                continue
            comp = _Comp("", 0, members, glinks.get(root, []), self._uniq_of(members))
            for m in members:
                n_comp[m] = comp
            out.append(comp)
        return out

    def _finalise(
        self,
        originals: list[tuple[str, int, tuple[int, ...]]],
        nodes: Iterable[int],
        seq: int,
        ts: int,
        log: GraphChanges,
    ) -> None:
        """Name the parts an operation left behind and report the net change.

        Rule: in age order ``(created seq, profile id)``, each component that existed at the start
        of the operation gives its id to the part holding its oldest remaining identity, unless
        that part already has one (then the id is reported merged into it). Parts left without
        an id get a new one. Components unchanged by the operation therefore keep their ids.
        """
        n_comp = self._n_comp
        parts: list[_Comp] = []
        seen: set[int] = set()
        for n in nodes:
            c = n_comp[n]
            if c is not None and id(c) not in seen:
                seen.add(id(c))
                parts.append(c)
        for p in parts:
            if p.pid and self._comps.get(p.pid) is p:
                del self._comps[p.pid]
        if len(originals) == 1 and len(parts) == 1:
            # the common case (a component trimmed by the limit): it keeps its id, no ordering needed
            pid, created, members = originals[0]
            part = parts[0]
            if any(n_comp[m] is part for m in members):
                for m in members:
                    if n_comp[m] is None:
                        log.removed.append(self._identity(m))
                part.pid, part.created = pid, created
                self._comps[pid] = part
                log._members[pid] = _PENDING
                return
        part_of = {m: i for i, p in enumerate(parts) for m in p.members}
        ids: list[tuple[str, int] | None] = [None] * len(parts)
        origin: dict[int, str] = {}
        for pid, created, members in sorted(originals, key=lambda o: (o[1], o[0])):
            alive = [m for m in members if m in part_of]
            for m in members:
                origin[m] = pid
                if m not in part_of:
                    log.removed.append(self._identity(m))
            if not alive:
                log.deleted.append(pid)
                self._history.append(HistoryEntry(seq, ts, "deleted", pid, None))
                continue
            pi = part_of[self._oldest(alive)]
            assigned = ids[pi]
            if assigned is None:
                ids[pi] = (pid, created)
            else:
                log.merged[pid] = assigned[0]
                self._history.append(HistoryEntry(seq, ts, "merged", pid, assigned[0]))
        for i, p in enumerate(parts):
            assigned = ids[i]
            if assigned is None:
                oldest = self._oldest(p.members)
                pid = _new_pid(seq, self._ns_code[self._n_ns[oldest]], self._n_val[oldest])
                known = [m for m in p.members if m in origin]
                if known:
                    src = origin[self._oldest(known)]
                    log.split[pid] = src
                    self._history.append(HistoryEntry(seq, ts, "split", pid, src))
                else:
                    log.created.append(pid)
                    self._history.append(HistoryEntry(seq, ts, "created", pid, None))
                assigned = (pid, seq)
            p.pid, p.created = assigned
            self._comps[p.pid] = p
            log._members[p.pid] = _PENDING

    @staticmethod
    def _originals(comps: Iterable[_Comp]) -> list[tuple[str, int, tuple[int, ...]]]:
        return [(c.pid, c.created, tuple(c.members)) for c in comps]

    # ------------------------------------------------------------------ graph limit
    def _enforce_limit(self, comp: _Comp) -> None:
        """Remove identities (cookies, then devices, then people; oldest first) until every part
        is within the limit; removing one may split the component and drop spokes."""
        limit = self._rules.limit
        if limit is None or len(comp.members) <= limit:
            return
        removal, n_ns = self._ns_removal, self._n_ns
        code, n_val, n_first = self._ns_code, self._n_val, self._n_first
        stack = [comp]
        while stack:
            c = stack.pop()
            if len(c.members) <= limit:
                continue
            # min over (removal rank, first seen, namespace, value); the integer parts narrow the
            # candidates first, so the strings are compared only between exact ties
            members = c.members
            top = min([removal[n_ns[m]] for m in members])
            cand = [m for m in members if removal[n_ns[m]] == top]
            if len(cand) > 1:
                first = min([n_first[m] for m in cand])
                cand = [m for m in cand if n_first[m] == first]
            victim = cand[0] if len(cand) == 1 else min(cand, key=lambda n: (code[n_ns[n]], n_val[n]))
            la, lb = self._la, self._lb
            remaining: list[int] = []
            degree = 0
            for lid in c.links:
                if la[lid] == victim or lb[lid] == victim:
                    self._drop_link(lid)
                    degree += 1
                else:
                    remaining.append(lid)
            self._refused["identity removed: graph limit reached"] += 1
            nodes = [m for m in c.members if m != victim]
            self._n_comp[victim] = None
            n_first[victim] = -1
            if degree == 1:
                # removing a leaf never disconnects the rest (c has more than two members): trim in place
                c.members, c.links = nodes, remaining
                nsi = n_ns[victim]
                if c.uniq.get(nsi) == victim:
                    del c.uniq[nsi]
                stack.append(c)
            else:
                stack.extend(self._repartition(nodes, remaining, [c]))

    # ------------------------------------------------------------------ unlink, delete, re-resolve
    def unlink(self, a: Identity, b: Identity, *, ts: Time | None = None) -> GraphChanges:
        """Remove the link between two identities; only their component is recomputed (it may split).

        Raises:
            NotFound: when the two identities are not linked.
        """
        na, nb = self._lookup(a), self._lookup(b)
        lid = None if na is None or nb is None else self._lk.get(min(na, nb) << 32 | max(na, nb))
        comp = None if na is None else self._n_comp[na]
        if lid is None or comp is None:
            raise NotFound(f"{a} and {b} are not linked.", path="link")
        return self._cut(comp, lambda x: x == lid, ts)

    def delete_identity(self, identity: Identity, *, ts: Time | None = None) -> GraphChanges:
        """Remove an identity and its links from the graph (its profile fragments are untouched).

        Raises:
            NotFound: when the identity is not in the graph.
        """
        node = self._lookup(identity)
        comp = None if node is None else self._n_comp[node]
        if comp is None:
            raise NotFound(f"{identity} is not in the identity graph.", path="identity")
        la, lb = self._la, self._lb
        return self._cut(comp, lambda x: la[x] == node or lb[x] == node, ts)

    def _cut(self, comp: _Comp, drop: Callable[[int], bool], ts: Time | None) -> GraphChanges:
        self._seq += 1
        seq = self._seq
        log = GraphChanges(self)
        originals = self._originals([comp])
        remaining: list[int] = []
        for lid in comp.links:
            if drop(lid):
                self._drop_link(lid)
            else:
                remaining.append(lid)
        members = list(comp.members)
        self._repartition(members, remaining, [comp])
        self._finalise(originals, members, seq, seq if ts is None else _ms(ts), log)
        self._snapshot(log)
        return log

    def re_resolve(self, rules: LinkingRules | None = None, *, ts: Time | None = None) -> GraphChanges:
        """Apply (new) rules to existing data; components that still satisfy them keep their ids.

        Components violating a unique namespace are replayed by the identity optimisation
        algorithm (the links of the component's newest row count as "newest"); components over
        the limit are trimmed in the documented order.
        """
        if rules is not None:
            self.set_rules(rules)
        self._seq += 1
        seq = self._seq
        t = seq if ts is None else _ms(ts)
        log = GraphChanges(self)
        limit = self._rules.limit
        for comp in sorted(self._comps.values(), key=lambda c: (c.created, c.pid)):
            violates = bool(self._rules.unique) and self._violates([], comp.members)
            if not violates and (limit is None or len(comp.members) <= limit):
                continue
            originals = self._originals([comp])
            members = list(comp.members)
            links = list(comp.links)
            parts = None
            if violates:
                newest = max(self._lseq[lid] for lid in links)
                links, parts = self._optimise(members, links, newest, log)
            for part in self._repartition(members, links, [comp], parts):
                self._enforce_limit(part)
            self._finalise(originals, members, seq, t, log)
        self._snapshot(log)
        return log

    # ------------------------------------------------------------------ queries
    def profile_id(self, identity: Identity) -> str | None:
        """The profile id of the graph holding ``identity``, or ``None`` when it is in no graph."""
        node = self._lookup(identity)
        comp = None if node is None else self._n_comp[node]
        return None if comp is None else comp.pid

    def members(self, identity: Identity, *, stitched: bool = True) -> tuple[Identity, ...]:
        """Cluster members of ``identity`` (sorted); just the identity itself when it is in no
        graph or when ``stitched`` is False (graph type "None")."""
        if not stitched:
            return (identity,)
        node = self._lookup(identity)
        comp = None if node is None else self._n_comp[node]
        if comp is None:
            return (identity,)
        return tuple(sorted(self._identity(m) for m in comp.members))

    def profile_members(self, profile_id: str) -> tuple[Identity, ...]:
        """Member identities of a profile id (sorted).

        Raises:
            NotFound: when no graph has that profile id.
        """
        comp = self._comps.get(profile_id)
        if comp is None:
            raise NotFound(f"No identity graph has profile id {profile_id!r}.", path="profile_id")
        return tuple(sorted(self._identity(m) for m in comp.members))

    def components(self) -> dict[str, tuple[Identity, ...]]:
        """Every graph: profile id → sorted member identities."""
        return {pid: tuple(sorted(self._identity(m) for m in c.members)) for pid, c in self._comps.items()}

    def member_columns(self) -> tuple[list[str], list[str], list[str]]:
        """Every identity in a graph as three columns, profile id, namespace and value, in no
        order: for batch jobs that join stored rows to their profiles in bulk (no Identity
        object, no sorting per graph). A walk over the node columns, not per graph; nodes that a
        thread adds meanwhile are left out (copies of the columns up to one length)."""
        count = len(self._n_comp)
        comps, node_ns, node_value = self._n_comp[:count], self._n_ns[:count], self._n_val[:count]
        codes = self._ns_code
        pids = [c.pid for c in comps if c is not None]
        namespaces = [codes[n] for n, c in zip(node_ns, comps, strict=True) if c is not None]
        values = [v for v, c in zip(node_value, comps, strict=True) if c is not None]
        return pids, namespaces, values

    def links(self) -> Iterator[LinkInfo]:
        """Every link currently in the graph."""
        for lid in self._lk.values():
            yield self._link_info(lid)

    def history(self, identity: Identity) -> list[HistoryEntry]:
        """Cluster history of the profile holding ``identity``: its own entries and those of every
        profile id merged into it (transitively), oldest first."""
        pid = self.profile_id(identity)
        if pid is None:
            return []
        absorbed: dict[str, list[str]] = {}
        for h in self._history:
            if h.kind == "merged" and h.other is not None:
                absorbed.setdefault(h.other, []).append(h.profile_id)
        ids = {pid}
        todo = [pid]
        while todo:
            for old in absorbed.get(todo.pop(), []):
                if old not in ids:
                    ids.add(old)
                    todo.append(old)
        return [h for h in self._history if h.profile_id in ids or (h.kind == "merged" and h.other in ids)]

    def profile_history(self) -> list[HistoryEntry]:
        """Every cluster-history entry, oldest first."""
        return list(self._history)

    def mapping(self, identity: Identity, target_namespace: str) -> list[tuple[Identity, int]]:
        """Identities of ``target_namespace`` in the graph of ``identity``, each with the last time
        one of its links was asserted (most recent first)."""
        node = self._lookup(identity)
        comp = None if node is None else self._n_comp[node]
        if comp is None:
            return [(identity, 0)] if identity.namespace == target_namespace else []
        nsi = self._ns_idx.get(target_namespace)
        last: dict[int, int] = {}
        la, lb, llast = self._la, self._lb, self._llast
        for lid in comp.links:
            for n in (la[lid], lb[lid]):
                if self._n_ns[n] == nsi and llast[lid] > last.get(n, -(2**62)):
                    last[n] = llast[lid]
        out = [(self._identity(n), t) for n, t in last.items()]
        out.sort(key=lambda p: (-p[1], p[0]))
        return out

    def explain(self, a: Identity, b: Identity) -> list[LinkInfo]:
        """The chain of links joining ``a`` to ``b`` (a shortest one), in path order.

        Raises:
            NotFound: when the two identities are not in the same graph.
        """
        na, nb = self._lookup(a), self._lookup(b)
        comp = None if na is None else self._n_comp[na]
        if comp is None or na is None or nb is None or self._n_comp[nb] is not comp:
            raise NotFound(f"{a} and {b} are not in the same identity graph.", path="identities")
        adj: dict[int, list[tuple[int, int]]] = {}
        for lid in comp.links:
            x, y = self._la[lid], self._lb[lid]
            adj.setdefault(x, []).append((y, lid))
            adj.setdefault(y, []).append((x, lid))
        prev: dict[int, tuple[int, int]] = {na: (-1, -1)}
        queue = deque([na])
        while queue:
            x = queue.popleft()
            if x == nb:
                break
            for y, lid in sorted(adj.get(x, [])):
                if y not in prev:
                    prev[y] = (x, lid)
                    queue.append(y)
        chain: list[LinkInfo] = []
        x = nb
        while x != na:
            px, lid = prev[x]
            chain.append(self._link_info(lid))
            x = px
        chain.reverse()
        return chain

    def stats(self, top: int = 10) -> GraphStats:
        """Component size histogram, largest components, identities per namespace, refusals.

        Whole-graph passes run in C (``map``, ``compress``, ``Counter``): the dashboard asks for
        this over millions of identities, where a Python loop per member takes about a second.
        """
        comps = list(self._comps.values())
        lengths = list(map(len, map(_MEMBERS, comps)))
        sizes = Counter(lengths)
        # only components at least as large as the top-th largest can be among the largest
        floor, seen = 0, 0
        for size in sorted(sizes, reverse=True):
            floor, seen = size, seen + sizes[size]
            if seen >= top:
                break
        largest = sorted(
            ((c.pid, n) for c, n in zip(comps, lengths, strict=True) if n >= floor),
            key=lambda p: (-p[1], p[0]),
        )[:top]
        # an identity is in the graph when it points at a component (dropped ones point at None)
        in_graph = Counter(compress(self._n_ns, map(_IS_SET, self._n_comp)))
        per_ns = Counter({self._ns_code[nsi]: count for nsi, count in in_graph.items()})
        return GraphStats(
            profiles=len(comps),
            identities=sum(lengths),
            links=len(self._lk),
            size_histogram=dict(sorted(sizes.items())),
            largest=largest,
            identities_per_namespace=dict(sorted(per_ns.items())),
            refused=dict(self._refused),
        )

    # ------------------------------------------------------------------ persistence
    def component_state(self, pid: str) -> tuple[ProfileRow, list[IdentityRow], list[LinkRow]] | None:
        """One component as persistence rows (its profile, member identities and links), or
        ``None`` when no component has that id any more (merged away or deleted)."""
        comp = self._comps.get(pid)
        if comp is None:
            return None
        code, n_ns, n_val, n_first = self._ns_code, self._n_ns, self._n_val, self._n_first
        members = [IdentityRow(code[n_ns[m]], n_val[m], pid, n_first[m]) for m in comp.members]
        return ProfileRow(pid, comp.created), members, [self._link_row(lid) for lid in comp.links]

    def profile_size(self, pid: str) -> int:
        """Number of identities in profile ``pid`` (0 when no component has that id)."""
        comp = self._comps.get(pid)
        return 0 if comp is None else len(comp.members)

    def values(self, namespace: str, since: int = 0) -> tuple[list[str], int]:
        """Values of ``namespace`` first seen at or after position ``since``, and the position to
        pass next time.

        Positions count every identity the graph has seen, in order, and never move, so a reader
        that keeps the returned position fetches only what is new, at a cost that follows the
        new identities (not the namespace's size). Includes values that have since left the
        graph (deleted, or dropped by the rules): check them with :meth:`profile_id`.
        """
        end = len(self._n_val)
        nsi = self._ns_idx.get(namespace)
        if nsi is None or since >= end:
            return [], end
        if since <= 0:
            return list(self._intern[nsi])[: self._count_before(nsi, end)], end
        n_ns, n_val = self._n_ns, self._n_val
        return [n_val[i] for i in range(since, end) if n_ns[i] == nsi], end

    def _count_before(self, nsi: int, end: int) -> int:
        """How many of namespace ``nsi``'s identities sit before position ``end`` (the intern table
        may have grown since ``end`` was read)."""
        table = self._intern[nsi]
        count = len(table)
        n_ns = self._n_ns
        for i in range(len(self._n_val) - 1, end - 1, -1):
            if n_ns[i] == nsi:
                count -= 1
        return count

    def history_since(self, index: int) -> list[HistoryEntry]:
        """Cluster-history entries from position ``index`` on (for appending to a store)."""
        return self._history[index:]

    def history_length(self) -> int:
        """Number of cluster-history entries so far."""
        return len(self._history)

    def refused_counts(self) -> dict[str, int]:
        """How many rows, links and identities the rules refused, by reason."""
        return dict(self._refused)

    def to_rows(self) -> GraphState:
        """The full state as plain rows (a snapshot; rebuild with :meth:`from_rows`).

        Identities that are in no graph are not included (they carry no state).
        """
        identities = [
            IdentityRow(self._ns_code[self._n_ns[m]], self._n_val[m], c.pid, self._n_first[m])
            for c in self._comps.values()
            for m in c.members
        ]
        links = [self._link_row(lid) for lid in self._lk.values()]
        profiles = [ProfileRow(c.pid, c.created) for c in self._comps.values()]
        return GraphState(identities, links, profiles, list(self._history), self._seq, dict(self._refused))

    @classmethod
    def from_rows(
        cls,
        state: GraphState,
        rules: LinkingRules | None = None,
        *,
        types: Mapping[str, IdentityType] | None = None,
        journal: bool = False,
    ) -> IdentityGraph:
        """Rebuild an engine from :meth:`to_rows` output (the rules are settings, passed separately)."""
        members: dict[str, list[tuple[str, str, int]]] = {p.profile_id: [] for p in state.profiles}
        for row in state.identities:
            members[row.profile_id].append((row.namespace, row.id, row.first_seen))
        created = {p.profile_id: p.created_seq for p in state.profiles}
        components = ((pid, created[pid], rows, ()) for pid, rows in members.items() if rows)
        g = cls.from_components(
            components, state.history, state.seq, state.refused, rules, types=types, journal=journal
        )
        g._add_links(state.links)
        return g

    @classmethod
    def from_components(
        cls,
        components: Iterable[tuple[str, int, Iterable[Sequence[Any]], Iterable[Sequence[Any]]]],
        history: Iterable[HistoryEntry],
        seq: int,
        refused: Mapping[str, int],
        rules: LinkingRules | None = None,
        *,
        types: Mapping[str, IdentityType] | None = None,
        journal: bool = False,
    ) -> IdentityGraph:
        """Rebuild an engine from stored components, the way the point store keeps them.

        Args:
            components: ``(profile id, created seq, members, links)`` per component; a member is
                ``(namespace, id, first seen)``, a link has the fields of :class:`LinkRow` in order.
            history: cluster history, oldest first.
            seq: the sequence number of the last operation.
            refused: refusal counters.

        This is how a sandbox opens, so it builds the columns directly (no row object per identity
        or link): at a million people it is most of the time a server takes to start.
        """
        g = cls(rules, types=types, journal=journal)
        g._seq = seq
        g._history = list(history)
        g._refused = Counter(refused)
        g._load_components(components)
        if journal:
            g._j_links = set()  # the restored state is already persisted
            g._j_history = len(g._history)
        return g

    def _load_components(
        self, components: Iterable[tuple[str, int, Iterable[Sequence[Any]], Iterable[Sequence[Any]]]]
    ) -> None:
        """Load stored components (see :meth:`from_components`): all identities first, so that
        every link finds both of its endpoints."""
        links: list[Sequence[Any]] = []
        for pid, created, members, comp_links in components:
            self._add_members(pid, created, members)
            links.extend(comp_links)
        self._add_links(links)

    def _add_members(self, pid: str, created: int, members: Iterable[Sequence[Any]]) -> None:
        """Load one component's identities (each in no other component), without its links."""
        ns_idx, intern = self._ns_idx, self._intern
        n_ns, n_val, n_first, n_comp = self._n_ns, self._n_val, self._n_first, self._n_comp
        comp = _Comp(pid, created, [], [], {})
        nodes = comp.members
        for ns, value, first in members:
            nsi = ns_idx.get(ns)
            if nsi is None:
                nsi = self._ns(ns)
            table = intern[nsi]
            node = table.get(value)
            if node is None:
                node = table[value] = len(n_val)
                n_ns.append(nsi)
                n_val.append(value)
                n_first.append(first)
                n_comp.append(comp)
            else:
                n_first[node] = first
                n_comp[node] = comp
            nodes.append(node)
        comp.uniq = self._uniq_of(nodes)
        self._comps[pid] = comp

    def _add_links(self, links: Iterable[Sequence[Any]]) -> None:
        """Load links (fields of :class:`LinkRow`) between identities already loaded; each joins the
        component of its endpoints."""
        ns_idx, intern, n_comp = self._ns_idx, self._intern, self._n_comp
        lk, la, lb = self._lk, self._la, self._lb
        lfirst, llast, lseq, lds, lbatch = self._lfirst, self._llast, self._lseq, self._lds, self._lbatch
        free = self._lfree
        for ns_a, id_a, ns_b, id_b, first, last, seq, dataset, batch in links:
            nsa, nsb = ns_idx.get(ns_a), ns_idx.get(ns_b)
            a = None if nsa is None else intern[nsa].get(id_a)
            b = None if nsb is None else intern[nsb].get(id_b)
            owner = None if a is None or b is None else n_comp[a]
            if owner is None:
                raise NotFound(f"Link {ns_a}:{id_a} - {ns_b}:{id_b} names an identity in no graph.")
            assert a is not None and b is not None
            if b < a:
                a, b = b, a
            if free:  # slots of links dropped earlier (catch_up replaces components in place)
                lid = free.pop()
                la[lid], lb[lid], lfirst[lid], llast[lid], lseq[lid] = a, b, first, last, seq
                lds[lid], lbatch[lid] = dataset, batch
            else:
                lid = len(la)
                la.append(a)
                lb.append(b)
                lfirst.append(first)
                llast.append(last)
                lseq.append(seq)
                lds.append(dataset)
                lbatch.append(batch)
            lk[a << 32 | b] = lid
            owner.links.append(lid)

    def replace_components(
        self,
        profile_ids: Iterable[str],
        components: Iterable[tuple[str, int, Iterable[Sequence[Any]], Iterable[Sequence[Any]]]],
        *,
        history: Iterable[HistoryEntry] = (),
        seq: int | None = None,
        refused: Mapping[str, int] | None = None,
    ) -> None:
        """Bring this engine up to date with components another process changed.

        Every component in ``profile_ids`` is dropped (identities and links), then ``components``
        (same shape as :meth:`from_components`: the stored state of those that still exist) are
        loaded in their place; ``history`` is appended and the counters set. The caller passes
        every component the other process wrote or deleted, so each identity that moved left a
        component listed here. Nothing is journaled: the state comes from the store.
        """
        n_comp, n_first = self._n_comp, self._n_first
        for pid in profile_ids:
            comp = self._comps.pop(pid, None)
            if comp is None:
                continue
            for m in comp.members:
                if n_comp[m] is comp:
                    n_comp[m] = None
                    n_first[m] = -1
            for lid in comp.links:
                self._free_link(lid)
        self._load_components(components)
        self._history.extend(history)
        if seq is not None:
            self._seq = seq
        if refused is not None:
            self._refused = Counter(refused)
