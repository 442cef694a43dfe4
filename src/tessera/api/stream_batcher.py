"""Streaming requests that arrive together go to the ingestion flow together.

Each collection request used to hand its message to a worker thread of its own. Under load that
is one thread hop (futex wake-ups, a GIL hand-over, a wake-up of the event loop on the way back)
and one chunk with its durable commit per message: on two cores the server spent far more on
the hops than on ingesting. Here the event loop queues each request's messages per (sandbox,
dataset); one drain task per queue sends everything queued to one worker thread as one
``IngestService.stream`` call, and while that runs the next requests queue up behind it. A
request that arrives alone still goes at once (no timer, no added latency), and every request
is answered only after its messages are durable, as before.

If a grouped call fails as a whole (a fault, not a refused message — refusals are results),
each request of the group is sent again on its own, so one request's fault never fails others.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from tessera.platform import Sandbox

MAX_MESSAGES = 5_000
"""Messages sent in one grouped call at most (the rest go in the next)."""

Results = list[dict[str, Any]]


@dataclass(eq=False)
class _Request:
    messages: list[Any]
    answer: asyncio.Future[Results]


class StreamBatcher:
    """Groups concurrent streaming requests of one event loop (one per app: see :func:`batcher_of`)."""

    def __init__(self) -> None:
        self._queues: dict[tuple[int, str | None], list[_Request]] = {}

    async def stream(self, sandbox: Sandbox, messages: list[Any], dataset_id: str | None) -> Results:
        """``sandbox.ingest.stream(messages, dataset_id=...)``, sharing the call with the requests
        queued at the same time. Returns this request's results, in order."""
        request = _Request(messages, asyncio.get_running_loop().create_future())
        key = (id(sandbox), dataset_id)
        queue = self._queues.get(key)
        if queue is None:
            self._queues[key] = [request]
            asyncio.get_running_loop().create_task(self._drain(key, sandbox, dataset_id))
        else:
            queue.append(request)
        # shielded: a client that hangs up does not cancel what its messages share with others
        return await asyncio.shield(request.answer)

    async def _drain(self, key: tuple[int, str | None], sandbox: Sandbox, dataset_id: str | None) -> None:
        queue = self._queues[key]
        try:
            while queue:
                group: list[_Request] = []
                size = 0
                while queue and (not group or size + len(queue[0].messages) <= MAX_MESSAGES):
                    size += len(queue[0].messages)
                    group.append(queue.pop(0))
                try:
                    await self._send(sandbox, dataset_id, group)
                except BaseException as exc:  # cancelled (shutdown): nobody of the group may hang
                    for request in group:
                        if not request.answer.done():
                            request.answer.set_exception(exc)
                    raise
        finally:
            del self._queues[key]
            for request in queue:  # only when the loop is shutting down mid-drain
                if not request.answer.done():
                    request.answer.set_exception(
                        RuntimeError("the server stopped before this message was stored")
                    )

    async def _send(self, sandbox: Sandbox, dataset_id: str | None, group: list[_Request]) -> None:
        if len(group) > 1:
            messages = [m for request in group for m in request.messages]
            try:
                results = await run_in_threadpool(sandbox.ingest.stream, messages, dataset_id=dataset_id)
            except Exception:  # noqa: BLE001 - retried one request at a time below
                pass
            else:
                start = 0
                for request in group:
                    end = start + len(request.messages)
                    request.answer.set_result(results[start:end])
                    start = end
                return
        for request in group:
            try:
                request.answer.set_result(
                    await run_in_threadpool(sandbox.ingest.stream, request.messages, dataset_id=dataset_id)
                )
            except Exception as exc:  # noqa: BLE001 - the request's own handler raises it
                request.answer.set_exception(exc)


def batcher_of(state: Any) -> StreamBatcher:
    """The app's batcher (``app.state``), made on first use."""
    batcher: StreamBatcher | None = getattr(state, "stream_batcher", None)
    if batcher is None:
        batcher = state.stream_batcher = StreamBatcher()
    return batcher
