"""The ``>>>`` examples in the profile modules are tests too."""

from __future__ import annotations

import doctest
import importlib

import pytest

import tessera.profile


def test_public_face_is_sorted() -> None:
    assert tessera.profile.__all__ == sorted(tessera.profile.__all__)
    assert all(hasattr(tessera.profile, name) for name in tessera.profile.__all__)


@pytest.mark.parametrize("name", ["fragments", "policies", "merge"])
def test_doctests(name: str) -> None:
    # importlib: `tessera.profile.merge` the attribute is the function, not the module.
    module = importlib.import_module(f"tessera.profile.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
