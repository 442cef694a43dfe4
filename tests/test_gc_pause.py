"""The collector pause is shared by threads: it ends only when the last overlapping pause ends."""

from __future__ import annotations

import gc
import threading

from tessera.gc_pause import gc_paused


def test_overlapping_pauses_on_two_threads_restore_the_collector_once_both_end() -> None:
    assert gc.isenabled()
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_paused():
            inside.set()
            assert release.wait(10)

    thread = threading.Thread(target=other)
    with gc_paused():
        thread.start()
        assert inside.wait(10)
    assert not gc.isenabled()  # this pause ended, the other thread's has not
    release.set()
    thread.join(10)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
