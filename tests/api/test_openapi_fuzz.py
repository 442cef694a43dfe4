"""Schemathesis over the OpenAPI document: every operation, generated requests (valid and
invalid), no 5xx, and every response's status, content type and body as documented.

Bounded so it fits ``make test`` on the 2-core machine: a few examples per operation and mode,
no shrinking, and an overall time budget. Defects it found are kept as plain regression tests in
``test_openapi_regressions.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from tessera.api import create_app
from tessera.platform import Platform
from tessera.settings import Settings

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = 6
"""Generated requests per operation and generation mode (plus the documented example)."""
BUDGET_S = float(os.environ.get("TESSERA_FUZZ_BUDGET_S", "60"))
"""Stop starting new operations after this long (the run reports how many it covered)."""
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    home: Path = tmp_path_factory.mktemp("fuzz")
    with Platform(Settings(home=str(home), group_commit_ms=0.0)) as platform:
        platform.sandbox().schemas.ensure_standard_schemas()
        yield create_app(platform)


def _exercise(operation: Any, mode: Any, failures: list[str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    def run(case: Any) -> None:
        try:
            case.call_and_validate(checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # record each operation's first defect, go on
            failures.append(f"{operation.label} [{mode.value}]: {exc}")
            raise

    try:
        run()
    except (Exception, BaseExceptionGroup):  # noqa: S110 - already recorded with its request
        pass


def _constrained(operation: Any) -> bool:
    """Whether invalid requests are cheap to generate: a body, or a query parameter with a type or
    bounds. For the rest (string path ids, the sandbox header) Hypothesis spends seconds looking for
    invalid values that do not exist."""
    raw = operation.definition.raw
    if "requestBody" in raw:
        return True
    for param in raw.get("parameters", []):
        schema = param.get("schema", {})
        if param.get("in") == "query" and (
            set(schema) - {"type", "title", "description", "default"}
            or schema.get("type", "string") != "string"
        ):
            return True
    return False


def test_every_operation_answers_as_documented(fuzz_app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 80
    failures: list[str] = []
    started = time.monotonic()
    covered = 0
    for operation in operations:
        if time.monotonic() - started > BUDGET_S:
            break
        modes = [GenerationMode.POSITIVE]
        if _constrained(operation):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            _exercise(operation, mode, failures)
        covered += 1
    print(f"{covered} of {len(operations)} operations in {time.monotonic() - started:.1f} s")
    assert not failures, "\n\n".join(dict.fromkeys(failures))
    assert covered == len(operations), f"only {covered} of {len(operations)} operations within {BUDGET_S} s"
