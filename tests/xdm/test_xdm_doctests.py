"""The xdm package's public face (its docstring examples run in tests/test_docstring_examples.py)."""

from __future__ import annotations


def test_public_api_sorted_and_importable() -> None:
    import tessera.xdm as xdm

    assert xdm.__all__ == sorted(xdm.__all__)
    assert all(hasattr(xdm, name) for name in xdm.__all__)
