"""The ``>>>`` examples in the segments package's docstrings are part of its documentation: run them."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "tessera.segments.computed",
    "tessera.segments.definitions",
    "tessera.segments.engine",
    "tessera.segments.memberships",
    "tessera.segments.schedules",
    "tessera.segments.service",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
