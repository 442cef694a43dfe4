"""The ``>>>`` examples in the xdm package's docstrings are true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "tessera.xdm",
    "tessera.xdm.fields",
    "tessera.xdm.identities",
    "tessera.xdm.paths",
    "tessera.xdm.schemas",
    "tessera.xdm.standard",
    "tessera.xdm.validate",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_public_api_sorted_and_importable() -> None:
    import tessera.xdm as xdm

    assert xdm.__all__ == sorted(xdm.__all__)
    assert all(hasattr(xdm, name) for name in xdm.__all__)
