"""Scale-out: the Kafka-protocol event stream, stream workers, Spark batch jobs and local servers.

The worker loop lives in :mod:`tessera.scaleout.worker` (``python -m tessera.scaleout.worker``).

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
