"""``tessera worker``: consume the ingest topic and apply it through the platform's streaming flow.

Each polled batch is grouped by sandbox; for each sandbox the worker takes the sandbox's write
lock (:mod:`tessera.scaleout.coordination`: a Redis lock, then a re-open of the in-memory state
if another process wrote since), drops messages whose id is already in :data:`APPLIED_TABLE`, and
runs the rest through :func:`tessera.flow.process_chunk` one dataset at a time, exactly as the
embedded ``/collection`` route does: validation, identity stitching with the linking rules,
profile fragments and events, merged profiles, streaming segments. The ids of the chunk's messages
(and the diagnostics of refused ones) are staged into the same atomic commit as the chunk's
effects, so a message is applied exactly once however often it is delivered. Offsets are
committed to the broker only after every chunk of the batch is committed to the store.

Each applied record notes the write epoch its chunk committed as: the epochs put every chunk of
every worker in one serial order (the order the per-sandbox lock imposed), which
:func:`applied_order` reads back, for audits and for the equivalence test against an embedded run.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tessera.catalog.datasets import record_stream_error
from tessera.errors import NotFound
from tessera.flow import ChunkResult, process_chunk
from tessera.scaleout.coordination import SandboxCoordinator
from tessera.scaleout.distributed import DistributedPlatform
from tessera.scaleout.stream import EventConsumer, StreamMessage, consume, ensure_topic, partitions_for
from tessera.settings import Settings
from tessera.store.base import PointStore, WriteBatch
from tessera.store.staged import StagedStore

log = logging.getLogger("tessera.scaleout")

APPLIED_TABLE = "stream_applied"
"""Message id → ``{"epoch", "pos", "at"}``: applied messages, in the serial order of commits."""


@dataclass
class PlatformWorkerStats:
    """What a worker did."""

    applied: int = 0
    duplicates: int = 0
    undecodable: int = 0
    batches: int = 0


def _decode(message: StreamMessage) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(message.value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("datasetId"), str) or "record" not in doc:
        return None
    return doc


def apply_batch(platform: DistributedPlatform, messages: Sequence[StreamMessage]) -> PlatformWorkerStats:
    """Apply polled messages through the streaming flow, each exactly once (see the module doc)."""
    stats = PlatformWorkerStats()
    by_sandbox: dict[str, list[tuple[StreamMessage, dict[str, Any]]]] = {}
    for m in messages:
        doc = _decode(m)
        if doc is None:  # not ours: nothing to apply, and re-reading it would not help
            log.warning("skipping undecodable message %s at %s/%s/%s", m.id, m.topic, m.partition, m.offset)
            stats.undecodable += 1
            continue
        by_sandbox.setdefault(str(doc.get("sandbox") or "prod"), []).append((m, doc))
    for name, items in by_sandbox.items():
        sandbox = platform.sandbox(name)
        coordinator = platform.coordinators[name]
        with coordinator:
            seen = sandbox.store.get_many(APPLIED_TABLE, [m.id for m, _ in items])
            by_dataset: dict[str, list[tuple[StreamMessage, dict[str, Any]]]] = {}
            taken: set[str] = set()
            for m, doc in items:
                if m.id in seen or m.id in taken:
                    stats.duplicates += 1
                    continue
                taken.add(m.id)
                by_dataset.setdefault(doc["datasetId"], []).append((m, doc))
            for ds_id, chunk in by_dataset.items():
                _apply_chunk(sandbox, coordinator, ds_id, chunk)
                stats.applied += len(chunk)
    return stats


def _applied_batch(
    store: PointStore, coordinator: SandboxCoordinator, chunk: Sequence[tuple[StreamMessage, dict[str, Any]]]
) -> None:
    epoch = coordinator.epoch[0] + 1  # the epoch this commit stores (we hold the lock)
    batch = WriteBatch()
    for pos, (m, _) in enumerate(chunk):
        at = f"{m.topic}/{m.partition}/{m.offset}"
        batch.put_json(APPLIED_TABLE, m.id, {"epoch": epoch, "pos": pos, "at": at})
    store.write(batch)


def _apply_chunk(
    sandbox: Any,
    coordinator: SandboxCoordinator,
    ds_id: str,
    chunk: Sequence[tuple[StreamMessage, dict[str, Any]]],
) -> ChunkResult | None:
    try:
        dataset = sandbox.datasets.get(ds_id)
    except NotFound as err:  # deleted since it was published: record why, never retry forever
        with coordinator:
            _applied_batch(sandbox.store, coordinator, chunk)
        for m, _ in chunk:
            log.warning("message %s: %s", m.id, err.message)
        return None

    def stage_applied(staged: StagedStore, result: ChunkResult) -> None:
        _applied_batch(staged, coordinator, chunk)
        for rej in result.rejected:
            record_stream_error(staged, ds_id, {**rej.to_json(), "messageId": chunk[rej.index][0].id})

    rows = [(pos, doc["record"]) for pos, (_, doc) in enumerate(chunk)]
    return process_chunk(sandbox, dataset, rows, batch_id=None, before_commit=stage_applied)


def applied_order(store: PointStore) -> list[tuple[int, int, str]]:
    """Every applied message as ``(epoch, position, message id)``, in the serial order of commits."""
    out = []
    for msg_id, raw in store.scan(APPLIED_TABLE):
        doc = orjson.loads(raw)
        out.append((int(doc["epoch"]), int(doc["pos"]), msg_id))
    return sorted(out)


def run_platform_worker(
    platform: DistributedPlatform,
    consumer: EventConsumer,
    stop: threading.Event,
    *,
    max_batch: int = 200,
    idle_exit_s: float | None = None,
    throttle_s: float = 0.0,
    commit_delay_s: float = 0.0,
) -> PlatformWorkerStats:
    """Poll, apply through the platform flow, commit offsets; until ``stop`` (or idle ``idle_exit_s``).

    ``throttle_s`` pauses after each batch; ``commit_delay_s`` pauses between the store commit and
    the offset commit (failure drills: a crash in that window makes the broker redeliver).
    """
    total = PlatformWorkerStats()

    def apply(messages: list[StreamMessage]) -> None:
        stats = apply_batch(platform, messages)
        if commit_delay_s:
            print(f"stored batch {total.batches + 1}; offsets in {commit_delay_s} s", flush=True)
            time.sleep(commit_delay_s)
        total.applied += stats.applied
        total.duplicates += stats.duplicates
        total.undecodable += stats.undecodable
        total.batches += 1

    consume(consumer, stop, apply, max_batch=max_batch, idle_exit_s=idle_exit_s, throttle_s=throttle_s)
    return total


def serve_worker(
    settings: Settings,
    *,
    worker: int = 0,
    workers: int = 1,
    max_batch: int = 200,
    idle_exit_s: float | None = None,
    throttle_s: float = 0.0,
    commit_delay_s: float = 0.0,
    timers: bool = True,
) -> PlatformWorkerStats:
    """Run worker ``worker`` of ``workers`` until SIGTERM/SIGINT; prints ``ready`` once consuming.

    Worker ``i`` reads partitions ``p`` with ``p % workers == i`` (a static split; see
    :mod:`tessera.scaleout.stream`). A replacement started with the same index resumes from the
    group's committed offsets. With ``timers`` the worker also takes part in running the
    sandboxes' timers (windows, schedules, webhook deliveries): every round is run by whichever
    process holds the sandbox's timer lease, so any number of workers run each round once.
    """
    if not settings.kafka_bootstrap:
        from tessera.errors import InvalidInput

        raise InvalidInput("tessera worker needs kafka_bootstrap in the settings", path="kafka_bootstrap")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    platform = DistributedPlatform(settings, role="worker")
    if timers:
        platform.start_background()
    ensure_topic(settings.kafka_bootstrap, settings.stream_topic, settings.stream_partitions)
    consumer = EventConsumer(
        settings.kafka_bootstrap,
        settings.stream_topic,
        settings.stream_group,
        partitions_for(worker, workers, settings.stream_partitions),
    )
    print("ready", flush=True)  # assigned and positioned: launchers wait for this line
    try:
        stats = run_platform_worker(
            platform,
            consumer,
            stop,
            max_batch=max_batch,
            idle_exit_s=idle_exit_s,
            throttle_s=throttle_s,
            commit_delay_s=commit_delay_s,
        )
        refreshes = sum(c.refreshes for c in platform.coordinators.values())
        catch_ups = sum(c.catch_ups for c in platform.coordinators.values())
        rounds = sum(c.timer_rounds for c in platform.coordinators.values())
        print(
            f"applied={stats.applied} duplicates={stats.duplicates} batches={stats.batches} "
            f"refreshes={refreshes} catch_ups={catch_ups} timer_rounds={rounds}",
            flush=True,
        )
        return stats
    finally:
        consumer.close()
        platform.close()
