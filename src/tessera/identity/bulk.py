"""Vectorised resolution of a batch of rows, producing exactly what row-at-a-time would.

How: the batch arrives as columns (row offsets, namespace and value strings). Identities are
interned by Arrow dictionary encoding and NumPy, each row is assessed with array operations
(duplicates, rejection rules, primary identity), and every row's links are built as arrays.
``scipy.sparse.csgraph.connected_components`` over the batch's links plus the touched existing
components gives each row's final group. A group that ends within the graph limit and holds at
most one identity of every unique namespace can never have triggered a rule on the way (every
intermediate state is a subset of it), so its links and component are written in bulk. Only the
remaining groups are replayed row by row through the engine, in row order with the rows' own
sequence numbers; groups are independent, so the result is identical to the incremental path.

Only the rows that are unusual go through Python one at a time: rows a rule rejects (for the
reason text), rows whose primary identity is decided by comparing values, and the replayed groups.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from typing import NamedTuple, TypeAlias

import numpy as np
import pyarrow as pa
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from tessera.errors import InvalidInput
from tessera.gc_pause import gc_paused
from tessera.identity.graph import (
    _PENDING,
    GraphChanges,
    HistoryEntry,
    IdentityGraph,
    Time,
    _Comp,
    _ms,
    _new_pid,
)
from tessera.identity.rules import LinkingRules, row_rejection
from tessera.model import Identity

Strings: TypeAlias = "pa.Array | pa.ChunkedArray | Sequence[str]"
"""A string column: an Arrow string array (as read from a batch file) or a Python sequence."""


@dataclass(slots=True)
class BulkResult:
    """Outcome of :func:`resolve_bulk`.

    Attributes:
        primary: each row's primary identity (``None`` when rejected).
        rejected: each row's rejection reason or ``None``.
        changes: the batch's combined changes (merges are reported between components that
            existed before the batch; components born and merged inside the batch appear once).
        replayed_rows: how many rows needed the row-at-a-time rules.
    """

    primary: list[Identity | None]
    rejected: list[str | None]
    changes: GraphChanges
    replayed_rows: int


@dataclass(slots=True)
class ColumnResult:
    """Outcome of :func:`resolve_columns`.

    Attributes:
        primary: per row, the position (in the flat columns) of its primary identity; -1 for
            empty and rejected rows.
        rejected: row index → rejection reason, for the rejected rows only.
        changes: as in :class:`BulkResult`.
        replayed_rows: how many rows needed the row-at-a-time rules.
    """

    primary: np.ndarray
    rejected: dict[int, str]
    changes: GraphChanges
    replayed_rows: int


def resolve_bulk(
    graph: IdentityGraph,
    rows: Sequence[Sequence[Identity]],
    *,
    ts: Sequence[Time] | None = None,
    dataset: str | None = None,
    batch: str | None = None,
    primaries: Sequence[Identity | None] | None = None,
    record: bool = False,
) -> BulkResult:
    """Apply a batch of rows (in time order) to ``graph`` as if :meth:`IdentityGraph.add_row`
    were called for each row in turn, but vectorised.

    The rows are flattened into columns for :func:`resolve_columns`; callers that already hold
    columns (a batch file read with Arrow) should call that directly.

    Args:
        graph: the engine to update.
        rows: each row's validated identities.
        ts: each row's time (epoch ms or datetime); default: the sequence numbers the rows
            that link take.
        dataset: source dataset of the whole batch.
        batch: batch id.
        primaries: each row's schema primary identity (see ``add_row``).
        record: True when the rows are profile records.

    >>> g = IdentityGraph()
    >>> r = resolve_bulk(g, [[Identity("Email", "a"), Identity("ECID", "1")], [Identity("ECID", "1"), Identity("Phone", "9")]])
    >>> [len(m) for m in g.components().values()]
    [3]
    """
    with gc_paused():
        n_rows = len(rows)
        offsets = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, rows), dtype=np.int64, count=n_rows), out=offsets[1:])
        declared = None
        if primaries is not None and (record or not graph.rules.priority):
            starts = offsets.tolist()
            positions = [-1] * n_rows
            for i, p in enumerate(primaries):
                if p is not None:
                    for j, ident in enumerate(rows[i]):
                        if ident == p:
                            positions[i] = starts[i] + j
                            break
            declared = np.array(positions, dtype=np.int64)
        out = resolve_columns(
            graph,
            offsets,
            [ident.namespace for row in rows for ident in row],
            [ident.id for row in rows for ident in row],
            ts=ts,
            dataset=dataset,
            batch=batch,
            declared=declared,
            record=record,
        )
        primary = [
            None if p < 0 else row[p - s]
            for row, p, s in zip(rows, out.primary.tolist(), offsets.tolist(), strict=False)
        ]
        rejected: list[str | None] = [None] * n_rows
        for i, reason in out.rejected.items():
            rejected[i] = reason
    return BulkResult(primary, rejected, out.changes, out.replayed_rows)


def resolve_columns(
    graph: IdentityGraph,
    offsets: Sequence[int] | np.ndarray,
    namespaces: Strings,
    values: Strings,
    *,
    ts: Sequence[Time] | np.ndarray | None = None,
    dataset: str | None = None,
    batch: str | None = None,
    declared: Sequence[int] | np.ndarray | None = None,
    record: bool = False,
) -> ColumnResult:
    """:func:`resolve_bulk` for a batch held as columns: row ``i``'s identities are
    ``namespaces[offsets[i]:offsets[i+1]]`` with ``values`` alongside.

    Args:
        graph: the engine to update.
        offsets: ``n_rows + 1`` non-decreasing positions, starting at 0 and ending at the
            column length.
        namespaces: each identity's namespace code.
        values: each identity's value.
        ts: each row's time (epoch ms or datetime); default: the sequence numbers the rows
            that link take.
        dataset: source dataset of the whole batch.
        batch: batch id.
        declared: per row, the position of its schema primary identity or -1 (see ``add_row``:
            used for records and when no priority is configured).
        record: True when the rows are profile records.

    Raises:
        InvalidInput: when the columns do not fit together or hold nulls.

    >>> g = IdentityGraph()
    >>> r = resolve_columns(g, [0, 2, 4], ["Email", "ECID", "ECID", "Phone"], ["a", "1", "1", "9"])
    >>> r.primary.tolist(), [len(m) for m in g.components().values()]
    ([1, 2], [3])
    """
    with gc_paused():
        return _resolve(graph, offsets, namespaces, values, ts, dataset, batch, declared, record)


def _resolve(
    graph: IdentityGraph,
    offsets: Sequence[int] | np.ndarray,
    namespaces: Strings,
    values: Strings,
    ts: Sequence[Time] | np.ndarray | None,
    dataset: str | None,
    batch: str | None,
    declared: Sequence[int] | np.ndarray | None,
    record: bool,
) -> ColumnResult:
    off = np.asarray(offsets, dtype=np.int64)
    ns_col, val_col = _strings(namespaces, "namespaces"), _strings(values, "values")
    n_rows = len(off) - 1
    m = len(ns_col)
    if n_rows < 0 or len(val_col) != m or off[0] != 0 or off[-1] != m or bool(np.any(off[1:] < off[:-1])):
        raise InvalidInput(
            "Row offsets must start at 0, never decrease and end at the length of both columns.",
            path="offsets",
        )
    base = graph._seq
    given_times = None if ts is None else _row_times(ts, n_rows)
    log = GraphChanges(graph)
    primary = np.full(n_rows, -1, dtype=np.int64)
    rejected: dict[int, str] = {}
    if m == 0:
        return ColumnResult(primary, rejected, log, 0)
    rules = graph.rules
    counts = np.diff(off)
    row_of = np.repeat(np.arange(n_rows, dtype=np.int64), counts)
    nonempty = counts > 0
    starts = off[:-1][nonempty]

    # Namespaces: batch-local codes (a handful) and each one's properties in the graph.
    ns_enc = ns_col.dictionary_encode()
    codes: list[str] = ns_enc.dictionary.to_pylist()
    ns_loc = ns_enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    n_loc = len(codes)
    nsi_loc = np.array([graph._ns(c) for c in codes], dtype=np.int64)
    graph_loc = np.array([graph._ns_graph[i] for i in nsi_loc], dtype=bool)
    unique_loc = np.array([graph._ns_unique[i] for i in nsi_loc], dtype=bool)
    rank_loc = np.array([graph._ns_rank[i] for i in nsi_loc], dtype=np.int64)
    lex_loc = np.empty(n_loc, dtype=np.int64)
    lex_loc[sorted(range(n_loc), key=codes.__getitem__)] = np.arange(n_loc)
    # (rank, namespace code) of each namespace as one int: the primary identity's order
    order_loc = rank_loc * n_loc + lex_loc

    # Identities: one code per distinct (namespace, value).
    val_enc = val_col.dictionary_encode()
    v_dict = val_enc.dictionary
    v_idx = val_enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    ident, ident_key = _factorize(v_idx * n_loc + ns_loc, len(v_dict) * n_loc)

    def strings_at(positions: np.ndarray) -> list[str]:
        return v_dict.take(pa.array(v_idx[positions])).to_pylist()  # type: ignore[no-any-return]

    # Rows repeating a namespace are the only ones that can hold duplicates or be rejected.
    if n_loc <= 63:
        row_bits = np.bitwise_or.reduceat(np.left_shift(np.uint64(1), ns_loc.astype(np.uint64)), starts)
        distinct = np.bitwise_count(row_bits).astype(np.int64)
    else:
        rn = np.unique(row_of * n_loc + ns_loc)
        distinct = np.bincount(rn // n_loc, minlength=n_rows)[nonempty]
    repeated = np.zeros(n_rows, dtype=bool)
    repeated[nonempty] = distinct < counts[nonempty]
    keep = np.ones(m, dtype=bool)
    rep_pos = np.flatnonzero(repeated[row_of])
    if len(rep_pos):
        # exact duplicates: keep each identity's first mention in its row
        o = np.lexsort((rep_pos, ident[rep_pos], row_of[rep_pos]))
        ps = rep_pos[o]
        dup = (row_of[ps][1:] == row_of[ps][:-1]) & (ident[ps][1:] == ident[ps][:-1])
        keep[ps[1:][dup]] = False
        if rules.enabled:
            _reject(
                rules,
                codes,
                ns_loc,
                unique_loc,
                rank_loc,
                order_loc,
                row_of,
                rep_pos[keep[rep_pos]],
                n_rows,
                strings_at,
                rejected,
            )
    is_rejected = np.zeros(n_rows, dtype=bool)
    if rejected:
        is_rejected[np.fromiter(rejected, dtype=np.int64, count=len(rejected))] = True
        graph._refused["rows rejected by linking rules"] += len(rejected)

    _choose_primaries(primary, keep, order_loc[ns_loc], row_of, starts, nonempty, strings_at)
    if declared is not None and (record or not rules.priority):
        d = np.asarray(declared, dtype=np.int64)
        has = np.flatnonzero(d >= 0)
        if bool(np.any((d[has] < off[has]) | (d[has] >= off[has + 1]))):
            raise InvalidInput("A declared primary identity lies outside its row.", path="declared")
        primary[has] = d[has]
    primary[is_rejected] = -1

    # The rows that link: not rejected, two or more identities, two or more of them in graphs.
    n_kept = np.zeros(n_rows, dtype=np.int64)
    n_kept[nonempty] = np.add.reduceat(keep.astype(np.int64), starts)
    nm = np.flatnonzero(keep & graph_loc[ns_loc] & ((n_kept >= 2) & ~is_rejected)[row_of])
    k_row = np.bincount(row_of[nm], minlength=n_rows)
    nm = nm[k_row[row_of[nm]] >= 2]
    if len(nm) == 0:
        return ColumnResult(primary, rejected, log, 0)
    link_rows = np.flatnonzero(k_row >= 2)
    k_link = k_row[link_rows]
    # as in add_row, only the rows that link take a sequence number (in row order)
    row_seq = np.zeros(n_rows, dtype=np.int64)
    row_seq[link_rows] = np.arange(base + 1, base + 1 + len(link_rows), dtype=np.int64)
    graph._seq = base + len(link_rows)
    times = row_seq if given_times is None else given_times
    row_start = np.zeros(len(link_rows), dtype=np.int64)  # each link row's first entry in nm
    np.cumsum(k_link[:-1], out=row_start[1:])

    n_before = len(graph._n_ns)
    node = _intern(graph, ident[nm], ident_key, n_loc, nsi_loc, v_dict)
    n_after = len(graph._n_ns)

    ukey, u_first, u_last, u_maxt = _distinct_links(node, link_rows, row_start, k_link, times)
    ulo, uhi = ukey >> 32, ukey & 0xFFFFFFFF

    groups = _connect(graph, node, n_before, n_after, ulo, uhi)
    labels, n_lab, involved, local = groups.labels, groups.n_lab, groups.involved, groups.local
    comps, heads, orphans, src = groups.comps, groups.heads, groups.orphans, groups.src
    n_inv = len(involved)

    inv_ns = _gather(graph._n_ns, involved) if rules.unique else None
    need = _groups_needing_rules(graph, labels, n_lab, inv_ns)

    # Each link row's group, and each group's first row (it names a group that is new).
    link_label = labels[local(node[row_start])]
    group_first = np.full(n_lab, len(link_rows), dtype=np.int64)
    np.minimum.at(group_first, link_label, np.arange(len(link_rows)))
    fresh_local = local(np.concatenate([np.arange(n_before, n_after), np.asarray(orphans, dtype=np.int64)]))
    node_first = np.full(n_inv, n_rows, dtype=np.int64)
    np.minimum.at(node_first, local(node), row_of[nm])
    comp_label = labels[local(heads)] if comps else np.zeros(0, dtype=np.int64)
    is_fast = ~need
    is_new_group = is_fast.copy()
    is_new_group[comp_label] = False
    new_groups = np.flatnonzero(is_new_group)
    # a new group's id is named after the smallest (namespace, value) of its first row
    j0 = group_first[new_groups]
    name_pos = _row_argmin(lex_loc[ns_loc[nm]], row_start, k_link, j0, lambda p: strings_at(nm[p]))
    fast = _FastGroups(
        is_fast=is_fast,
        labels=labels,
        involved=involved,
        fresh_local=fresh_local,
        node_first=node_first,
        comps=[c for c, lab in zip(comps, comp_label.tolist(), strict=True) if is_fast[lab]],
        comp_label=comp_label[is_fast[comp_label]],
        group_row=link_rows[group_first],  # every group holds a link row
        new_groups=new_groups,
        name_code=[codes[i] for i in ns_loc[nm[name_pos]].tolist()],
        name_value=strings_at(nm[name_pos]),
        inv_ns=inv_ns,
    )
    u_label = labels[src]
    links = np.flatnonzero(is_fast[u_label])
    _apply_fast(
        graph,
        log,
        fast,
        _Links(ukey[links], u_label[links], u_first[links], u_last[links], u_maxt[links]),
        row_seq=row_seq,
        times=times,
        n_before=n_before,
        n_after=n_after,
        dataset=dataset,
        batch=batch,
    )

    replay_sel = need[link_label]
    replayed = _replay_rows(
        graph,
        log,
        node,
        link_rows[replay_sel],
        row_start[replay_sel],
        k_link[replay_sel],
        times,
        row_seq,
        dataset,
        batch,
    )
    graph._snapshot(log)
    return ColumnResult(primary, rejected, log, replayed)


class _Connected(NamedTuple):
    labels: np.ndarray  # group label of each involved node (by local index)
    n_lab: int
    involved: np.ndarray  # the nodes of the batch and of the components it touches, sorted
    local: Callable[[np.ndarray], np.ndarray]  # node → local index into ``involved``
    comps: list[_Comp]  # existing components the batch touches
    heads: np.ndarray  # one member of each of ``comps``
    orphans: list[int]  # nodes interned before the batch but in no graph
    src: np.ndarray  # local index of each link's low node


def _connect(
    graph: IdentityGraph, node: np.ndarray, n_before: int, n_after: int, ulo: np.ndarray, uhi: np.ndarray
) -> _Connected:
    """Connected components of the batch's links (``ulo``–``uhi``) together with the existing
    components they touch, each joined as a star from one of its members."""
    n_comp = graph._n_comp
    batch_nodes = _distinct(node, n_after)
    touched: dict[int, _Comp] = {}
    orphans: list[int] = []  # nodes interned before the batch but in no graph
    for n in batch_nodes[batch_nodes < n_before].tolist():
        c = n_comp[n]
        if c is None:
            orphans.append(n)
        elif id(c) not in touched:
            touched[id(c)] = c
    comps = list(touched.values())
    if comps:
        sizes = np.fromiter((len(c.members) for c in comps), dtype=np.int64, count=len(comps))
        star_b = np.fromiter(
            chain.from_iterable(c.members for c in comps), dtype=np.int64, count=int(sizes.sum())
        )
        heads = star_b[np.r_[0, np.cumsum(sizes)[:-1]]]
        star_a = np.repeat(heads, sizes)
        involved = np.union1d(batch_nodes, star_b)
    else:
        star_a = star_b = heads = np.zeros(0, dtype=np.int64)
        involved = batch_nodes
    local = _localizer(involved, n_after)
    n_inv = len(involved)
    src, dst = local(ulo), local(uhi)
    if comps:
        s_all = np.concatenate([src, local(star_a)])
        d_all = np.concatenate([dst, local(star_b)])
        so = np.argsort(s_all, kind="stable")
        s_all, d_all = s_all[so], d_all[so]
    else:
        s_all, d_all = src, dst  # already ordered by source: keys sort by their low node
    indptr = np.searchsorted(s_all, np.arange(n_inv + 1))
    adj = csr_matrix((np.ones(len(s_all), dtype=np.int8), d_all, indptr), shape=(n_inv, n_inv))
    _, labels = connected_components(adj, directed=True, connection="weak")
    n_lab = int(labels.max()) + 1
    return _Connected(labels, n_lab, involved, local, comps, heads, orphans, src)


def _choose_primaries(
    primary: np.ndarray,
    keep: np.ndarray,
    order: np.ndarray,
    row_of: np.ndarray,
    starts: np.ndarray,
    nonempty: np.ndarray,
    strings_at: Callable[[np.ndarray], list[str]],
) -> None:
    """Each row's primary identity into ``primary`` (an entry position): the kept entry of the
    lowest ``order`` (namespace priority, then namespace code), then the smallest value — only
    rows where two values tie on the order compare strings."""
    n_rows = len(primary)
    big = int(order.max()) + 1
    row_min = np.full(n_rows, big, dtype=np.int64)
    row_min[nonempty] = np.minimum.reduceat(np.where(keep, order, big), starts)
    cand = np.flatnonzero(keep & (order == row_min[row_of]))
    n_cand = np.bincount(row_of[cand], minlength=n_rows)
    single = n_cand[row_of[cand]] == 1
    primary[row_of[cand[single]]] = cand[single]
    tied = cand[~single]
    if len(tied):
        tied_rows = row_of[tied].tolist()
        best: dict[int, tuple[str, int]] = {}
        for r, v, p in zip(tied_rows, strings_at(tied), tied.tolist(), strict=True):
            if r not in best or v < best[r][0]:
                best[r] = (v, p)
        primary[np.fromiter(best, dtype=np.int64, count=len(best))] = [p for _, p in best.values()]


def _distinct_links(
    node: np.ndarray, link_rows: np.ndarray, row_start: np.ndarray, k_link: np.ndarray, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of nodes of every link row, reduced to the distinct links: ``(key, first row,
    last row, latest time)`` per link, the key being ``low node << 32 | high node``, sorted."""
    pa_parts: list[np.ndarray] = []
    pb_parts: list[np.ndarray] = []
    pr_parts: list[np.ndarray] = []
    for k in np.flatnonzero(np.bincount(k_link)).tolist():  # rows of k nodes together
        sel = np.flatnonzero(k_link == k)
        mat = node[row_start[sel][:, None] + np.arange(k)]
        iu, ju = np.triu_indices(k, 1)
        pa_parts.append(mat[:, iu].ravel())
        pb_parts.append(mat[:, ju].ravel())
        pr_parts.append(np.repeat(link_rows[sel], len(iu)))
    a, b = np.concatenate(pa_parts), np.concatenate(pb_parts)
    keys = (np.minimum(a, b) << 32) | np.maximum(a, b)
    o = np.argsort(keys)
    keys_s, rows_s = keys[o], np.concatenate(pr_parts)[o]
    cut = np.flatnonzero(np.r_[True, keys_s[1:] != keys_s[:-1]])
    return (
        keys_s[cut],
        np.minimum.reduceat(rows_s, cut),
        np.maximum.reduceat(rows_s, cut),
        np.maximum.reduceat(times[rows_s], cut),
    )


