"""Schemathesis over the OpenAPI document: every operation, generated requests (valid and
invalid), no 5xx, and every response's status, content type and body as documented.

Bounded so it fits ``make test`` on the 2-core machine: a few examples per operation and mode,
no shrinking, and an overall time budget. Defects it found are kept as plain regression tests in
``test_openapi_regressions.py``.
"""

from __future__ import annotations

import contextlib
import os
import random
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
pytestmark = pytest.mark.slow
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = 4
"""Generated requests per operation and generation mode."""
BUDGET_S = float(os.environ.get("TESSERA_FUZZ_BUDGET_S", "75"))
"""Stop starting new operations after this long; the operations run in a shuffled order (seed in
the output, ``TESSERA_FUZZ_SEED`` to repeat one), so a loaded machine still covers all of them
over a few runs instead of always dropping the same tail."""
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    home: Path = tmp_path_factory.mktemp("fuzz")
    with Platform(Settings(home=str(home), group_commit_ms=0.0)) as platform:
        platform.sandbox().schemas.ensure_standard_schemas()
        yield create_app(platform)


def _exercise(operation: Any, mode: Any, failures: list[str], run_seed: int = 0) -> None:
    @seed(run_seed)
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case: Any) -> None:
        try:
            case.call_and_validate(checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # record each operation's first defect, go on
            failures.append(f"{operation.label} [{mode.value}]: {exc}")
            raise

    with contextlib.suppress(Exception, BaseExceptionGroup):  # already recorded with its request
        run()


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
    run_seed = int(os.environ.get("TESSERA_FUZZ_SEED", random.randrange(1 << 30)))
    random.Random(run_seed).shuffle(operations)
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
            _exercise(operation, mode, failures, run_seed)
        covered += 1
    report = (
        f"{covered} of {len(operations)} operations in {time.monotonic() - started:.1f} s (seed {run_seed})"
    )
    print(report)
    assert not failures, report + "\n\n" + "\n\n".join(dict.fromkeys(failures))
    # a loaded machine covers fewer operations per run (warnings are errors in this suite, so the
    # shortfall is only printed); the shuffled order covers the rest over the next runs
    if covered < len(operations):
        print(f"time budget reached: {report}")
