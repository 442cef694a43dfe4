"""A streaming call runs with the cyclic garbage collector paused (segment evaluation decodes
every event of every touched profile, which made no cycles but many collector passes) and leaves
it as it found it, also when the call fails."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.conftest import ecid, web_event

from tessera.model import format_time
from tessera.platform import Sandbox


def test_the_collector_is_paused_while_a_chunk_is_applied_and_back_on_after(
    retail: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sb: Sandbox = retail["sandbox"]
    seen: list[bool] = []
    inner = sb.segments_on_change

    def watching(*args: Any) -> Any:
        seen.append(gc.isenabled())
        return inner(*args)

    monkeypatch.setattr(sb, "segments_on_change", watching)
    assert gc.isenabled()
    now = format_time(datetime.now(UTC))
    sb.ingest.stream([web_event("g1", ecid(71), now)], dataset_id=retail["web"]["id"])
    sb.ingest.stream(
        [web_event(f"g{i}", ecid(72 + i), now) for i in range(2, 130)], dataset_id=retail["web"]["id"]
    )  # a chunk large enough for the bulk path
    assert seen == [False, False]
    assert gc.isenabled()

    def failing(*args: Any) -> Any:
        raise RuntimeError("segment evaluation failed")

    monkeypatch.setattr(sb, "segments_on_change", failing)
    with pytest.raises(RuntimeError):
        sb.ingest.stream([web_event("g0", ecid(70), now)], dataset_id=retail["web"]["id"])
    assert gc.isenabled()
