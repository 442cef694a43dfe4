"""``log_format=auto`` (the default): plain text for a person at a terminal, JSON for a collector."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from tessera.ops.logs import JsonFormatter, TextFormatter, configure_logging
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
