"""Identity types and the standard namespaces (``spec/aep.md`` §a2, §c2).

A namespace is the "kind" half of an identity (``Email``, ``ECID``, ``CRMID``); its identity type
decides whether identities of it build graphs and in which order they are removed when a graph
grows past its size limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class IdentityType(StrEnum):
    """The identity type of a namespace (immutable once the namespace exists)."""

    COOKIE = "COOKIE"
    DEVICE = "DEVICE"
    CROSS_DEVICE = "CROSS_DEVICE"
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    NON_PEOPLE = "NON_PEOPLE"
    PARTNER = "PARTNER"


# Non-people identifiers (SKUs, store ids) and partner ids never link people together.
_NO_GRAPH = frozenset({IdentityType.NON_PEOPLE, IdentityType.PARTNER})

# Graph-limit removal order (§c4): cookies go first, then devices, then people identifiers.
_REMOVAL_RANK = {
    IdentityType.COOKIE: 0,
    IdentityType.DEVICE: 1,
    IdentityType.CROSS_DEVICE: 2,
    IdentityType.EMAIL: 2,
    IdentityType.PHONE: 2,
    IdentityType.NON_PEOPLE: 3,
    IdentityType.PARTNER: 3,
}


@dataclass(frozen=True, slots=True)
class Namespace:
    """One identity namespace.

    Attributes:
        code: the case-sensitive symbol used in identities (``"Email"``).
        id: numeric namespace id, or ``None`` where the reference platform's id is unknown.
        name: display name.
        type: identity type.
        custom: True for organisation-defined namespaces.
    """

    code: str
    id: int | None
    name: str
    type: IdentityType
    custom: bool = False

    @property
    def builds_graph(self) -> bool:
        """Whether identities of this namespace are linked into identity graphs."""
        return builds_graph(self.type)


STANDARD_NAMESPACES: tuple[Namespace, ...] = (
    Namespace("CORE", 0, "CORE (Adobe Audience Manager UUID)", IdentityType.COOKIE),
    Namespace("ECID", 4, "ECID (Experience Cloud ID)", IdentityType.COOKIE),
    Namespace("Email", 6, "Email", IdentityType.EMAIL),
    Namespace("Phone", 7, "Phone", IdentityType.PHONE),
    Namespace("WAID", 8, "Windows AID", IdentityType.DEVICE),
    Namespace("TNTID", 9, "TNTID (Adobe Target)", IdentityType.COOKIE),
    Namespace("AAID", 10, "Adobe Analytics (Legacy ID)", IdentityType.COOKIE),
    Namespace("AdCloud", 411, "AdCloud", IdentityType.COOKIE),
    Namespace("GAID", 20914, "Google Ad ID", IdentityType.DEVICE),
    Namespace("IDFA", 20915, "Apple IDFA", IdentityType.DEVICE),
    Namespace("Email_LC_SHA256", None, "Emails (SHA256, lowercased)", IdentityType.EMAIL),
    Namespace("Phone_SHA256", None, "Phone (SHA256)", IdentityType.PHONE),
)
"""The standard namespaces of §c2 (numeric ids where the reference platform publishes them)."""

DEFAULT_CUSTOM_NAMESPACES: tuple[Namespace, ...] = (
    Namespace("CRMID", None, "CRM ID", IdentityType.CROSS_DEVICE, custom=True),
    Namespace("loginID", None, "Login ID", IdentityType.CROSS_DEVICE, custom=True),
)
"""Custom person namespaces every new sandbox starts with (Adobe's examples use them)."""

DEFAULT_NAMESPACES: tuple[Namespace, ...] = STANDARD_NAMESPACES + DEFAULT_CUSTOM_NAMESPACES


def builds_graph(kind: IdentityType) -> bool:
    """Whether identities of this type are linked into graphs.

    >>> builds_graph(IdentityType.COOKIE), builds_graph(IdentityType.PARTNER)
    (True, False)
    """
    return kind not in _NO_GRAPH


def removal_rank(kind: IdentityType) -> int:
    """Order in which the graph limit removes identities: lower goes first.

    >>> removal_rank(IdentityType.COOKIE) < removal_rank(IdentityType.DEVICE) < removal_rank(IdentityType.EMAIL)
    True
    """
    return _REMOVAL_RANK[kind]


def namespace_types(extra: Iterable[Namespace] = ()) -> dict[str, IdentityType]:
    """Namespace code → identity type for the default namespaces plus ``extra``.

    >>> namespace_types()["ECID"]
    <IdentityType.COOKIE: 'COOKIE'>
    """
    out = {ns.code: ns.type for ns in DEFAULT_NAMESPACES}
    out.update((ns.code, ns.type) for ns in extra)
    return out


def type_of(code: str, types: Mapping[str, IdentityType]) -> IdentityType:
    """The type of a namespace code; unknown codes count as person (cross-device) identifiers.

    Unknown namespaces are treated as people ids because that is the safest default for the
    graph limit: they are removed last, after cookies and devices.

    >>> type_of("LoyaltyId", namespace_types())
    <IdentityType.CROSS_DEVICE: 'CROSS_DEVICE'>
    """
    return types.get(code, IdentityType.CROSS_DEVICE)
