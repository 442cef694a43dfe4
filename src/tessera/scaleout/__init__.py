"""Scale-out: the platform as many processes, the Kafka-protocol event stream, Spark batch jobs.

* :mod:`tessera.scaleout.distributed`: :class:`DistributedPlatform`, the platform of every
  ``tessera serve --workers N`` API process and ``tessera worker`` process on shared backends;
* :mod:`tessera.scaleout.platform_worker`: the ``tessera worker`` loop (the streaming flow,
  exactly-once effects, offsets after the store commit);
* :mod:`tessera.scaleout.coordination`: per-sandbox Redis write lock and write epochs that keep
  each process's in-memory identity graph and caches correct;
* :mod:`tessera.scaleout.worker` / ``.gateway``: the minimal stream reference (generic handler).

Heavy clients (confluent-kafka, pyspark) are imported only when used; a missing extra raises
:class:`MissingExtra` with the ``pip install`` line. The Redis point store is
:class:`tessera.store.redis.RedisStore`.
"""

from tessera.scaleout.errors import MissingExtra, ServiceError
from tessera.scaleout.spark import connected_components, segment_batch, spark_session
from tessera.scaleout.stream import (
    EventConsumer,
    EventPublisher,
    StreamConfig,
    StreamMessage,
    apply_idempotently,
    ensure_topic,
    partitions_for,
)

__all__ = [
    "EventConsumer",
    "EventPublisher",
    "MissingExtra",
    "ServiceError",
    "StreamConfig",
    "StreamMessage",
    "apply_idempotently",
    "connected_components",
    "ensure_topic",
    "partitions_for",
    "segment_batch",
    "spark_session",
]
