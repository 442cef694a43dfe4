"""Prometheus metrics of the process, served at ``GET /metrics``.

Two kinds:

* event metrics (counters and histograms) updated where things happen: records ingested and
  rejected, segment job durations, HTTP request latencies, graph-health alerts. They live in
  :data:`REGISTRY`, one per process, so every code path (API, CLI, library) counts into it;
* state metrics read at scrape time from the open sandboxes of one platform
  (:class:`PlatformCollector`): the identity-graph size distribution and the destination lag
  (pending deliveries, age of the oldest). Reading them at scrape time keeps the hot paths
  free of bookkeeping; a scrape walks each open sandbox's in-memory graph once.

Label values are sandbox names, dataset ids, route templates (never raw paths, which would
make one series per profile id) and fixed codes, so the number of series stays bounded.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from tessera.identity.graph import GraphStats
    from tessera.platform import Platform, Sandbox

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REGISTRY = CollectorRegistry(auto_describe=True)

INGESTED = Counter(
    "tessera_ingested_records",
    "Records and events stored, by sandbox, dataset and kind (batch or streaming).",
    ["sandbox", "dataset", "kind"],
    registry=REGISTRY,
)
REJECTED = Counter(
    "tessera_rejected_records",
    "Records and events refused, by sandbox, dataset, kind and reason code.",
    ["sandbox", "dataset", "kind", "reason"],
    registry=REGISTRY,
)
SEGMENT_JOB_SECONDS = Histogram(
    "tessera_segment_job_seconds",
    "Duration of batch segment jobs, by sandbox and final status.",
    ["sandbox", "status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "tessera_http_request_seconds",
    "HTTP request latency, by method, route template and status code.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
GRAPH_ALERTS = Counter(
    "tessera_graph_alerts",
    "Graph-health alerts raised, by sandbox and kind (graph_size, junk_identity).",
    ["sandbox", "kind"],
    registry=REGISTRY,
)

GRAPH_SIZE_BUCKETS = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500)
"""Upper bounds of the identity-graph size distribution (identities per graph)."""


def record_chunk(
    sandbox: str, dataset: str, batch_id: str | None, accepted: int, rejected: Iterable[Any]
) -> None:
    """Count one processed chunk of rows (rejections carry a ``code``)."""
    kind = "streaming" if batch_id is None else "batch"
    if accepted:
        INGESTED.labels(sandbox, dataset, kind).inc(accepted)
    for rej in rejected:
        REJECTED.labels(sandbox, dataset, kind, str(getattr(rej, "code", "UNKNOWN"))).inc()


def record_segment_job(sandbox: str, status: str, seconds: float) -> None:
    SEGMENT_JOB_SECONDS.labels(sandbox, status).observe(seconds)


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_SECONDS.labels(method, route, str(status)).observe(seconds)


def record_alert(sandbox: str, kind: str) -> None:
    GRAPH_ALERTS.labels(sandbox, kind).inc()


def graph_size_buckets(histogram: dict[int, int]) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` buckets of a ``{size: graphs}`` histogram.

    >>> graph_size_buckets({2: 3, 7: 1})[:5]
    [('1', 0), ('2', 3), ('3', 3), ('5', 3), ('10', 4)]
    """
    out: list[tuple[str, float]] = []
    for bound in GRAPH_SIZE_BUCKETS:
        out.append((str(bound), sum(n for size, n in histogram.items() if size <= bound)))
    out.append(("+Inf", sum(histogram.values())))
    return out


def _oldest_age(sandbox: Sandbox, dest_id: str, now: float) -> float:
    from tessera.activation.destinations import OUTBOX
    from tessera.store import key

    for _, raw in sandbox.store.scan(OUTBOX, key(dest_id, ""), limit=1):
        stamp = orjson.loads(raw).get("lastQualificationTime")
        if stamp:
            return max(0.0, now - datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp())
    return 0.0


def _graph_stats(sandbox: Sandbox) -> GraphStats:
    """Graph statistics without stopping ingestion: the scan runs unlocked and is retried when a
    concurrent write changed the graph under it; the third try holds the write lock."""
    for _ in range(2):
        try:
            return sandbox.identity.graph.stats(top=1)
        except RuntimeError:  # "dictionary changed size during iteration"
            continue
    with sandbox.write_lock:
        return sandbox.identity.graph.stats(top=1)


class PlatformCollector(Collector):
    """State metrics of one platform's open sandboxes, computed at scrape time."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def collect(self) -> Iterator[Metric]:
        sizes = GaugeHistogramMetricFamily(
            "tessera_identity_graph_size",
            "Identity graphs by number of identities (the graph-size distribution).",
            labels=["sandbox"],
        )
        largest = GaugeMetricFamily(
            "tessera_identity_graph_largest", "Identities in the largest identity graph.", labels=["sandbox"]
        )
        pending = GaugeMetricFamily(
            "tessera_destination_pending",
            "Membership changes waiting to be delivered to a webhook destination.",
            labels=["sandbox", "destination"],
        )
        oldest = GaugeMetricFamily(
            "tessera_destination_oldest_pending_seconds",
            "Age of the oldest undelivered change of a webhook destination (0 when none is waiting).",
            labels=["sandbox", "destination"],
        )
        now = time.time()
        for sandbox in self.platform.opened():
            stats = _graph_stats(sandbox)
            buckets = graph_size_buckets(stats.size_histogram)
            total = sum(size * n for size, n in stats.size_histogram.items())
            sizes.add_metric([sandbox.name], buckets, total)
            largest.add_metric([sandbox.name], stats.largest[0][1] if stats.largest else 0)
            activation = getattr(sandbox.segments, "activation", None)
            destinations = getattr(activation, "destinations", None)
            if destinations is None:
                continue
            for dest in destinations.list():
                if dest.get("type") != "webhook":
                    continue
                pending.add_metric([sandbox.name, dest["id"]], destinations.pending(dest["id"]))
                oldest.add_metric([sandbox.name, dest["id"]], _oldest_age(sandbox, dest["id"], now))
        yield sizes
        yield largest
        yield pending
        yield oldest


def render(platform: Platform) -> bytes:
    """The Prometheus text exposition of the process metrics and ``platform``'s state metrics."""
    state = CollectorRegistry(auto_describe=False)
    state.register(PlatformCollector(platform))
    return generate_latest(REGISTRY) + generate_latest(state)
