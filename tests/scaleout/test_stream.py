"""The event stream: acknowledged publishing, at-least-once consumption from committed offsets, and
idempotent processing by message id, including a worker process killed mid-stream."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip(
    "confluent_kafka", reason='confluent-kafka missing: pip install "tessera-cdp[distributed]"'
)

from tessera.scaleout.broker import Broker
from tessera.scaleout.stream import (
    SEEN_TABLE,
    EventConsumer,
    EventPublisher,
    StreamMessage,
    apply_idempotently,
    consume,
    ensure_topic,
)
from tessera.scaleout.worker import record_message
from tessera.store import MemoryStore, SqliteStore, WriteBatch


def _topic(broker: Broker, partitions: int = 2) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    ensure_topic(broker.bootstrap, name, partitions)
    ensure_topic(broker.bootstrap, name, partitions)  # idempotent
    return name


def _publish(broker: Broker, topic: str, n: int) -> list[StreamMessage]:
    pub = EventPublisher(broker.bootstrap, topic)
    sent = pub.publish_many((f"user{i % 17}", f"v{i}".encode(), f"m{i:05d}") for i in range(n))
    pub.close()
    return sent


def _drain(consumer: EventConsumer, want: int, timeout: float = 10.0) -> list[StreamMessage]:
    got: list[StreamMessage] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got += consumer.poll(500, 0.2)
    return got


def test_publish_returns_acknowledged_offsets_and_ids_travel(broker: Broker) -> None:
    topic = _topic(broker)
    sent = _publish(broker, topic, 300)
    assert [m.id for m in sent] == [f"m{i:05d}" for i in range(300)]
    assert {m.partition for m in sent} == {0, 1} and all(m.offset >= 0 for m in sent)
    # Same key, same partition, increasing offsets: per-profile order is kept.
    user3 = [m for m in sent if m.key == b"user3"]
    assert len({m.partition for m in user3}) == 1
    assert [m.offset for m in user3] == sorted(m.offset for m in user3)
    consumer = EventConsumer(broker.bootstrap, topic, "g", [0, 1])
    got = _drain(consumer, 300)
    consumer.close()
    assert sorted((m.id, m.value) for m in got) == sorted((m.id, m.value) for m in sent)


def test_crashed_consumer_resumes_from_committed_offset_without_loss_or_double_effects(
    broker: Broker,
) -> None:
    topic = _topic(broker, partitions=1)
    _publish(broker, topic, 200)
    store = MemoryStore()
    first = EventConsumer(broker.bootstrap, topic, "workers", [0])
    batch = _drain(first, 130)[:130]
    apply_idempotently(store, batch, record_message)
    first.commit(batch[:100])  # dies after applying 130 but committing only 100
    first.close()

    second = EventConsumer(broker.bootstrap, topic, "workers", [0])
    assert second.start_offsets == {0: 100}
    rest = _drain(second, 100)
    second.close()
    applied, skipped = apply_idempotently(store, rest, record_message)
    assert (applied, skipped) == (70, 30)
    assert store.count("messages") == 200 and store.count(SEEN_TABLE) == 200


def test_apply_idempotently_skips_repeats_within_one_poll() -> None:
    store = MemoryStore()
    m = StreamMessage("same", None, b"x", "t", 0, 1)
    calls: list[str] = []

    def handle(msg: StreamMessage) -> WriteBatch:
        calls.append(msg.id)
        return WriteBatch().put("effects", msg.id, msg.value)

    assert apply_idempotently(store, [m, m], handle) == (1, 1)
    assert calls == ["same"]


class _ScriptedConsumer:
    """Hands out scripted polls (then nothing) and records what was committed."""

    def __init__(self, polls: list[list[StreamMessage]]) -> None:
        self.polls = polls
        self.log: list[str] = []

    def poll(self, max_messages: int, timeout: float) -> list[StreamMessage]:
        return self.polls.pop(0) if self.polls else []

    def commit(self, messages: list[StreamMessage]) -> None:
        self.log.append("commit " + ",".join(m.id for m in messages))


def test_consume_commits_each_batch_after_applying_it_and_stops_when_idle() -> None:
    batches = [[StreamMessage(f"m{i}", None, b"x", "t", 0, i)] for i in range(3)]
    consumer = _ScriptedConsumer([batches[0], [], batches[1], batches[2]])

    def apply(messages: list[StreamMessage]) -> None:
        consumer.log.append("apply " + ",".join(m.id for m in messages))

    consume(consumer, threading.Event(), apply, idle_exit_s=0.6)  # type: ignore[arg-type]
    assert consumer.log == ["apply m0", "commit m0", "apply m1", "commit m1", "apply m2", "commit m2"]


def test_consume_commits_nothing_for_a_batch_that_failed_to_apply() -> None:
    consumer = _ScriptedConsumer([[StreamMessage("m0", None, b"x", "t", 0, 0)]])

    def apply(messages: list[StreamMessage]) -> None:
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError):
        consume(consumer, threading.Event(), apply, idle_exit_s=0.2)  # type: ignore[arg-type]
    assert consumer.log == []  # the broker re-delivers it to the next worker


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    s = SqliteStore(db)
    try:
        return s.count("messages")
    finally:
        s.close()


def test_killed_worker_process_loses_nothing_and_applies_nothing_twice(
    broker: Broker, tmp_path: Path
) -> None:
    n = 600
    topic = _topic(broker, partitions=2)
    sent = _publish(broker, topic, n)
    db = tmp_path / "state.sqlite"
    cmd = [
        sys.executable,
        "-m",
        "tessera.scaleout.worker",
        "--bootstrap",
        broker.bootstrap,
        "--topic",
        topic,
        "--group",
        "w",
        "--partitions",
        "2",
        "--store",
        f"sqlite:{db}",
        "--max-batch",
        "20",
        "--throttle",
        "0.05",
    ]
    proc = subprocess.Popen(cmd, cwd=Path(__file__).parents[2], env={"PYTHONPATH": "src", "PATH": "/usr/bin"})
    try:
        deadline = time.monotonic() + 30
        while True:
            done = _count(db)
            if done >= 100 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    store = SqliteStore(db)
    killed_at = store.count("messages")
    assert 100 <= killed_at < n

    second = EventConsumer(broker.bootstrap, topic, "w", [0, 1])
    rest = _drain(second, n - sum(max(o, 0) for o in second.start_offsets.values()))
    applied, skipped = apply_idempotently(store, rest, record_message)
    second.commit(rest)
    second.close()
    assert applied == n - killed_at
    assert applied + skipped == len(rest)
    values = dict(store.scan("messages"))
    assert values == {m.id: m.value for m in sent}
    store.close()


def test_missing_extras_name_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from tessera.scaleout import spark as tspark
    from tessera.scaleout.errors import MissingExtra

    real_import = builtins.__import__

    def no_pyspark(name: str, *args: object, **kw: object) -> object:
        if name.startswith("pyspark"):
            raise ImportError(name)
        return real_import(name, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_pyspark)
    with pytest.raises(MissingExtra, match=r'pip install "tessera-cdp\[spark\]"'):
        tspark.spark_session()


def test_partitions_are_split_between_workers() -> None:
    from tessera.scaleout.stream import partitions_for

    split = [partitions_for(w, 3, 8) for w in range(3)]
    assert sorted(p for ps in split for p in ps) == list(range(8))
    assert split[0] == [0, 3, 6]


def test_gateway_answers_after_the_broker_acknowledged(broker: Broker) -> None:
    import asyncio

    import httpx

    from tessera.scaleout.gateway import create_gateway

    topic = _topic(broker, partitions=2)
    pub = EventPublisher(broker.bootstrap, topic)
    app = create_gateway(pub)
    msgs = [
        {
            "header": {"msgId": f"g{i}"},
            "body": {"xdmEntity": {"identityMap": {"Email": [{"id": f"p{i % 3}@x"}]}}},
        }
        for i in range(9)
    ]

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.post("/collection/inlet1", json={"messages": msgs})

    response = asyncio.run(post())
    pub.close()
    assert response.status_code == 200
    acked = response.json()["messages"]
    assert [a["id"] for a in acked] == [f"g{i}" for i in range(9)]
    # The same person always lands on the same partition.
    assert len({acked[i]["partition"] for i in (0, 3, 6)}) == 1
    consumer = EventConsumer(broker.bootstrap, topic, "gw", [0, 1])
    got = _drain(consumer, 9)
    consumer.close()
    assert sorted(m.id for m in got) == sorted(f"g{i}" for i in range(9))
