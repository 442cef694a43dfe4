"""Golden merge cases: spec/aep.md §d6 M1–M8 plus upsert, custom timestamp, precedence, identities."""

from __future__ import annotations

from typing import Any

import pytest
from merge_golden import GoldenCase, load_cases, run_check

import tessera.errors
from tessera.model import format_time

CASES = [(case, i) for case in load_cases() for i in range(len(case.checks))]


def _leaf_paths(doc: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in doc.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and key not in ("segmentMembership",) and dotted != "identityMap":
            out |= _leaf_paths(value, dotted)
        elif dotted != "identityMap":
            out.add(dotted)
    return out


def test_every_worked_example_has_a_golden_file() -> None:
    names = {case.name.split("_")[0] for case, _ in CASES}
    assert {f"M{i}" for i in range(1, 9)} <= names


@pytest.mark.parametrize(("case", "index"), CASES, ids=[f"{c.name}[{i}]" for c, i in CASES])
def test_golden_merge(case: GoldenCase, index: int) -> None:
    check = case.checks[index]
    if "expectedError" in check:
        error_class = getattr(tessera.errors, check["expectedError"])
        with pytest.raises(error_class):
            run_check(case, check)
        return
    view, events = run_check(case, check)
    expected = check["expected"]
    assert view.attributes == expected["attributes"], case.title
    for path, dataset in expected.get("provenance", {}).items():
        assert view.provenance[path] == dataset, path
    # Every merged leaf has a source, and nothing else does.
    assert set(view.provenance) == _leaf_paths(view.attributes)
    if "sourceDatasets" in expected:
        assert list(view.source_datasets) == expected["sourceDatasets"]
    if "identities" in expected:
        assert [str(i) for i in view.identities] == expected["identities"]
    if "lastModifiedAt" in expected:
        got = None if view.last_modified is None else format_time(view.last_modified)
        assert got == expected["lastModifiedAt"]
    assert [e.event_id for e in events] == expected["events"]
