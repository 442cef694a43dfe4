"""Concurrent streaming calls share chunks (one commit for all that waited), each call still gets
exactly its own answers, and one call's fault does not fail the calls grouped with it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tessera import Platform
from tessera.flow import ChunkResult, Rejection
from tessera.ingest.coalesce import StreamGroups

DATASET = "ds"


class SlowChunks:
    """A chunk processor that takes its time (as a durable commit does) and refuses odd records."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.chunks: list[list[Any]] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def __call__(self, dataset_id: str, rows: list[tuple[int, Any]]) -> ChunkResult:
        with self.lock:  # one chunk at a time, like the sandbox write lock
            time.sleep(0.02)
            records = [r for _, r in rows]
            if self.fail_on is not None and self.fail_on in records:
                raise RuntimeError(f"cannot store {self.fail_on}")
            self.chunks.append(records)
            result = ChunkResult()
            for index, record in rows:
                if record.endswith("!"):
                    result.rejected.append(Rejection(index, "BAD", f"{record} is refused", "body"))
                else:
                    result.accepted.append(index)
            return result


def _submit_concurrently(groups: StreamGroups, calls: list[list[str]]) -> list[Any]:
    answers: list[Any] = [None] * len(calls)

    def run(k: int) -> None:
        try:
            answers[k] = groups.submit(DATASET, list(enumerate(calls[k])))
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            answers[k] = exc

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_waiting_calls_share_a_chunk_and_get_their_own_answers() -> None:
    process = SlowChunks()
    groups = StreamGroups(process)
    calls = [[f"c{k}-a", f"c{k}-b!", f"c{k}-c"] for k in range(12)]
    answers = _submit_concurrently(groups, calls)
    for accepted, rejected in answers:
        assert accepted == [0, 2]
        assert [(r.index, r.code) for r in rejected] == [(1, "BAD")]
    for k, (_, rejected) in enumerate(answers):
        assert rejected[0].message == f"c{k}-b! is refused"
    stored = [r for chunk in process.chunks for r in chunk]
    assert sorted(stored) == sorted(r for c in calls for r in c)  # every record exactly once
    assert len(process.chunks) < len(calls)  # fewer chunks (commits) than calls


def test_a_call_alone_is_processed_at_once() -> None:
    process = SlowChunks()
    accepted, rejected = StreamGroups(process).submit(DATASET, [(0, "x"), (1, "y!")])
    assert (accepted, [r.index for r in rejected]) == ([0], [1])
    assert process.chunks == [["x", "y!"]]


def test_a_fault_in_a_grouped_chunk_fails_only_the_call_that_caused_it() -> None:
    process = SlowChunks(fail_on="poison")
    groups = StreamGroups(process)
    calls = [[f"c{k}"] for k in range(8)]
    calls[5] = ["poison"]
    answers = _submit_concurrently(groups, calls)
    assert isinstance(answers[5], RuntimeError)
    for k, answer in enumerate(answers):
        if k != 5:
            assert answer == ([0], []), k


def test_concurrent_streaming_into_a_sandbox_keeps_every_acknowledged_message(tmp_path: Path) -> None:
    with Platform.open(tmp_path / "home") as platform:
        sb = platform.sandbox()
        schemas = sb.schemas.ensure_standard_schemas()
        web = sb.datasets.create("Web", schemas["event"])

        def event(k: int, j: int) -> dict[str, Any]:
            return {
                "_id": f"e{k}-{j}",
                "timestamp": "2024-05-01T10:00:00Z",
                "eventType": "web.webpagedetails.pageViews",
                "identityMap": {"ECID": [{"id": f"{k:038d}", "primary": True}]},
            }

        acked: list[str] = []
        lock = threading.Lock()

        def client(k: int) -> None:
            for j in range(10):
                (answer,) = sb.ingest.stream([event(k, j)], dataset_id=web["id"])
                assert "xactionId" in answer, answer
                with lock:
                    acked.append(f"e{k}-{j}")

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(acked) == 80
        stored = {
            e["_id"]
            for k in range(8)
            for e in sb.profiles.events_for_members(sb.identity.members(sb.identity.profile_id_of(_ecid(k))))
        }
        assert stored == set(acked)


def _ecid(k: int) -> Any:
    from tessera.model import Identity

    return Identity("ECID", f"{k:038d}")


@pytest.mark.parametrize("n", [1, 3])
def test_rows_of_a_call_stay_in_order(n: int) -> None:
    process = SlowChunks()
    calls = [[f"c{k}-{i}" for i in range(5)] for k in range(n)]
    _submit_concurrently(StreamGroups(process), calls)
    stored = [r for chunk in process.chunks for r in chunk]
    for c in calls:
        assert [r for r in stored if r in c] == c


def test_messages_for_a_missing_dataset_get_404_and_the_others_are_stored(tmp_path: Path) -> None:
    with Platform.open(tmp_path / "home") as platform:
        sb = platform.sandbox()
        schemas = sb.schemas.ensure_standard_schemas()
        web = sb.datasets.create("Web", schemas["event"])
        ref = {"id": schemas["event"], "contentType": "application/vnd.adobe.xed-full+json;version=1"}

        def envelope(dataset_id: str, k: int) -> dict[str, Any]:
            entity = {
                "_id": f"m{k}",
                "timestamp": "2024-05-01T10:00:00Z",
                "eventType": "web.webpagedetails.pageViews",
                "identityMap": {"ECID": [{"id": f"{k:038d}", "primary": True}]},
            }
            return {"header": {"schemaRef": ref, "datasetId": dataset_id}, "body": {"xdmEntity": entity}}

        answers = sb.ingest.stream(
            [envelope(web["id"], 1), envelope("no-such-dataset", 2), envelope(web["id"], 3)]
        )
        assert ["xactionId" in a for a in answers] == [True, False, True]
        assert answers[1]["statusCode"] == 404 and "no-such-dataset" in answers[1]["message"]
        stored = {e["_id"] for k in (1, 3) for e in sb.profiles.events_for_members([_ecid(k)])}
        assert stored == {"m1", "m3"}
