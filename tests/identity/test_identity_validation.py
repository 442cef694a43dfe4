from __future__ import annotations

import pytest

from tessera.identity import validate_row
from tessera.identity.validation import refusal_reason
from tessera.model import Identity

ECID_OK = "1" * 38


@pytest.mark.parametrize(
    ("identity", "fragment"),
    [
        (Identity("ECID", "123"), "exactly 38 digits"),
        (Identity("ECID", "1" * 39), "exactly 38 digits"),
        (Identity("ECID", "a" * 38), "exactly 38 digits"),
        (Identity("Email", "null"), "placeholder"),
        (Identity("Email", " Anonymous "), "placeholder"),
        (Identity("Phone", "invalid"), "placeholder"),
        (Identity("CRMID", ""), "blank"),
        (Identity("CRMID", "   "), "blank"),
        (Identity("CRMID", "x" * 1025), "more than the 1024 allowed"),
    ],
)
def test_junk_values_are_refused_with_a_sentence_naming_the_identity(
    identity: Identity, fragment: str
) -> None:
    reason = refusal_reason(identity)
    assert reason is not None and fragment in reason
    assert identity.namespace in reason


def test_good_values_pass() -> None:
    assert refusal_reason(Identity("ECID", ECID_OK)) is None
    assert refusal_reason(Identity("CRMID", "x" * 1024)) is None


def test_duplicates_merged_refused_reported_rest_kept() -> None:
    row = [Identity("Email", "a@x"), Identity("Email", "a@x"), Identity("ECID", "12"), Identity("CRMID", "7")]
    out = validate_row(row)
    assert out.identities == (Identity("Email", "a@x"), Identity("CRMID", "7"))
    assert [r.identity for r in out.refused] == [Identity("ECID", "12")]
    assert out.row_refused is None


def test_more_than_twenty_identities_refuses_the_row() -> None:
    out = validate_row([Identity("Email", f"u{i}@x") for i in range(21)])
    assert out.identities == ()
    assert out.row_refused is not None and "21" in out.row_refused and "20" in out.row_refused
    assert validate_row([Identity("Email", f"u{i}@x") for i in range(20)]).row_refused is None