def _groups_needing_rules(
    graph: IdentityGraph, labels: np.ndarray, n_lab: int, inv_ns: np.ndarray | None
) -> np.ndarray:
    """Per connected group, whether the linking rules must rebuild it: over the size limit, or
    holding two identities of one unique namespace (``inv_ns``: each involved node's namespace,
    given when some namespace is unique)."""
    rules = graph.rules
    need = np.zeros(n_lab, dtype=bool)
    if rules.limit is not None:
        need |= np.bincount(labels, minlength=n_lab) > rules.limit
    if inv_ns is not None:
        ns_unique = np.asarray(graph._ns_unique, dtype=bool)
        uq = ns_unique[inv_ns]
        if uq.any():
            pair = labels[uq] * len(ns_unique) + inv_ns[uq]
            vals, cnt = _counts(pair, n_lab * len(ns_unique))
            need[vals[cnt > 1] // len(ns_unique)] = True
    return need


def _replay_rows(
    graph: IdentityGraph,
    log: GraphChanges,
    node: np.ndarray,
    rows: np.ndarray,
    row_start: np.ndarray,
    k_rows: np.ndarray,
    times: np.ndarray,
    row_seq: np.ndarray,
    dataset: str | None,
    batch: str | None,
) -> int:
    """Link ``rows`` one by one through the incremental graph (where the rules apply); returns
    how many there were."""
    if not len(rows):
        return 0
    # only the replayed rows' entries become Python ints (the whole batch's would cost as much again)
    rep_start = np.zeros(len(rows), dtype=np.int64)
    np.cumsum(k_rows[:-1], out=rep_start[1:])
    take = np.repeat(row_start - rep_start, k_rows) + np.arange(int(k_rows.sum()))
    rep_nodes = node[take].tolist()
    for seq, s, k, t in zip(
        row_seq[rows].tolist(), rep_start.tolist(), k_rows.tolist(), times[rows].tolist(), strict=True
    ):
        changes = graph._link_nodes(rep_nodes[s : s + k], seq, t, dataset, batch)
        if changes is not None:
            _absorb(log, changes)
    return len(rows)


@dataclass(slots=True)
class _Links:
    """Distinct links of the groups written in bulk: packed key, group, first/last row, max time."""

    key: np.ndarray
    label: np.ndarray
    first: np.ndarray
    last: np.ndarray
    maxt: np.ndarray


@dataclass(slots=True)
class _FastGroups:
    """The connected-components result for the groups written in bulk (local node ids index
    ``labels``, ``involved`` maps them back to graph nodes)."""

    is_fast: np.ndarray  # per group: needs no rule
    labels: np.ndarray  # per local node: its group
    involved: np.ndarray  # local node → graph node
    fresh_local: np.ndarray  # local ids of nodes in no component before the batch
    node_first: np.ndarray  # per local node: first row that links it
    comps: list[_Comp]  # existing components of fast groups
    comp_label: np.ndarray  # their groups
    group_row: np.ndarray  # per group: its first row
    new_groups: np.ndarray  # fast groups made only of fresh nodes, ascending
    name_code: list[str]  # per new group: namespace and value naming its profile id
    name_value: list[str]
    inv_ns: np.ndarray | None  # per local node: namespace index (only with unique namespaces)


def _apply_fast(
    graph: IdentityGraph,
    log: GraphChanges,
    g: _FastGroups,
    links: _Links,
    *,
    row_seq: np.ndarray,
    times: np.ndarray,
    n_before: int,
    n_after: int,
    dataset: str | None,
    batch: str | None,
) -> None:
    """Write the links and components of the groups that need no rule, in bulk."""
    lk = graph._lk
    key = links.key
    is_new = np.ones(len(key), dtype=bool)
    # a link can only exist already between two nodes that existed before the batch
    maybe_old = np.flatnonzero((key & 0xFFFFFFFF) < n_before)
    if len(maybe_old) and lk:
        llast, lseq, lds, lbatch = graph._llast, graph._lseq, graph._lds, graph._lbatch
        for j, lid in zip(maybe_old.tolist(), map(lk.get, key[maybe_old].tolist()), strict=True):
            if lid is None:
                continue
            is_new[j] = False
            last_t = int(links.maxt[j])
            if last_t > llast[lid]:
                llast[lid] = last_t
            lseq[lid] = int(row_seq[links.last[j]])
            lds[lid] = dataset
            lbatch[lid] = batch
    new = np.flatnonzero(is_new)
    start, k = len(graph._la), len(new)
    new_keys = key[new]
    lk.update(zip(new_keys.tolist(), range(start, start + k), strict=True))
    _extend(graph._la, new_keys >> 32)
    _extend(graph._lb, new_keys & 0xFFFFFFFF)
    _extend(graph._lfirst, times[links.first[new]])
    _extend(graph._llast, links.maxt[new])
    _extend(graph._lseq, row_seq[links.last[new]])
    graph._lds.extend(repeat(dataset, k))
    graph._lbatch.extend(repeat(batch, k))
    if graph._j_links is not None:
        graph._j_links.update(key.tolist())
    n_lab = len(g.is_fast)
    link_lists, link_at = _group_lists(links.label[new], np.arange(start, start + k, dtype=np.int64), n_lab)

    fresh = g.fresh_local[g.is_fast[g.labels[g.fresh_local]]]
    fresh_label = g.labels[fresh]
    member_lists, member_at = _group_lists(fresh_label, g.involved[fresh], n_lab)

    # New groups: one component each, born at the group's first row (it survives every merge).
    comps_reg, history = graph._comps, graph._history
    new_groups = g.new_groups
    seq0 = row_seq[g.group_row[new_groups]].tolist()
    t0 = times[g.group_row[new_groups]].tolist()
    pids = list(map(_new_pid, seq0, g.name_code, g.name_value))
    uniqs: list[dict[int, int]] = [{} for _ in range(len(new_groups))]
    if g.inv_ns is not None:
        ns_unique = np.asarray(graph._ns_unique, dtype=bool)
        uq = fresh[ns_unique[g.inv_ns[fresh]] & ~np.isin(fresh_label, g.comp_label)]
        slot = np.searchsorted(new_groups, g.labels[uq]).tolist()
        for s, nsi, n in zip(slot, g.inv_ns[uq].tolist(), g.involved[uq].tolist(), strict=True):
            uniqs[s][nsi] = n
    members_new = [member_lists[i] for i in member_at[new_groups].tolist()]
    links_new = [link_lists[i] for i in link_at[new_groups].tolist()]
    new_comps = list(map(_Comp, pids, seq0, members_new, links_new, uniqs))
    comps_reg.update(zip(pids, new_comps, strict=True))
    history.extend(map(HistoryEntry, seq0, t0, repeat("created"), pids, repeat(None)))
    log.created.extend(pids)
    log._members.update(dict.fromkeys(pids, _PENDING))
    comp_of = np.empty(n_lab, dtype=object)
    comp_of[new_groups] = new_comps

    # Groups holding existing components: merge them as add_row would (the oldest id survives).
    n_comp = graph._n_comp
    by_label: dict[int, list[_Comp]] = {}
    for c, lab in zip(g.comps, g.comp_label.tolist(), strict=True):
        by_label.setdefault(lab, []).append(c)
    for lab, cs in by_label.items():
        row = int(g.group_row[lab])
        seq, t = int(row_seq[row]), int(times[row])
        mi, li = int(member_at[lab]), int(link_at[lab])
        fresh_members = member_lists[mi] if mi >= 0 else []
        survivor = min(cs, key=lambda c: (c.created, c.pid))
        container = max(cs, key=lambda c: len(c.members))
        for c in cs:
            if c is not survivor:
                del comps_reg[c.pid]
                log.merged[c.pid] = survivor.pid
                history.append(HistoryEntry(seq, t, "merged", c.pid, survivor.pid))
        container.pid, container.created = survivor.pid, survivor.created
        comps_reg[survivor.pid] = container
        for c in cs:
            if c is container:
                continue
            for m in c.members:
                n_comp[m] = container
            container.members.extend(c.members)
            container.links.extend(c.links)
        container.members.extend(fresh_members)
        if li >= 0:
            container.links.extend(link_lists[li])
        if g.inv_ns is not None:
            container.uniq = graph._uniq_of(container.members)
        comp_of[lab] = container
        if fresh_members or len(cs) > 1:
            log._members[container.pid] = _PENDING

    # Fresh nodes point at their component and take the time of the first row linking them;
    # nodes of the replayed groups stay outside until their rows are replayed.
    new_local = g.fresh_local[: n_after - n_before]
    new_label = g.labels[new_local]
    graph._n_comp[n_before:n_after] = comp_of[new_label].tolist()
    graph._n_first[n_before:n_after] = _as_array(
        np.where(g.is_fast[new_label], times[np.minimum(g.node_first[new_local], len(times) - 1)], -1)
    )
    n_first = graph._n_first
    for loc in g.fresh_local[n_after - n_before :].tolist():
        lab = int(g.labels[loc])
        if g.is_fast[lab]:
            n = int(g.involved[loc])
            n_comp[n] = comp_of[lab]
            n_first[n] = int(times[g.node_first[loc]])


def _group_lists(label: np.ndarray, items: np.ndarray, n_lab: int) -> tuple[list[list[int]], np.ndarray]:
    """``items`` split by ``label``: the lists (in item order within a label) and, per label,
    the index of its list or -1."""
    at = np.full(n_lab, -1, dtype=np.int64)
    if not len(label):
        return [], at
    o = np.argsort(label, kind="stable")
    ls = label[o]
    cut = np.flatnonzero(np.r_[True, ls[1:] != ls[:-1]])
    ends = np.r_[cut[1:], len(ls)]
    flat = items[o].tolist()
    lists = [flat[s:e] for s, e in zip(cut.tolist(), ends.tolist(), strict=True)]
    at[ls[cut]] = np.arange(len(cut))
    return lists, at


def _row_argmin(
    lex: np.ndarray,
    row_start: np.ndarray,
    k: np.ndarray,
    sel: np.ndarray,
    values: Callable[[np.ndarray], list[str]],
) -> np.ndarray:
    """For the link rows ``sel``: the entry (index into the rows' entries) with the smallest
    (namespace code, value), given each entry's namespace order ``lex``."""
    row_min = np.minimum.reduceat(lex, row_start)
    is_min = lex == np.repeat(row_min, k)
    n_min = np.add.reduceat(is_min.astype(np.int64), row_start)
    # the single smallest entry of each row, or its first when values must decide
    first_min = np.flatnonzero(is_min)
    first_of_row = first_min[np.searchsorted(first_min, row_start[sel])]
    out: np.ndarray = first_of_row.copy()
    tied = np.flatnonzero(n_min[sel] > 1)
    for t in tied.tolist():
        s = int(row_start[sel[t]])
        pos = s + np.flatnonzero(is_min[s : s + int(k[sel[t]])])
        vals = values(pos)
        out[t] = pos[min(range(len(vals)), key=vals.__getitem__)]
    return out


def _reject(
    rules: LinkingRules,
    codes: list[str],
    ns_loc: np.ndarray,
    unique_loc: np.ndarray,
    rank_loc: np.ndarray,
    order_loc: np.ndarray,
    row_of: np.ndarray,
    kept: np.ndarray,
    n_rows: int,
    strings_at: Callable[[np.ndarray], list[str]],
    rejected: dict[int, str],
) -> None:
    """Find the rows ``row_rejection`` rejects among the rows repeating a namespace (``kept``:
    their de-duplicated entries, in order) and record its reasons."""
    n_loc = len(codes)
    rk = row_of[kept]
    s = np.sort(rk * n_loc + ns_loc[kept])
    multi = np.unique(s[1:][s[1:] == s[:-1]])  # (row, namespace) with two or more values
    m_row, m_ns = multi // n_loc, multi % n_loc
    bad = np.zeros(n_rows, dtype=bool)
    bad[m_row[unique_loc[m_ns]]] = True
    if rules.priority:
        top = np.full(n_rows, int(order_loc.max()) + 1, dtype=np.int64)
        np.minimum.at(top, rk, order_loc[ns_loc[kept]])
        listed = rank_loc[m_ns] < len(rules.priority)
        bad[m_row[listed & (order_loc[m_ns] == top[m_row])]] = True
    rows = np.flatnonzero(bad)
    if not len(rows):
        return
    sel = kept[bad[rk]]
    vals = strings_at(sel)
    by_row: dict[int, list[Identity]] = {}
    for r, ns, v in zip(row_of[sel].tolist(), ns_loc[sel].tolist(), vals, strict=True):
        by_row.setdefault(r, []).append(Identity(codes[ns], v))
    for r, idents in by_row.items():
        reason = row_rejection(idents, rules)
        if reason is not None:
            rejected[r] = reason


def _intern(
    graph: IdentityGraph,
    ident: np.ndarray,
    ident_key: np.ndarray,
    n_loc: int,
    nsi_loc: np.ndarray,
    v_dict: pa.Array,
) -> np.ndarray:
    """Graph node of each entry of ``ident`` (identity codes), interning the new identities."""
    present = np.zeros(len(ident_key), dtype=bool)
    present[ident] = True
    u = np.flatnonzero(present)
    u_ns, u_v = ident_key[u] % n_loc, ident_key[u] // n_loc
    node_of = np.full(len(ident_key), -1, dtype=np.int64)
    n_ns, n_val = graph._n_ns, graph._n_val
    n_before = len(n_ns)
    for loc in np.flatnonzero(np.bincount(u_ns)).tolist():
        in_ns = u_ns == loc
        sel = u[in_ns]
        vals: list[str] = v_dict.take(pa.array(u_v[in_ns])).to_pylist()
        nsi = int(nsi_loc[loc])
        table = graph._intern[nsi]
        if table:
            found = list(map(table.get, vals))
            old = np.fromiter((f is not None for f in found), dtype=bool, count=len(found))
            node_of[sel[old]] = [f for f in found if f is not None]
            vals = [v for v, f in zip(vals, found, strict=True) if f is None]
            sel = sel[~old]
        first = len(n_ns)
        table.update(zip(vals, range(first, first + len(vals)), strict=True))
        _extend(n_ns, np.full(len(vals), nsi, dtype=np.int64))
        n_val.extend(vals)
        node_of[sel] = np.arange(first, first + len(vals))
    added = len(n_ns) - n_before
    _extend(graph._n_first, np.full(added, -1, dtype=np.int64))
    graph._n_comp.extend(repeat(None, added))
    nodes: np.ndarray = node_of[ident]
    return nodes


def _distinct(keys: np.ndarray, bound: int) -> np.ndarray:
    """Sorted distinct values of non-negative ``keys`` below ``bound``."""
    # a mask is linear and sequential; np.unique (sort or hash) is many times slower here
    if bound <= 8 * len(keys) + 4096:
        present = np.zeros(bound, dtype=bool)
        present[keys] = True
        return np.flatnonzero(present)
    return np.unique(keys)


def _counts(keys: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of non-negative ``keys`` below ``bound`` and how often each occurs."""
    if bound <= 8 * len(keys) + 4096:
        n = np.bincount(keys, minlength=bound)
        distinct = np.flatnonzero(n)
        return distinct, n[distinct]
    distinct, n = np.unique(keys, return_counts=True)
    return distinct, n


def _factorize(keys: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes for non-negative ``keys`` below ``space``: (code of each key, sorted distinct keys)."""
    if space <= 4 * len(keys) + 4096:
        present = np.zeros(space, dtype=bool)
        present[keys] = True
        distinct = np.flatnonzero(present)
        code = np.empty(space, dtype=np.int64)
        code[distinct] = np.arange(len(distinct))
        return code[keys], distinct
    distinct, inverse = np.unique(keys, return_inverse=True)
    return inverse.astype(np.int64), distinct


def _localizer(nodes: np.ndarray, n_graph: int) -> Callable[[np.ndarray], np.ndarray]:
    """Map graph node ids (all in the sorted ``nodes``) to 0..len(nodes)-1."""
    if n_graph <= 8 * len(nodes) + 4096:
        table = np.empty(n_graph, dtype=np.int64)
        table[nodes] = np.arange(len(nodes))
        return lambda x: table[x]
    return lambda x: np.searchsorted(nodes, x)


def _gather(values: array[int], idx: np.ndarray) -> np.ndarray:
    # the view is dropped at once: an array exporting its buffer cannot grow
    picked: np.ndarray = np.frombuffer(values, dtype=np.int64)[idx]
    return picked


def _as_array(values: np.ndarray) -> array[int]:
    return array("q", np.ascontiguousarray(values, dtype=np.int64).tobytes())


def _extend(column: array[int], values: np.ndarray) -> None:
    column.frombytes(np.ascontiguousarray(values, dtype=np.int64).tobytes())


def _strings(col: Strings, name: str) -> pa.Array:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not isinstance(arr, pa.Array):
        arr = pa.array(arr, type=pa.string())
    if arr.null_count:
        raise InvalidInput(f"The {name} column holds nulls.", path=name)
    return arr


def _row_times(ts: Sequence[Time] | np.ndarray, n_rows: int) -> np.ndarray:
    if isinstance(ts, np.ndarray):
        out = ts.astype(np.int64)
    else:
        out = np.fromiter(map(_ms, ts), dtype=np.int64, count=len(ts))
    if len(out) != n_rows:
        raise InvalidInput("There must be one time per row.", path="ts")
    return out


def _absorb(log: GraphChanges, other: GraphChanges) -> None:
    log.created.extend(other.created)
    log.merged.update(other.merged)
    log.split.update(other.split)
    log.deleted.extend(other.deleted)
    log.removed.extend(other.removed)
    log.refused_links.extend(other.refused_links)
    log._members.update(other._members)
