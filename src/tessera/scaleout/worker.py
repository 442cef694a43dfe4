"""A stream worker: consume, apply idempotently, then commit (the at-least-once loop).

``python -m tessera.scaleout.worker --bootstrap HOST:PORT --topic T --group G --worker I --workers N
--store redis://... | sqlite:PATH --handler package.module:function`` runs one worker until SIGTERM.
The handler turns one :class:`~tessera.scaleout.stream.StreamMessage` into a ``WriteBatch``.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tessera.scaleout.stream import EventConsumer, StreamMessage, apply_idempotently, consume, partitions_for
from tessera.store.base import PointStore, WriteBatch

Handler = Callable[[StreamMessage], WriteBatch]


@dataclass
class WorkerStats:
    """What a worker did."""

    applied: int = 0
    duplicates: int = 0
    batches: int = 0


def run_worker(
    consumer: EventConsumer,
    store: PointStore,
    handle: Handler,
    stop: threading.Event,
    *,
    max_batch: int = 200,
    idle_exit_s: float | None = None,
    throttle_s: float = 0.0,
) -> WorkerStats:
    """Poll, apply idempotently, commit; until ``stop`` is set (or idle for ``idle_exit_s``).

    ``throttle_s`` pauses after each batch (demos and crash tests slow a worker down with it).
    """
    stats = WorkerStats()

    def apply(messages: list[StreamMessage]) -> None:
        applied, skipped = apply_idempotently(store, messages, handle)
        stats.applied += applied
        stats.duplicates += skipped
        stats.batches += 1

    consume(consumer, stop, apply, max_batch=max_batch, idle_exit_s=idle_exit_s, throttle_s=throttle_s)
    return stats


def record_message(message: StreamMessage) -> WriteBatch:
    """Reference handler: store the message value under its id in table ``messages``."""
    return WriteBatch().put("messages", message.id, message.value)


def open_store(spec: str, *, namespace: str = "tessera") -> PointStore:
    """A store from ``redis://...`` / ``redis+cluster://...`` (keys under ``namespace``) / ``sqlite:PATH``."""
    if spec.startswith("sqlite:"):
        from tessera.store.sqlite import SqliteStore

        return SqliteStore(spec[len("sqlite:") :])
    from tessera.store.redis import RedisStore, RedisStoreConfig

    cluster = spec.startswith("redis+cluster://")
    url = spec.replace("redis+cluster://", "redis://", 1)
    return RedisStore.from_config(RedisStoreConfig(url=url, cluster=cluster, namespace=namespace))


def _load(path: str) -> Handler:
    module, _, name = path.partition(":")
    fn: Any = getattr(importlib.import_module(module), name)
    return fn  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", default="tessera-workers")
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--store", required=True)
    parser.add_argument("--namespace", default="tessera", help="Redis key namespace (one per sandbox)")
    parser.add_argument("--handler", default="tessera.scaleout.worker:record_message")
    parser.add_argument("--max-batch", type=int, default=200)
    parser.add_argument("--idle-exit", type=float, default=None)
    parser.add_argument("--throttle", type=float, default=0.0, help="seconds to pause after each batch")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    store = open_store(args.store, namespace=args.namespace)
    consumer = EventConsumer(
        args.bootstrap, args.topic, args.group, partitions_for(args.worker, args.workers, args.partitions)
    )
    print("ready", flush=True)  # assigned and positioned: launchers wait for this line
    try:
        stats = run_worker(
            consumer,
            store,
            _load(args.handler),
            stop,
            max_batch=args.max_batch,
            idle_exit_s=args.idle_exit,
            throttle_s=args.throttle,
        )
        print(f"applied={stats.applied} duplicates={stats.duplicates} batches={stats.batches}", flush=True)
    finally:
        consumer.close()
        store.close()


if __name__ == "__main__":
    main()
