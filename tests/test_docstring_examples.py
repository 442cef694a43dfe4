"""The ``>>>`` examples in the product's docstrings are part of its documentation: every module
that has some is found and its examples are run (a module added later is covered without a
list to extend)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import tessera

ROOT = Path(tessera.__file__).parent


def _modules_with_examples() -> list[str]:
    names = []
    for path in sorted(ROOT.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.append(".".join(("tessera", *parts)).removesuffix(".__init__"))
    return names


MODULES = _modules_with_examples()


def test_the_examples_are_found() -> None:
    assert {"tessera.identity.graph", "tessera.segments.memberships", "tessera.xdm.validate"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    # importlib: ``tessera.profile.merge`` the attribute is a function, not the module
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.failed == 0  # (a module's examples may all be marked +SKIP: a live server)
