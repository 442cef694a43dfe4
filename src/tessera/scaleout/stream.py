"""The event stream between ingestion API processes and workers, over the Kafka protocol.

Delivery contract:

* :meth:`EventPublisher.publish_many` returns only when the broker has acknowledged every message
  (``acks=all``, idempotent producer), so an API process answers an HTTP request only after its
  messages are safe in the topic. Any message the broker refuses raises :class:`ServiceError` and
  the request must fail (the client retries; the message id makes the retry harmless).
* Every message carries an id (header ``tessera-id``; a fresh UUID when the caller gives none).
* :class:`EventConsumer` delivers **at least once**: it reads its partitions from the group's
  committed offsets and the caller commits only after the effects of a batch are durable. A worker
  that dies re-delivers everything after its last commit to the next consumer of those partitions.
* :func:`apply_idempotently` makes re-delivery harmless: the effects of a message and the record
  "message id seen" go into the point store in one atomic ``write``, and messages whose id is
  already recorded are skipped. Effects are thereby applied exactly once.

Consumers use ``assign()`` with a static partition split (:func:`partitions_for`) instead of the
Kafka group protocol: the broker used in tests takes about 23 s to finish a group join
(``spec/deps.md`` §5), and a static split makes "worker i of n owns partitions p with p % n == i"
explicit. Offsets are still stored in the broker under the consumer group id.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from tessera.scaleout.errors import MissingExtra, ServiceError
from tessera.store.base import PointStore, WriteBatch

INSTALL_HINT = 'pip install "tessera-cdp[distributed]"'
ID_HEADER = "tessera-id"
SEEN_TABLE = "stream_seen"
"""Point-store table recording processed message ids (value: ``topic/partition/offset``)."""


def _kafka() -> Any:
    try:
        import confluent_kafka
    except ImportError as exc:
        raise MissingExtra(f"the event stream needs confluent-kafka: {INSTALL_HINT}") from exc
    return confluent_kafka


class StreamConfig(BaseModel):
    """Settings of the event stream (``stream: {type: kafka, ...}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["kafka"] = "kafka"
    bootstrap_servers: str = "127.0.0.1:9092"
    """Kafka ``bootstrap.servers``: comma-separated ``host:port`` list."""
    topic: str = "tessera-ingest"
    """Topic the API publishes accepted messages to."""
    partitions: int = 8
    """Partitions of the topic: the most workers that can share the load."""
    group: str = "tessera-workers"
    """Consumer group under which workers commit offsets."""
    client: dict[str, str] = {}
    """Extra librdkafka settings (``security.protocol``, ``sasl.*``, ...)."""


@dataclass(frozen=True)
class StreamMessage:
    """One message as a consumer sees it."""

    id: str
    """Idempotency key: the publisher's message id."""
    key: bytes | None
    value: bytes
    topic: str
    partition: int
    offset: int


def ensure_topic(bootstrap: str, topic: str, partitions: int, *, timeout: float = 10.0) -> None:
    """Create ``topic`` with ``partitions`` partitions unless it exists.

    Raises:
        ServiceError: the broker refused or did not answer.
    """
    ck = _kafka()
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=timeout)
    if topic in metadata.topics:
        return
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    try:
        futures[topic].result(timeout)
    except ck.KafkaException as exc:
        if exc.args and exc.args[0].code() == ck.KafkaError.TOPIC_ALREADY_EXISTS:
            return
        raise ServiceError(f"cannot create topic {topic!r}: {exc}", path="topic") from exc


def partitions_for(worker: int, workers: int, partitions: int) -> list[int]:
    """The partitions worker ``worker`` (0-based) of ``workers`` consumes.

    >>> partitions_for(1, 2, 5)
    [1, 3]
    """
    return [p for p in range(partitions) if p % workers == worker]


