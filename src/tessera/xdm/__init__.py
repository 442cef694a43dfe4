"""XDM schema language: classes, field groups, schemas, union schemas and record validation.

The *validate* stage of the flow. Pure: no I/O; the registry round-trips through plain dicts.

>>> from tessera.xdm import SchemaRegistry, PROFILE
>>> reg = SchemaRegistry("acme")
>>> s = reg.create_schema("CRM", PROFILE, ["Demographic Details"])
>>> [i.path for i in reg.validator(s.id).validate({"person": {"gender": "robot"}})]
['person.gender']
"""

from tessera.xdm.errors import BreakingSchemaChange
from tessera.xdm.identities import (
    RecordIdentity,
    descriptor_identities,
    identity_map_identities,
    record_identities,
)
from tessera.xdm.paths import normalize_keys, values_at
from tessera.xdm.schemas import (
    FieldGroup,
    IdentityDescriptor,
    Schema,
    SchemaRegistry,
    XdmClass,
    identity_fields,
    is_event_schema,
    is_profile_schema,
)
from tessera.xdm.standard import EXPERIENCE_EVENT, PROFILE
from tessera.xdm.validate import RecordValidator, ValidationIssue, validate

__all__ = [
    "BreakingSchemaChange",
    "EXPERIENCE_EVENT",
    "FieldGroup",
    "IdentityDescriptor",
    "PROFILE",
    "RecordIdentity",
    "RecordValidator",
    "Schema",
    "SchemaRegistry",
    "ValidationIssue",
    "XdmClass",
    "descriptor_identities",
    "identity_fields",
    "identity_map_identities",
    "is_event_schema",
    "is_profile_schema",
    "normalize_keys",
    "record_identities",
    "validate",
    "values_at",
]
