"""Pausing the cyclic garbage collector around bulk work that makes no reference cycles.

Ingesting a chunk, resolving a batch's identities or loading an identity graph allocates
10^5-10^7 containers and creates no cycles. Left on, the collector repeatedly walks the whole
heap (the identity graph included) while that happens: ~15% of an ingested chunk, half of a
graph load. The collector is process-wide and several threads pause it at once (a batch reads
on one thread and applies on another), so pauses are counted and the last one to end restores it.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector is off inside; it is back on when the last overlapping pause ends
    (if it was on when the first began).

    >>> with gc_paused():
    ...     with gc_paused():
    ...         pass
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
