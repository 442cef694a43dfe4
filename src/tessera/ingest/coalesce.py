"""Concurrent streaming calls share chunks: one durable commit for all the messages waiting.

Every streaming call is acknowledged only once its messages are durable, and a chunk is one
commit. Calls arriving while a chunk of their dataset is being processed wait; when it is done,
one of them takes every call queued behind it into the next chunk (group commit at the level of
the ingestion flow). A call that arrives alone is processed at once, as before: grouping only
ever happens when calls would otherwise wait for the write lock anyway.

If a grouped chunk fails as a whole (a fault, not a refused row — refused rows are results), each
call of it is processed again on its own, so one call's fault does not take the others down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tessera.flow import ChunkResult, Rejection

Rows = list[tuple[int, Any]]
Process = Callable[[str, Rows], ChunkResult]
"""Processes one chunk of a dataset (by id: the dataset is read once per chunk, not per call)."""

MAX_ROWS = 5_000
"""Rows taken into one grouped chunk at most (more wait for the next)."""


@dataclass(eq=False)
class _Call:
    rows: Rows
    wake: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    accepted: list[int] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    error: BaseException | None = None

    def outcome(self) -> tuple[list[int], list[Rejection]]:
        if self.error is not None:
            raise self.error
        return self.accepted, self.rejected


class StreamGroups:
    """Runs streaming calls through ``process`` (one chunk, one commit), grouping the calls of a
    dataset that arrive while one of its chunks is in progress.

    Args:
        process: processes ``(dataset_id, rows)`` as one chunk; row indices are its own.
    """

    def __init__(self, process: Process) -> None:
        self._process = process
        self._lock = threading.Lock()
        self._queues: dict[str, list[_Call]] = {}
        self._busy: set[str] = set()

    def submit(self, ds_id: str, rows: Rows) -> tuple[list[int], list[Rejection]]:
        """Process ``rows`` (the caller's ``(index, record)`` pairs) of dataset ``ds_id`` durably;
        returns the caller's accepted indices and rejections. Raises what processing raised for
        this call."""
        call = _Call(rows)
        with self._lock:
            self._queues.setdefault(ds_id, []).append(call)
            lead = ds_id not in self._busy
            if lead:
                self._busy.add(ds_id)
        if not lead:
            call.wake.wait()
            if not call.lead:  # another call's chunk carried this one
                return call.outcome()
        # Leading: this call heads the queue; take it and those behind it (up to MAX_ROWS), then
        # hand the lead to the first call left waiting, or leave the dataset idle.
        with self._lock:
            queue = self._queues[ds_id]
            taken, size = 1, len(queue[0].rows)
            while taken < len(queue) and size + len(queue[taken].rows) <= MAX_ROWS:
                size += len(queue[taken].rows)
                taken += 1
            group, self._queues[ds_id] = queue[:taken], queue[taken:]
        try:
            self._run(ds_id, group)
        finally:
            with self._lock:
                waiting = self._queues[ds_id]
                if waiting:
                    waiting[0].lead = True
                    waiting[0].wake.set()
                else:
                    del self._queues[ds_id]
                    self._busy.discard(ds_id)
        return call.outcome()

    def _run(self, ds_id: str, group: list[_Call]) -> None:
        try:
            if len(group) == 1:
                self._run_alone(ds_id, group[0])
            else:
                self._run_together(ds_id, group)
        except BaseException as exc:  # an interrupt: no call of the group was answered
            for c in group:
                c.error = exc
            raise
        finally:
            for c in group:
                c.lead = False
                c.wake.set()

    def _run_together(self, ds_id: str, group: list[_Call]) -> None:
        rows: Rows = []
        owner: list[tuple[_Call, int]] = []  # chunk index → (call, the call's own index)
        for c in group:
            for index, record in c.rows:
                owner.append((c, index))
                rows.append((len(rows), record))
        try:
            result = self._process(ds_id, rows)
        except Exception:
            for c in group:  # the chunk failed as a whole: each call again, on its own
                self._run_alone(ds_id, c)
            return
        for i in result.accepted:
            c, index = owner[i]
            c.accepted.append(index)
        for rej in result.rejected:
            c, index = owner[rej.index]
            c.rejected.append(Rejection(index, rej.code, rej.message, rej.path))

    def _run_alone(self, ds_id: str, call: _Call) -> None:
        try:
            result = self._process(ds_id, call.rows)
        except Exception as exc:  # the caller's thread re-raises it
            call.error = exc
            return
        call.accepted, call.rejected = list(result.accepted), list(result.rejected)
