"""Identities carried by a record: its ``identityMap`` and its identity-descriptor fields.

Only extraction lives here; which values are acceptable (ECID length, junk values, limits) is
the ingest stage's rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tessera.model import Identity
from tessera.xdm.paths import values_at
from tessera.xdm.schemas import IdentityDescriptor


@dataclass(frozen=True, slots=True)
class RecordIdentity:
    """One identity found in a record.

    Attributes:
        identity: namespace code and value, exactly as in the record.
        primary: marked primary (``identityMap`` item ``primary`` or a primary descriptor).
        source: ``identityMap`` or the descriptor's field path.
        authenticated_state: ``identityMap`` ``authenticatedState`` (``None`` for descriptor fields).
    """

    identity: Identity
    primary: bool
    source: str
    authenticated_state: str | None = None


def identity_map_identities(record: dict[str, Any]) -> list[RecordIdentity]:
    """Identities in the record's ``identityMap`` (plain key spelling), in document order.

    Items without a string ``id`` are skipped (validation reports them).

    >>> [str(i.identity) for i in identity_map_identities({"identityMap": {"Email": [{"id": "a@b.c"}]}})]
    ['Email:a@b.c']
    """
    found: list[RecordIdentity] = []
    imap = record.get("identityMap")
    if not isinstance(imap, dict):
        return found
    for namespace, items in imap.items():
        if not isinstance(items, list):
            continue
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            state = item.get("authenticatedState")
            found.append(
                RecordIdentity(
                    Identity(str(namespace), item["id"]),
                    item.get("primary") is True,
                    "identityMap",
                    state if isinstance(state, str) else "ambiguous",
                )
            )
    return found


def descriptor_identities(
    record: dict[str, Any], descriptors: Iterable[IdentityDescriptor]
) -> list[RecordIdentity]:
    """Identities found at the record's identity-descriptor fields (string values only).

    >>> d = IdentityDescriptor("personalEmail.address", "Email", primary=True)
    >>> descriptor_identities({"personalEmail": {"address": "a@b.c"}}, [d])[0].primary
    True
    """
    found: list[RecordIdentity] = []
    for d in descriptors:
        for value in values_at(record, d.path):
            if isinstance(value, str):
                found.append(RecordIdentity(Identity(d.namespace, value), d.primary, d.path))
    return found


def record_identities(
    record: dict[str, Any], descriptors: Iterable[IdentityDescriptor] = ()
) -> list[RecordIdentity]:
    """All identities of a record: descriptor fields first, then ``identityMap``."""
    return descriptor_identities(record, descriptors) + identity_map_identities(record)


__all__ = ["RecordIdentity", "descriptor_identities", "identity_map_identities", "record_identities"]
