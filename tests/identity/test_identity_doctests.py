"""The ``>>>`` examples in the identity package's docstrings are part of its documentation: run them."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "tessera.identity",
    "tessera.identity.bulk",
    "tessera.identity.graph",
    "tessera.identity.namespaces",
    "tessera.identity.rules",
    "tessera.identity.simulate",
    "tessera.identity.validation",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
