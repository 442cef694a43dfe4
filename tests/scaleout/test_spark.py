"""Spark connected components against scipy on random graphs (``pytest -m spark``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_cc

from tessera.scaleout import spark as tspark

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def session() -> Iterator[Any]:
    s = tspark.spark_session("local[2]")
    yield s
    s.stop()


def _expected(src: np.ndarray, dst: np.ndarray) -> dict[int, int]:
    """node → min node id of its component, from scipy."""
    nodes, inverse = np.unique(np.concatenate([src, dst]), return_inverse=True)
    n = len(nodes)
    a, b = inverse[: len(src)], inverse[len(src) :]
    _, labels = scipy_cc(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False)
    smallest = np.full(labels.max() + 1, np.iinfo(np.int64).max)
    np.minimum.at(smallest, labels, nodes)
    return {int(node): int(smallest[label]) for node, label in zip(nodes, labels, strict=True)}


@pytest.mark.parametrize(("nodes", "edges", "seed"), [(60, 40, 1), (400, 380, 2), (3000, 2500, 3)])
def test_components_equal_scipy(session: Any, nodes: int, edges: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Sparse ids (not 0..n-1) and a long chain make the graph harder than a random one.
    ids = rng.choice(10**12, size=nodes, replace=False).astype(np.int64)
    src = ids[rng.integers(0, nodes, edges)]
    dst = ids[rng.integers(0, nodes, edges)]
    chain = np.sort(ids[: nodes // 4])
    src = np.concatenate([src, chain[:-1], ids[-5:]])
    dst = np.concatenate([dst, chain[1:], ids[-5:]])  # self-links: isolated nodes survive
    links = session.createDataFrame(list(zip(src.tolist(), dst.tolist(), strict=True)), "src long, dst long")
    got = {r["node"]: r["component"] for r in tspark.connected_components(links).collect()}
    assert got == _expected(src, dst)


def test_batch_segmentation_waits_for_the_pql_compiler(session: Any) -> None:
    with pytest.raises(NotImplementedError, match="tessera.pql"):
        tspark.segment_batch(session, "person.name.firstName = 'A'", profiles_path="p", events_path="e")
