"""``log_format=auto`` (the default): plain text for a person at a terminal, JSON for a collector."""

from __future__ import annotations

import io
import logging
import sys
import time

import pytest

from tessera.ops.logs import BufferedLineHandler, JsonFormatter, TextFormatter, configure_logging
from tessera.settings import Settings


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_root_handlers() -> object:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    yield None
    root.handlers[:] = saved
    root.setLevel(level)


def test_default_is_auto() -> None:
    assert Settings().log_format == "auto"


def test_auto_writes_json_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert isinstance(configure_logging("auto").formatter, JsonFormatter)


def test_auto_writes_text_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert isinstance(configure_logging("auto").formatter, TextFormatter)
    assert isinstance(configure_logging("json").formatter, JsonFormatter)  # an explicit choice wins


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_lines_are_written_in_bunches_soon_after_they_are_logged() -> None:
    stream = io.StringIO()
    handler = BufferedLineHandler(stream, delay=0.05)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("tessera.test.buffered")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        log.info("one")
        log.info("two")
        assert _lines(stream) == []  # held for at most `delay`
        deadline = time.monotonic() + 5
        while len(_lines(stream)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _lines(stream) == ["INFO one", "INFO two"]
        log.info("three")
        log.warning("four")  # a warning goes out at once, after what was logged before it
        assert _lines(stream)[2:] == ["INFO three", "WARNING four"]
        log.info("five")
    finally:
        log.removeHandler(handler)
        log.setLevel(logging.NOTSET)
        handler.close()  # what logging.shutdown does at exit: nothing held is lost
    assert _lines(stream)[4:] == ["INFO five"]


def test_the_server_logs_through_the_buffered_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    handler = configure_logging("json")
    assert isinstance(handler, BufferedLineHandler)
    logging.getLogger("tessera.test").error("boom")
    assert '"message":"boom"' in sys.stderr.getvalue()
