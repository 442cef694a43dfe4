"""The real Adobe sample files shipped with the demo (a second source next to the generated data).

See ``data/SOURCES.md`` for origin, commit and licence (Apache-2.0, licence files alongside).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data"
LUMA_EVENTS = DATA_DIR / "luma" / "luma_post.snappy.parquet"
CRM_CSV = DATA_DIR / "crm" / "CRM_profiles.csv"
CRM_JSON = DATA_DIR / "crm" / "CRM_profiles.json"

LUMA_IDENTITY_FIELDS: dict[str, dict[str, Any]] = {
    "endUserIDs._experience.mcid.id": {
        "namespace": "ECID",
        "primary": True,
        "authenticatedState": "ambiguous",
    },
    "endUserIDs._experience.aaid.id": {
        "namespace": "AAID",
        "primary": False,
        "authenticatedState": "ambiguous",
    },
}
"""Luma keeps identities in ``endUserIDs`` (``identityMap`` is null in every row): ``mcid`` (Experience
Cloud ID, 38 digits, flagged primary in the file) → ``ECID``; ``aaid`` (Analytics legacy id) → ``AAID``.
One row has no ``mcid`` and so only an AAID."""

CRM_CSV_MAPPING: dict[str, Any] = {
    "TITLE": "person.name.courtesyTitle",
    "F_NAME": "person.name.firstName",
    "L_NAME": "person.name.lastName",
    "GENDER": "person.gender",
    "MONTH_AND_DATE": "person.birthDayAndMonth",
    "DOB": "person.birthDate",
    "YOB": {"path": "person.birthYear", "type": "integer"},
    "EMAIL": "personalEmail.address",
    "ID1": "_tessera.crm.crmId",
    "ID2": "_tessera.crm.ecid",
    "ID3": "_tessera.crm.loyaltyId",
    "ID4": "_tessera.crm.secondEcid",
    "PHONE": "homePhone.number",
    "STREET": "homeAddress.street1",
    "CITY": "homeAddress.city",
    "STATE": "homeAddress.stateProvince",
    "COUNTRY": "homeAddress.country",
    "ZIP": "homeAddress.postalCode",
    "LAT": {"path": "homeAddress._schema.latitude", "type": "number"},
    "LONG": {"path": "homeAddress._schema.longitude", "type": "number"},
}
"""Column → XDM path for ``CRM_profiles.csv``, following Adobe's own mapping of its first 16 rows
(``CRM_profiles.json``); the four id columns go to a tenant field group and become identities
through :data:`CRM_IDENTITY_FIELDS`. ``EMAIL2`` (always equal to ``EMAIL``) is not mapped. Traps
kept on purpose: 80 rows have un-padded dates such as ``1979-01-3`` (invalid ``format: date``)."""

CRM_IDENTITY_FIELDS: dict[str, dict[str, Any]] = {
    "_tessera.crm.crmId": {"namespace": "CRMID", "primary": False, "authenticatedState": "authenticated"},
    "_tessera.crm.ecid": {"namespace": "ECID", "primary": False},
    "_tessera.crm.secondEcid": {"namespace": "ECID", "primary": False},
    "_tessera.crm.loyaltyId": {
        "namespace": "LOYALTYID",
        "primary": True,
        "authenticatedState": "authenticated",
    },
    "personalEmail.address": {"namespace": "Email", "primary": False, "authenticatedState": "authenticated"},
}
"""Identities of a mapped CRM CSV row, as in Adobe's JSON (LOYALTYID primary; a custom namespace)."""


@dataclass(frozen=True)
class RealDataset:
    """A shipped sample file and how to read it (arguments for ``tessera.ingest.readers.read_file``)."""

    name: str
    xdm_class: str
    path: Path
    format: str
    records: int
    mapping: dict[str, Any] | None = None
    identity_fields: dict[str, dict[str, Any]] | None = None
    notes: str = field(default="")


REAL_DATASETS: tuple[RealDataset, ...] = (
    RealDataset(
        "luma_web_events", "experienceevent", LUMA_EVENTS, "parquet", 23_055,
        identity_fields=LUMA_IDENTITY_FIELDS,
        notes="Adobe Analytics events from the Luma demo site, 2018-11-05..2018-12-17",
    ),
    RealDataset(
        "luma_crm_profiles", "profile", CRM_CSV, "csv", 259,
        mapping=CRM_CSV_MAPPING, identity_fields=CRM_IDENTITY_FIELDS,
        notes="fictitious CRM rows; 35 e-mails repeat, 80 rows have invalid dates",
    ),
    RealDataset(
        "luma_crm_profiles_xdm", "profile", CRM_JSON, "json", 16,
        notes="Adobe's XDM mapping of the first 16 CSV rows (identityMap included)",
    ),
)  # fmt: skip
