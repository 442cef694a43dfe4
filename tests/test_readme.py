"""The README's Python example runs as written."""

from __future__ import annotations

import doctest
from pathlib import Path


def test_readme_python_example_runs() -> None:
    readme = Path(__file__).parents[1] / "README.md"
    result = doctest.testfile(str(readme), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 5
    assert result.failed == 0