class EventPublisher:
    """Publishes messages and waits for the broker's acknowledgement.

    Args:
        bootstrap: Kafka ``bootstrap.servers``.
        topic: the topic to publish to.
        client: extra librdkafka settings.
    """

    def __init__(self, bootstrap: str, topic: str, *, client: dict[str, str] | None = None) -> None:
        ck = _kafka()
        self.topic = topic
        self._producer = ck.Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 2,
                "log_level": 3,
                **(client or {}),
            }
        )
        self._lock = threading.Lock()

    def publish(
        self, value: bytes, *, key: str | bytes | None = None, msg_id: str | None = None
    ) -> StreamMessage:
        """Publish one message; returns it with its partition and offset once acknowledged."""
        return self.publish_many([(key, value, msg_id)])[0]

    def publish_many(
        self, items: Iterable[tuple[str | bytes | None, bytes, str | None]], *, timeout: float = 30.0
    ) -> list[StreamMessage]:
        """Publish ``(key, value, msg_id)`` items; return them, in order, once all are acknowledged.

        Messages with the same key go to the same partition, in order. A ``None`` id becomes a UUID.

        Raises:
            ServiceError: any message was refused or not acknowledged within ``timeout`` seconds.
        """
        ck = _kafka()
        results: list[StreamMessage | None] = []
        errors: list[str] = []

        def delivered(slot: int, msg_id: str) -> Callable[[Any, Any], None]:
            def callback(err: Any, msg: Any) -> None:
                if err is not None:
                    errors.append(f"{msg_id}: {err}")
                else:
                    results[slot] = StreamMessage(
                        msg_id, msg.key(), msg.value(), msg.topic(), msg.partition(), msg.offset()
                    )

            return callback

        with self._lock:
            for key, value, msg_id in items:
                msg_id = msg_id or uuid.uuid4().hex
                results.append(None)
                while True:
                    try:
                        self._producer.produce(
                            self.topic,
                            value=value,
                            key=key,
                            headers={ID_HEADER: msg_id.encode()},
                            on_delivery=delivered(len(results) - 1, msg_id),
                        )
                        break
                    except BufferError:
                        self._producer.poll(0.05)  # local queue full: let deliveries drain
                    except ck.KafkaException as exc:
                        raise ServiceError(f"cannot publish to {self.topic!r}: {exc}") from exc
            left = self._producer.flush(timeout)
        if left or errors or any(r is None for r in results):
            detail = "; ".join(errors[:3]) or f"{left} messages unacknowledged after {timeout} s"
            raise ServiceError(f"the broker did not acknowledge every message: {detail}", path="topic")
        return [r for r in results if r is not None]

    def close(self) -> None:
        """Flush anything pending and disconnect."""
        self._producer.flush(10)
        self._producer.close()


