"""Identity refusal rules for one row (``spec/aep.md`` §c3 items 6-9, §e1).

A pure function the ingest stage calls before the graph sees a row: junk values are refused one
by one (the rest of the row still counts), exact duplicates are merged, and a row carrying more
than 20 distinct identities is refused as a whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tessera.model import Identity

MAX_IDENTITIES_PER_ROW = 20
"""At most this many distinct identities in one record or event (§c3.7)."""

MAX_VALUE_LENGTH = 1024
"""Identity values longer than this are refused (§c3.9)."""

JUNK_VALUES = frozenset({"null", "anonymous", "invalid"})
"""Values refused outright (compared case-insensitively after trimming)."""

ECID_LENGTH = 38


@dataclass(frozen=True, slots=True)
class IdentityRefusal:
    """One identity refused by validation, with a sentence saying why."""

    identity: Identity
    reason: str


@dataclass(frozen=True, slots=True)
class ValidatedRow:
    """The outcome of :func:`validate_row`.

    Attributes:
        identities: the accepted identities, duplicates merged, in first-seen order.
        refused: one entry per refused identity.
        row_refused: a reason when the whole row is refused (then ``identities`` is empty).
    """

    identities: tuple[Identity, ...]
    refused: tuple[IdentityRefusal, ...] = ()
    row_refused: str | None = None


def refusal_reason(identity: Identity, *, max_length: int = MAX_VALUE_LENGTH) -> str | None:
    """Why one identity value is refused, or ``None`` when it is acceptable.

    >>> refusal_reason(Identity("ECID", "123"))
    'ECID:123 is refused: an ECID must be exactly 38 digits (got 3 characters).'
    >>> refusal_reason(Identity("Email", "a@b.c")) is None
    True
    """
    value = identity.id
    label = f"{identity.namespace}:{value[:64]}"
    if not value.strip():
        return f"{identity.namespace} identity is refused: its value is blank."
    if value.strip().lower() in JUNK_VALUES:
        return f"{label} is refused: {value.strip()!r} is a placeholder, not an identity."
    if len(value) > max_length:
        return (
            f"{label}… is refused: the value has {len(value)} characters, more than the {max_length} allowed."
        )
    if identity.namespace == "ECID" and not (
        len(value) == ECID_LENGTH and value.isascii() and value.isdigit()
    ):
        return (
            f"{label} is refused: an ECID must be exactly {ECID_LENGTH} digits (got {len(value)} characters)."
        )
    return None


def validate_row(
    identities: Iterable[Identity],
    *,
    max_identities: int = MAX_IDENTITIES_PER_ROW,
    max_length: int = MAX_VALUE_LENGTH,
) -> ValidatedRow:
    """Apply the per-identity refusal rules and the per-row count limit to one row.

    Args:
        identities: the identities found in one record or event (identityMap and descriptors).
        max_identities: distinct accepted identities allowed in one row.
        max_length: longest accepted value.

    Returns:
        The cleaned identity list (exact duplicates merged, order kept) and the refusals.

    >>> r = validate_row([Identity("Email", "a@b.c"), Identity("Email", "a@b.c"), Identity("Phone", "null")])
    >>> [str(i) for i in r.identities], len(r.refused)
    (['Email:a@b.c'], 1)
    """
    kept: list[Identity] = []
    seen: set[Identity] = set()
    refused: list[IdentityRefusal] = []
    for ident in identities:
        if ident in seen:
            continue  # exact duplicates are merged, not refused (§c3.6)
        seen.add(ident)
        reason = refusal_reason(ident, max_length=max_length)
        if reason is None:
            kept.append(ident)
        else:
            refused.append(IdentityRefusal(ident, reason))
    if len(kept) > max_identities:
        return ValidatedRow(
            (),
            tuple(refused),
            f"The row carries {len(kept)} distinct identities; at most {max_identities} are allowed in one row.",
        )
    return ValidatedRow(tuple(kept), tuple(refused))
