"""Values a write batch holds are JSON in buffers of their own size (see ``dump_json``)."""

from __future__ import annotations

import tracemalloc

import orjson

from tessera.store import WriteBatch, dump_json

DOC = {
    f"s{i:02d}": {"status": "realized", "lastQualificationTime": "2026-03-01T00:00:00.000Z"} for i in range(4)
}


def _held_bytes_per_value(make: object, n: int = 2_000) -> float:
    """Memory each of ``n`` values ``make(DOC)`` returns holds while kept (orjson's own: ~4 KB)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = [make(DOC) for _ in range(n)]  # type: ignore[operator]
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(held) == n
    return (after - before - 8 * n) / n  # minus the list's pointers


def test_dump_json_is_the_same_json_in_a_buffer_of_its_size() -> None:
    doc = {"a": [1, 2.5, None], "b": {"c": "é"}}
    assert dump_json(doc) == orjson.dumps(doc)
    per_value = _held_bytes_per_value(dump_json)
    assert per_value < len(orjson.dumps(DOC)) + 100, (
        per_value
    )  # a bytes object's header, not a working buffer


def test_write_batches_hold_trimmed_documents() -> None:
    wb = WriteBatch()

    def put(doc: object) -> bytes:
        wb.put_json("t", "k", doc)
        value = wb.ops.pop()[2]
        assert value is not None
        return value

    assert _held_bytes_per_value(put) < len(orjson.dumps(DOC)) + 100
