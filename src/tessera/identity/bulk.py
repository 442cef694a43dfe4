"""Vectorised resolution of a batch of rows, producing exactly what row-at-a-time would.

How: every row's identities are interned and their links collected into arrays; connected
components over those links plus the touched existing components (``scipy.sparse.csgraph``)
give each row's final group. A group that ends within the graph limit and holds at most one
identity of every unique namespace can never have triggered a rule on the way (every
intermediate state is a subset of it), so its links and component are written in bulk. Only the
remaining groups are replayed row by row through the engine, in row order with the rows' own
sequence numbers; groups are independent, so the result is identical to the incremental path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from tessera.identity.graph import GraphChanges, HistoryEntry, IdentityGraph, Time, _Comp, _ms, _new_pid
from tessera.model import Identity


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

    Args:
        graph: the engine to update.
        rows: each row's validated identities.
        ts: each row's time (epoch ms or datetime); default: the rows' sequence numbers.
        dataset: source dataset of the whole batch.
        batch: batch id.
        primaries: each row's schema primary identity (see ``add_row``).
        record: True when the rows are profile records.

    >>> g = IdentityGraph()
    >>> r = resolve_bulk(g, [[Identity("Email", "a"), Identity("ECID", "1")], [Identity("ECID", "1"), Identity("Phone", "9")]])
    >>> [len(m) for m in g.components().values()]
    [3]
    """
    n_rows = len(rows)
    base = graph._seq
    times = [base + i + 1 for i in range(n_rows)] if ts is None else [_ms(t) for t in ts]
    log = GraphChanges(graph)
    primary: list[Identity | None] = [None] * n_rows
    rejected: list[str | None] = [None] * n_rows
    row_nodes: list[list[int] | None] = [None] * n_rows
    ns_idx, ns_graph, node_of = graph._ns_idx, graph._ns_graph, graph._node
    pa: list[int] = []
    pb: list[int] = []
    prow: list[int] = []
    assess, intern = graph._assess, graph._intern
    for i, idents in enumerate(rows):
        if not idents:
            continue
        idents, prim, reason = assess(idents, None if primaries is None else primaries[i], record)
        primary[i], rejected[i] = prim, reason
        if reason is not None:
            graph._refused["rows rejected by linking rules"] += 1
            continue
        if len(idents) < 2:
            continue
        nodes: list[int] = []
        for ident in idents:
            nsi = ns_idx.get(ident.namespace)
            if nsi is None:
                nsi = graph._ns(ident.namespace)
            if ns_graph[nsi]:
                node = intern[nsi].get(ident.id)
                nodes.append(node_of(nsi, ident.id) if node is None else node)
        if len(nodes) < 2:
            continue
        row_nodes[i] = nodes
        k = len(nodes)
        for x in range(k - 1):
            a = nodes[x]
            for y in range(x + 1, k):
                pa.append(a)
                pb.append(nodes[y])
                prow.append(i)
    graph._seq = base + n_rows
    if not pa:
        return BulkResult(primary, rejected, log, 0)

    n_nodes = len(graph._n_ns)
    a_arr = np.asarray(pa, dtype=np.int64)
    b_arr = np.asarray(pb, dtype=np.int64)
    row_arr = np.asarray(prow, dtype=np.int64)
    lo, hi = np.minimum(a_arr, b_arr), np.maximum(a_arr, b_arr)

    # Existing components touched by the batch join the connected-components input as stars.
    n_comp = graph._n_comp
    # a mask over all nodes is much faster than np.unique (hash or sort) for marking ints
    seen_mask = np.zeros(n_nodes, dtype=bool)
    seen_mask[lo] = True
    seen_mask[hi] = True
    batch_nodes = np.flatnonzero(seen_mask)
    touched: dict[int, _Comp] = {}
    for node in batch_nodes.tolist():
        c = n_comp[node]
        if c is not None and id(c) not in touched:
            touched[id(c)] = c
    ea: list[int] = []
    eb: list[int] = []
    for c in touched.values():
        head = c.members[0]
        ea.extend([head] * (len(c.members) - 1))
        eb.extend(c.members[1:])
    src = np.concatenate([lo, np.asarray(ea, dtype=np.int64)])
    dst = np.concatenate([hi, np.asarray(eb, dtype=np.int64)])
    adj = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n_nodes, n_nodes)).tocsr()
    _, labels = connected_components(adj, directed=True, connection="weak")

    # Which groups need the rules: over the limit, or two identities of one unique namespace.
    seen_mask[np.asarray(eb, dtype=np.int64)] = True
    seen_mask[np.asarray(ea, dtype=np.int64)] = True
    involved = np.flatnonzero(seen_mask)
    inv_labels = labels[involved]
    need: set[int] = set()
    limit = graph.rules.limit
    if limit is not None:
        sizes = np.bincount(inv_labels)
        need.update(np.nonzero(sizes > limit)[0].tolist())
    if graph.rules.unique:
        ns_arr = np.asarray(graph._n_ns, dtype=np.int64)[involved]
        uniq_mask = np.asarray(graph._ns_unique, dtype=bool)[ns_arr]
        if uniq_mask.any():
            pairs = inv_labels[uniq_mask] * (len(graph._ns_code) + 1) + ns_arr[uniq_mask]
            vals, counts = np.unique(pairs, return_counts=True)
            need.update((vals[counts > 1] // (len(graph._ns_code) + 1)).tolist())

    row_label = labels[a_arr]  # every pair of a row lies in the row's group
    if need:
        need_arr = np.fromiter(need, dtype=np.int64)
        need_mask = np.zeros(int(labels.max()) + 1, dtype=bool)
        need_mask[need_arr] = True
        pair_fast = ~need_mask[row_label]
        replay_mask = np.zeros(n_rows, dtype=bool)
        replay_mask[row_arr[~pair_fast]] = True
        replay_rows = np.flatnonzero(replay_mask).tolist()
    else:
        pair_fast = np.ones(len(row_arr), dtype=bool)
        replay_rows = []

    for i in replay_rows:
        nodes_i = row_nodes[i]
        assert nodes_i is not None
        changes = graph._link_nodes(nodes_i, base + i + 1, times[i], dataset, batch)
        if changes is not None:
            _absorb(log, changes)

    if pair_fast.any():
        _apply_fast(
            graph,
            lo[pair_fast],
            hi[pair_fast],
            row_arr[pair_fast],
            labels,
            row_nodes,
            times,
            base,
            dataset,
            batch,
            log,
        )
    graph._snapshot(log)
    return BulkResult(primary, rejected, log, len(replay_rows))


def _absorb(log: GraphChanges, other: GraphChanges) -> None:
    log.created.extend(other.created)
    log.merged.update(other.merged)
    log.split.update(other.split)
    log.deleted.extend(other.deleted)
    log.removed.extend(other.removed)
    log.refused_links.extend(other.refused_links)
    log._members.update(other._members)


def _runs(sorted_values: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` of each run of equal values in a sorted array."""
    if len(sorted_values) == 0:
        return []
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(sorted_values)]
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _apply_fast(
    graph: IdentityGraph,
    lo: np.ndarray,
    hi: np.ndarray,
    rows: np.ndarray,
    labels: np.ndarray,
    row_nodes: list[list[int] | None],
    times: list[int],
    base: int,
    dataset: str | None,
    batch: str | None,
    log: GraphChanges,
) -> None:
    """Write the links and components of groups that need no rule, in bulk."""
    t_arr = np.asarray(times, dtype=np.int64)
    keys = (lo << 32) | hi
    # pairs arrive in row order, so a stable sort by key keeps each key's rows in order
    order = np.argsort(keys, kind="stable")
    keys_s, rows_s = keys[order], rows[order]
    starts = np.flatnonzero(np.r_[True, keys_s[1:] != keys_s[:-1]])
    ends = np.r_[starts[1:], len(keys_s)] - 1
    ukeys = keys_s[starts]
    first_row = rows_s[starts]
    last_row = rows_s[ends]
    # incremental keeps last_seen = the greatest time that asserted the link
    max_t = np.maximum.reduceat(t_arr[rows_s], starts)
    first_t = t_arr[first_row]

    lk = graph._lk
    ukeys_l = ukeys.tolist()
    if graph._j_links is not None:
        graph._j_links.update(ukeys_l)
    existing = [lk.get(k) for k in ukeys_l]
    is_new = np.fromiter((e is None for e in existing), dtype=bool, count=len(existing))
    # refresh existing links
    llast, lseq, lds, lbatch = graph._llast, graph._lseq, graph._lds, graph._lbatch
    for j in np.flatnonzero(~is_new).tolist():
        lid = existing[j]
        assert lid is not None
        m = int(max_t[j])
        if m > llast[lid]:
            llast[lid] = m
        lseq[lid] = base + int(last_row[j]) + 1
        lds[lid] = dataset
        lbatch[lid] = batch
    # create new links
    new_idx = np.flatnonzero(is_new)
    start_id = len(graph._la)
    k_new = len(new_idx)
    nk = ukeys[new_idx]
    lk.update(zip(nk.tolist(), range(start_id, start_id + k_new), strict=True))
    graph._la.extend((nk >> 32).tolist())
    graph._lb.extend((nk & 0xFFFFFFFF).tolist())
    graph._lfirst.extend(first_t[new_idx].tolist())
    graph._llast.extend(np.maximum(first_t[new_idx], max_t[new_idx]).tolist())
    graph._lseq.extend((base + last_row[new_idx] + 1).tolist())
    graph._lds.extend([dataset] * k_new)
    graph._lbatch.extend([batch] * k_new)

    # group new links and nodes by final component label
    new_lids = np.arange(start_id, start_id + k_new, dtype=np.int64)
    link_label = labels[nk >> 32]
    lorder = np.argsort(link_label, kind="stable")
    ll_sorted = link_label[lorder]
    links_by_label: dict[int, list[int]] = {}
    lids_sorted = new_lids[lorder].tolist()
    ll_list = ll_sorted.tolist()
    for s, e in _runs(ll_sorted):
        links_by_label[ll_list[s]] = lids_sorted[s:e]

    # nodes: first row (time) that linked each node in this batch
    n_rows = len(times)
    first_of_node = np.full(len(graph._n_ns), n_rows, dtype=np.int64)
    np.minimum.at(first_of_node, lo, rows)
    np.minimum.at(first_of_node, hi, rows)
    nodes_u = np.flatnonzero(first_of_node < n_rows)
    node_first_row = first_of_node[nodes_u]
    n_comp, n_first = graph._n_comp, graph._n_first
    nodes_l = nodes_u.tolist()
    fresh_mask = np.fromiter((n_comp[n] is None for n in nodes_l), dtype=bool, count=len(nodes_l))
    fresh_nodes = nodes_u[fresh_mask]
    fresh_first = t_arr[node_first_row[fresh_mask]]
    fresh_label = labels[fresh_nodes]
    forder = np.argsort(fresh_label, kind="stable")
    fl_sorted = fresh_label[forder]
    fresh_by_label: dict[int, tuple[list[int], list[int]]] = {}
    fn_sorted, ff_sorted, fl_list = (
        fresh_nodes[forder].tolist(),
        fresh_first[forder].tolist(),
        fl_sorted.tolist(),
    )
    for s, e in _runs(fl_sorted):
        fresh_by_label[fl_list[s]] = (fn_sorted[s:e], ff_sorted[s:e])

    # existing components per label
    comps_by_label: dict[int, list[_Comp]] = {}
    seen: set[int] = set()
    for n in nodes_l:
        c = n_comp[n]
        if c is not None and id(c) not in seen:
            seen.add(id(c))
            comps_by_label.setdefault(int(labels[n]), []).append(c)
    # first row of each label (creates the component when no existing component is involved)
    first_of_label = np.full(int(labels.max()) + 1, n_rows, dtype=np.int64)
    np.minimum.at(first_of_label, labels[lo], rows)
    used = np.flatnonzero(first_of_label < n_rows)
    first_row_of = dict(zip(used.tolist(), first_of_label[used].tolist(), strict=True))

    code, n_ns, n_val = graph._ns_code, graph._n_ns, graph._n_val
    comps_reg, history = graph._comps, graph._history
    uniq_on = bool(graph.rules.unique)
    members_log, created_log = log._members, log.created
    for label, r0 in first_row_of.items():
        fresh, firsts = fresh_by_label.get(label, ([], []))
        new_links = links_by_label.get(label, [])
        seq0 = base + r0 + 1
        comps = comps_by_label.get(label)
        if comps is None:
            # a brand-new graph: the component born at the group's first row survives every merge
            nodes0 = row_nodes[r0]
            assert nodes0 is not None
            best = nodes0[0]
            best_key = (code[n_ns[best]], n_val[best])
            for n in nodes0[1:]:
                key = (code[n_ns[n]], n_val[n])
                if key < best_key:
                    best, best_key = n, key
            pid = _new_pid(seq0, best_key[0], best_key[1])
            container = _Comp(pid, seq0, fresh, new_links, {})
            comps_reg[pid] = container
            created_log.append(pid)
            history.append(HistoryEntry(seq0, times[r0], "created", pid, None))
            for f, t in zip(fresh, firsts, strict=True):
                n_comp[f] = container
                n_first[f] = t
            if uniq_on:
                container.uniq = graph._uniq_of(fresh)
            members_log[pid] = ()
            continue
        survivor = min(comps, key=lambda c: (c.created, c.pid))
        container = max(comps, key=lambda c: len(c.members))
        for c in comps:
            if c is not survivor:
                del comps_reg[c.pid]
                log.merged[c.pid] = survivor.pid
                history.append(HistoryEntry(seq0, times[r0], "merged", c.pid, survivor.pid))
        container.pid, container.created = survivor.pid, survivor.created
        comps_reg[survivor.pid] = container
        for c in comps:
            if c is container:
                continue
            for m in c.members:
                n_comp[m] = container
            container.members.extend(c.members)
            container.links.extend(c.links)
        for f, t in zip(fresh, firsts, strict=True):
            n_comp[f] = container
            n_first[f] = t
        container.members.extend(fresh)
        container.links.extend(new_links)
        container.uniq = graph._uniq_of(container.members)
        if fresh or len(comps) > 1:
            members_log[container.pid] = ()
