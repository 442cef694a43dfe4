"""The profile package's public face (its docstring examples run in tests/test_docstring_examples.py)."""

from __future__ import annotations

import tessera.profile


def test_public_face_is_sorted() -> None:
    assert tessera.profile.__all__ == sorted(tessera.profile.__all__)
    assert all(hasattr(tessera.profile, name) for name in tessera.profile.__all__)