class EventConsumer:
    """Reads a fixed set of partitions from the group's committed offsets (at-least-once).

    Args:
        bootstrap: Kafka ``bootstrap.servers``.
        topic: the topic to read.
        group: consumer group id; offsets are committed under it.
        partitions: partitions to read (see :func:`partitions_for`).
        client: extra librdkafka settings.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group: str,
        partitions: Sequence[int],
        *,
        client: dict[str, str] | None = None,
    ) -> None:
        ck = _kafka()
        self._ck = ck
        self.topic = topic
        self._consumer = ck.Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "log_level": 3,
                **(client or {}),
            }
        )
        wanted = [ck.TopicPartition(topic, p) for p in partitions]
        try:
            committed = self._consumer.committed(wanted, timeout=10)
        except ck.KafkaException as exc:
            raise ServiceError(f"cannot read committed offsets of group {group!r}: {exc}") from exc
        # A partition without a committed offset starts at its beginning.
        start = [
            ck.TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else ck.OFFSET_BEGINNING)
            for tp in committed
        ]
        self.start_offsets = {tp.partition: tp.offset for tp in start}
        """Where each partition resumed (``OFFSET_BEGINNING`` = -2 when nothing was committed)."""
        self._consumer.assign(start)

    def poll(self, max_messages: int = 500, timeout: float = 1.0) -> list[StreamMessage]:
        """Up to ``max_messages`` messages, waiting at most ``timeout`` seconds for the first."""
        batch = self._consumer.consume(max_messages, timeout)
        out: list[StreamMessage] = []
        for msg in batch:
            err = msg.error()
            if err is not None:
                if err.code() == self._ck.KafkaError._PARTITION_EOF:
                    continue
                raise ServiceError(f"consuming {self.topic!r} failed: {err}")
            headers = dict(msg.headers() or [])
            raw_id = headers.get(ID_HEADER)
            msg_id = raw_id.decode() if raw_id else f"{msg.topic()}/{msg.partition()}/{msg.offset()}"
            out.append(
                StreamMessage(msg_id, msg.key(), msg.value(), msg.topic(), msg.partition(), msg.offset())
            )
        return out

    def commit(self, messages: Sequence[StreamMessage]) -> None:
        """Record that everything up to and including ``messages`` is processed (synchronous).

        Raises:
            ServiceError: the broker did not store the offsets.
        """
        last: dict[int, int] = {}
        for m in messages:
            last[m.partition] = max(last.get(m.partition, -1), m.offset)
        if not last:
            return
        offsets = [self._ck.TopicPartition(self.topic, p, o + 1) for p, o in sorted(last.items())]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except self._ck.KafkaException as exc:
            raise ServiceError(f"cannot commit offsets: {exc}") from exc

    def close(self) -> None:
        """Leave without committing anything further."""
        self._consumer.close()


def apply_idempotently(
    store: PointStore, messages: Sequence[StreamMessage], handle: Callable[[StreamMessage], WriteBatch]
) -> tuple[int, int]:
    """Apply each message's effects exactly once; returns ``(applied, skipped_duplicates)``.

    For each message whose id is not yet in :data:`SEEN_TABLE`, ``handle(message)`` builds the
    effects and they are written together with the seen record in one atomic ``write``. Commit the
    consumer's offsets only after this returns.
    """
    seen = store.get_many(SEEN_TABLE, [m.id for m in messages])
    applied = skipped = 0
    done_now: set[str] = set()
    for m in messages:
        if m.id in seen or m.id in done_now:
            skipped += 1
            continue
        batch = handle(m)
        batch.put(SEEN_TABLE, m.id, f"{m.topic}/{m.partition}/{m.offset}".encode())
        store.write(batch)
        done_now.add(m.id)
        applied += 1
    return applied, skipped


POLL_S = 0.2
"""How long one poll waits for a first message; also the step of the idle clock."""


def consume(
    consumer: EventConsumer,
    stop: threading.Event,
    apply: Callable[[list[StreamMessage]], None],
    *,
    max_batch: int = 200,
    idle_exit_s: float | None = None,
    throttle_s: float = 0.0,
) -> None:
    """The at-least-once loop: poll, ``apply``, commit offsets; until ``stop`` is set.

    ``apply`` must leave the batch's effects durable when it returns: the offsets are committed
    right after, and a crash before that makes the broker re-deliver the batch (so ``apply`` must
    also skip what it already applied, e.g. with :func:`apply_idempotently`).

    Args:
        consumer: where the messages come from.
        stop: set it (from a signal handler) to finish after the current batch.
        apply: called with each non-empty polled batch.
        max_batch: most messages per poll.
        idle_exit_s: also return after this many seconds without a message (tests, drains).
        throttle_s: pause after each batch (demos and crash tests slow a worker down with it).
    """
    idle = 0.0
    while not stop.is_set():
        messages = consumer.poll(max_batch, POLL_S)
        if not messages:
            idle += POLL_S
            if idle_exit_s is not None and idle >= idle_exit_s:
                break
            continue
        idle = 0.0
        apply(messages)
        consumer.commit(messages)
        if throttle_s:
            stop.wait(throttle_s)
