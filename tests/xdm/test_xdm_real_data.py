"""Tessera's own XDM definitions against real Adobe sample records (AEP field names)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tessera.xdm import EXPERIENCE_EVENT, PROFILE, SchemaRegistry
from tessera.xdm import standard as st

DATA = Path(__file__).resolve().parents[1] / "data" / "xdm"


@pytest.fixture(scope="module")
def reg() -> SchemaRegistry:
    reg = SchemaRegistry("acme")
    reg.create_schema("CRM", PROFILE, [st.IDENTITY_MAP, st.PERSON_DETAILS, st.PERSONAL_DETAILS])
    reg.create_schema("Luma web", EXPERIENCE_EVENT, [st.COMMERCE, st.WEB, st.ENVIRONMENT])
    return reg


def test_crm_profiles_every_field_known_and_bad_birth_dates_caught(reg: SchemaRegistry) -> None:
    records: list[dict[str, Any]] = json.loads(
        (DATA / "adobe-etl-reference" / "CRM_profiles.json").read_text()
    )
    assert len(records) == 16
    # strict: every field these hand-mapped profiles use is defined by our field groups
    validator = reg.validator("CRM", allow_unknown=False)
    rejected = {n: validator.validate(r) for n, r in enumerate(records)}
    rejected = {n: issues for n, issues in rejected.items() if issues}
    # Four rows carry a one-digit day ("1979-01-3"): not an XDM date.
    assert sorted(rejected) == [3, 9, 12, 15]
    for issues in rejected.values():
        assert [(i.path, i.expected) for i in issues] == [("person.birthDate", "string (date)")]


def test_luma_events_validate(reg: SchemaRegistry) -> None:
    rows = pq.read_table(DATA / "adobe-dsw-reference" / "luma_post.snappy.parquet").to_pylist()
    assert len(rows) == 23055
    # Parquet gives null for every absent struct member, so nulls are allowed here (the ingest
    # stage decides how it treats them); timestamps arrive as datetime objects.
    validator = reg.validator("Luma web", allow_null=True)
    assert [n for n, row in enumerate(rows) if validator.validate(row)] == []
    strict_nulls = reg.validator("Luma web")
    assert strict_nulls.validate(rows[0])  # ... and nulls are reported when not allowed
    broken = dict(rows[0], timestamp="2018-12-10 late", productListItems=[{"quantity": "one"}])
    assert sorted(i.path for i in validator.validate(broken)) == ["productListItems[0].quantity", "timestamp"]
