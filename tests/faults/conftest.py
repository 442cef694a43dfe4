"""Fault-suite reporting: how many faults were injected and hostile inputs sent in this run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from faults_harness import COUNTS, Zygote, drop_templates


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if COUNTS:
        terminalreporter.write_sep("-", "fault suite")
        for name, count in sorted(COUNTS.items()):
            terminalreporter.write_line(f"{name}: {count}")


@pytest.fixture(scope="session", autouse=True)
def _zygote() -> Iterator[None]:
    """Stop the server zygote (and so never leak it) when the session ends."""
    yield
    Zygote.shutdown()
    drop_templates()
