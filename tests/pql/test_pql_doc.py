"""docs/pql.md is the user's reference: its examples run and its function table matches the code."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

from tessera.pql.functions import FUNCTIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "pql.md"
ROW = re.compile(r"^\| `(\w+)` \| ([^|]+) \|", re.M)


def test_examples_in_the_pql_reference_run() -> None:
    parser = doctest.DocTestParser()
    test = parser.get_doctest(DOC.read_text(), {}, "docs/pql.md", str(DOC), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
    assert test.examples, "the reference lost its examples"


def test_function_table_lists_every_builtin_with_its_arity() -> None:
    rows = {name: arity.strip() for name, arity in ROW.findall(DOC.read_text())}
    assert set(rows) == set(FUNCTIONS), "docs/pql.md and the function table list different functions"
    for name, fn in FUNCTIONS.items():
        if fn.max_args is None:
            arity = f"{fn.min_args}+"
        elif fn.min_args == fn.max_args:
            arity = str(fn.min_args)
        else:
            arity = f"{fn.min_args}–{fn.max_args}"
        assert rows[name] == arity, name
