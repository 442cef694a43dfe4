from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "pql"
NOW = datetime(2024, 5, 15, 12, 30, tzinfo=UTC)  # a Wednesday


@pytest.fixture(scope="session")
def schemas() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / "schemas.json").read_text())
    return loaded
