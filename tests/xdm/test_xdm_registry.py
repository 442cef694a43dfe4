"""Schema registry: built-ins, composition, tenant field groups, union schema, evolution, round trip."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tessera.errors import Conflict, InvalidInput, NotFound, SemanticError
from tessera.xdm import (
    EXPERIENCE_EVENT,
    PROFILE,
    BreakingSchemaChange,
    IdentityDescriptor,
    SchemaRegistry,
    identity_fields,
    is_event_schema,
    is_profile_schema,
)
from tessera.xdm import standard as st

LOYALTY_FIELDS = {
    "loyaltyId": {"type": "string", "title": "Loyalty ID"},
    "tier": {"type": "string", "enum": ["bronze", "silver", "gold"]},
    "joined": {"type": "string", "format": "date"},
}


@pytest.fixture
def reg() -> SchemaRegistry:
    return SchemaRegistry("acme")


def _walk(node: Any) -> list[dict[str, Any]]:
    out = []
    if isinstance(node, dict):
        out.append(node)
        for v in node.values():
            out += _walk(v)
    elif isinstance(node, list):
        for v in node:
            out += _walk(v)
    return out


def test_builtin_classes_and_field_groups(reg: SchemaRegistry) -> None:
    assert {c.id for c in reg.list_classes()} == {PROFILE, EXPERIENCE_EVENT}
    ee = reg.get_class("_xdm.context.experienceevent")
    assert ee.behavior == "time-series" and set(ee.required) == {"_id", "timestamp"}
    assert ee.properties["timestamp"] == {"type": "string", "title": "Timestamp", "format": "date-time"}
    assert reg.get_class("XDM Individual Profile").behavior == "record"
    profile_groups = {g.title for g in reg.list_field_groups(PROFILE)}
    assert {
        "IdentityMap",
        "Demographic Details",
        "Personal Contact Details",
        "Work Contact Details",
    } <= profile_groups
    assert {
        "Segment Membership Details",
        "External Source System Audit Details",
        "Loyalty Details",
    } <= profile_groups
    assert "Commerce Details" not in profile_groups
    assert {"Commerce Details", "Web Details", "Environment Details"} <= {
        g.title for g in reg.list_field_groups(EXPERIENCE_EVENT)
    }
    body = reg.get_field_group("_xdm.context.profile-person-details").to_json()
    assert body["meta:altId"] == "_xdm.context.profile-person-details"
    assert body["properties"]["person"]["properties"]["birthDate"]["format"] == "date"
    with pytest.raises(NotFound):
        reg.get_class("_xdm.context.nothing")


def test_schema_body_is_aep_shaped(reg: SchemaRegistry) -> None:
    s = reg.create_schema(
        "CRM",
        "_xdm.context.profile",
        ["Demographic Details", st.PERSONAL_DETAILS],
        [IdentityDescriptor("personalEmail.address", "Email", primary=True)],
        profile_enabled=True,
    )
    body = s.to_json()
    assert body["$id"].startswith("https://ns.adobe.com/acme/schemas/")
    assert body["meta:altId"] == "_acme.schemas." + body["$id"].rsplit("/", 1)[1]
    assert body["meta:class"] == PROFILE
    assert body["allOf"] == [{"$ref": PROFILE}, {"$ref": st.PERSON_DETAILS}, {"$ref": st.PERSONAL_DETAILS}]
    assert body["meta:extends"] == [PROFILE, st.PERSON_DETAILS, st.PERSONAL_DETAILS]
    assert body["meta:immutableTags"] == ["union"] and body["version"] == "1.0"
    (desc,) = body["meta:identityDescriptors"]
    assert (
        desc["@type"] == "xdm:descriptorIdentity" and desc["xdm:sourceProperty"] == "/personalEmail/address"
    )
    assert desc["xdm:namespace"] == "Email" and desc["xdm:isPrimary"] is True


def test_resolve_composes_class_and_field_groups(reg: SchemaRegistry) -> None:
    s = reg.create_schema("Orders", EXPERIENCE_EVENT, ["Commerce Details", "Web Details"])
    resolved = reg.resolve(s.id)
    props = resolved["properties"]
    assert {"_id", "timestamp", "eventType", "identityMap", "commerce", "productListItems", "web"} <= set(
        props
    )
    assert resolved["required"] == ["_id", "timestamp"]
    order = props["commerce"]["properties"]["order"]["properties"]
    assert order["priceTotal"]["type"] == "number" and order["purchaseID"]["type"] == "string"
    assert props["productListItems"]["items"]["properties"]["quantity"]["type"] == "integer"
    assert props["web"]["properties"]["webPageDetails"]["properties"]["pageViews"]["properties"]["value"]
    assert is_event_schema(s) and not is_profile_schema(s) and reg.behavior(s.id) == "time-series"


def test_union_has_fields_of_all_profile_enabled_schemas_and_tenant_fields(reg: SchemaRegistry) -> None:
    fg = reg.create_field_group("Acme loyalty", LOYALTY_FIELDS, classes=[PROFILE])
    reg.create_schema("CRM", PROFILE, ["IdentityMap", "Demographic Details"], profile_enabled=True)
    reg.create_schema("Loyalty", PROFILE, ["IdentityMap", fg.id], profile_enabled=True)
    reg.create_schema("Draft", PROFILE, ["IdentityMap", "Work Contact Details"])  # not Profile-enabled
    reg.create_schema("Web", EXPERIENCE_EVENT, ["Web Details"], profile_enabled=True)
    union = reg.union_schema("_xdm.context.profile")
    props = union["properties"]
    assert "person" in props and "_acme" in props and "identityMap" in props
    assert "workAddress" not in props and "web" not in props
    tenant = props["_acme"]["properties"]
    assert tenant["tier"]["enum"] == ["bronze", "silver", "gold"] and tenant["joined"]["format"] == "date"
    assert union["$id"] == PROFILE + "__union" and union["meta:altId"] == "_xdm.context.profile__union"
    assert len(union["meta:extends"]) == 2
    assert "web" in reg.union_schema(EXPERIENCE_EVENT)["properties"]


def test_union_is_composed_once_per_state_and_follows_every_change(reg: SchemaRegistry) -> None:
    fg = reg.create_field_group("Acme loyalty", LOYALTY_FIELDS, classes=[PROFILE])
    crm = reg.create_schema("CRM", PROFILE, ["IdentityMap", "Demographic Details"], profile_enabled=True)
    first = reg.union_schema(PROFILE)
    assert reg.union_schema(PROFILE) is first  # nothing changed: the same union, not composed again
    reg.create_schema("Loyalty", PROFILE, ["IdentityMap", fg.id], profile_enabled=True)
    with_loyalty = reg.union_schema(PROFILE)
    assert "_acme" in with_loyalty["properties"] and "_acme" not in first["properties"]
    reg.update_field_group(fg.id, properties={**LOYALTY_FIELDS, "nickname": {"type": "string"}})
    assert "nickname" in reg.union_schema(PROFILE)["properties"]["_acme"]["properties"]
    reg.update_schema(crm.id, field_groups=["IdentityMap", "Demographic Details", "Work Contact Details"])
    assert "workAddress" in reg.union_schema(PROFILE)["properties"]
    assert "workAddress" not in with_loyalty["properties"]  # a union handed out earlier is not changed


def test_union_schema_is_fully_resolved(reg: SchemaRegistry) -> None:
    groups = [g.id for g in reg.list_field_groups(PROFILE)]
    reg.create_schema("All", PROFILE, groups, profile_enabled=True)
    union = reg.union_schema(PROFILE)
    nodes = _walk(union["properties"])
    assert not any("$ref" in n or "allOf" in n for n in nodes)
    for n in nodes:
        if n.get("type") == "array":
            assert isinstance(n["items"], dict)
        if n.get("type") == "object":
            assert "properties" in n or isinstance(n.get("additionalProperties"), dict)
    imap = union["properties"]["identityMap"]
    assert imap["type"] == "object" and imap["meta:xdmType"] == "map"
    assert imap["additionalProperties"]["items"]["properties"]["authenticatedState"]["enum"] == [
        "ambiguous",
        "authenticated",
        "loggedOut",
    ]
    seg = union["properties"]["segmentMembership"]["additionalProperties"]["additionalProperties"]
    assert seg["properties"]["lastQualificationTime"] == {
        "type": "string",
        "title": "Last qualification time",
        "format": "date-time",
    }
    json.dumps(union)  # plain JSON


def test_tenant_fields_live_under_tenant_object(reg: SchemaRegistry) -> None:
    fg = reg.create_field_group("Acme loyalty", LOYALTY_FIELDS)
    assert set(fg.properties) == {"_acme"}
    assert fg.to_json()["meta:tenantNamespace"] == "_acme"
    already = reg.create_field_group(
        "Acme extra", {"_acme": {"type": "object", "properties": {"vip": {"type": "boolean"}}}}
    )
    assert set(already.properties["_acme"]["properties"]) == {"vip"}
    s = reg.create_schema("Loyalty", PROFILE, [fg.id, already.id])
    assert set(reg.resolve(s.id)["properties"]["_acme"]["properties"]) == {
        "loyaltyId",
        "tier",
        "joined",
        "vip",
    }
    issues = reg.validator(s.id).validate({"_acme": {"tier": "platinum", "joined": "2024-02-31"}})
    assert sorted(i.path for i in issues) == ["_acme.joined", "_acme.tier"]


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"tier": {"type": "strin"}}, "_acme.tier"),
        ({"tier": {"type": "string", "format": "phone"}}, "_acme.tier"),
        ({"codes": {"type": "array"}}, "_acme.codes"),
        ({"a": {"type": "object", "properties": {"b": {"$ref": "x"}}}}, "_acme.a.b"),
        ({"bad name": {"type": "string"}}, "_acme"),
        (
            {"_acme": {"type": "object", "properties": {"a": {"type": "string"}}}, "b": {"type": "string"}},
            "properties",
        ),
        ({"_acme": {"type": "string"}}, "_acme"),
        ({"code": {"type": "string", "pattern": "(["}}, "_acme.code"),
    ],
)
def test_malformed_tenant_fields_refused_with_path(
    reg: SchemaRegistry, fields: dict[str, Any], path: str
) -> None:
    with pytest.raises(InvalidInput) as exc:
        reg.create_field_group("Broken", fields)
    assert exc.value.path == path


def test_field_group_from_aep_definitions_form() -> None:
    from tessera.xdm import FieldGroup

    body = {
        "$id": "https://ns.adobe.com/acme/mixins/x",
        "title": "X",
        "meta:intendedToExtend": [PROFILE],
        "definitions": {
            "custom": {"properties": {"_acme": {"type": "object", "properties": {"a": {"type": "string"}}}}}
        },
        "allOf": [{"$ref": "#/definitions/custom"}],
    }
    fg = FieldGroup.from_json(body)
    assert fg.properties["_acme"]["properties"]["a"] == {"type": "string"}
    assert fg.classes == (PROFILE,)


def test_conflicting_field_definitions_refused(reg: SchemaRegistry) -> None:
    a = reg.create_field_group("A", {"score": {"type": "string"}})
    b = reg.create_field_group("B", {"score": {"type": "integer"}})
    with pytest.raises(Conflict) as exc:
        reg.create_schema("Both", PROFILE, [a.id, b.id])
    assert exc.value.path == "_acme.score"
    reg.create_schema("OnlyA", PROFILE, ["IdentityMap", a.id], profile_enabled=True)
    with pytest.raises(Conflict):
        reg.create_schema("OnlyB", PROFILE, ["IdentityMap", b.id], profile_enabled=True)
    assert [s.title for s in reg.list_schemas()] == ["OnlyA"]


def test_field_group_must_suit_class(reg: SchemaRegistry) -> None:
    with pytest.raises(InvalidInput) as exc:
        reg.create_schema("Wrong", PROFILE, ["Commerce Details"])
    assert "cannot be used with class" in exc.value.message


def test_titles_unique(reg: SchemaRegistry) -> None:
    reg.create_schema("CRM", PROFILE)
    with pytest.raises(Conflict):
        reg.create_schema("CRM", PROFILE)


def test_identity_descriptors_checked(reg: SchemaRegistry) -> None:
    groups = ["Personal Contact Details", "Demographic Details"]
    with pytest.raises(InvalidInput) as exc:
        reg.create_schema("A", PROFILE, groups, [IdentityDescriptor("personalEmail.adress", "Email")])
    assert exc.value.path == "personalEmail.adress"
    with pytest.raises(InvalidInput):
        reg.create_schema("B", PROFILE, groups, [IdentityDescriptor("person.birthYear", "X")])
    two = [
        IdentityDescriptor("personalEmail.address", "Email", primary=True),
        IdentityDescriptor("mobilePhone.number", "Phone", primary=True),
    ]
    with pytest.raises(InvalidInput):
        reg.create_schema("C", PROFILE, groups, two)
    s = reg.create_schema(
        "D",
        PROFILE,
        groups,
        [
            {"path": "mobilePhone.number", "namespace": "Phone"},
            {"xdm:sourceProperty": "/personalEmail/address", "xdm:namespace": "Email", "xdm:isPrimary": True},
        ],
    )
    fields = identity_fields(s)
    assert [(f.path, f.namespace, f.primary) for f in fields] == [
        ("personalEmail.address", "Email", True),
        ("mobilePhone.number", "Phone", False),
    ]
    assert reg.identity_descriptors("D") == fields
    assert s.primary_identity == fields[0]


def test_profile_enablement_needs_a_primary_identity(reg: SchemaRegistry) -> None:
    with pytest.raises(SemanticError):
        reg.create_schema("NoId", PROFILE, ["Demographic Details"], profile_enabled=True)
    reg.create_schema("WithMap", PROFILE, ["IdentityMap"], profile_enabled=True)
    reg.create_schema(
        "WithDescriptor",
        PROFILE,
        ["Personal Contact Details"],
        [IdentityDescriptor("personalEmail.address", "Email", primary=True)],
        profile_enabled=True,
    )


def _enabled(reg: SchemaRegistry) -> tuple[str, str]:
    fg = reg.create_field_group("Acme loyalty", LOYALTY_FIELDS, classes=[PROFILE])
    s = reg.create_schema(
        "Loyalty",
        PROFILE,
        ["IdentityMap", "Demographic Details", fg.id],
        [IdentityDescriptor("_acme.loyaltyId", "LoyaltyId")],
        profile_enabled=True,
    )
    return s.id, fg.id


def test_additive_changes_accepted_once_enabled(reg: SchemaRegistry) -> None:
    sid, fgid = _enabled(reg)
    grown = {**LOYALTY_FIELDS, "points": {"type": "number"}}
    grown["tier"] = {"type": "string", "enum": ["bronze", "silver", "gold", "platinum"]}
    fg = reg.update_field_group(fgid, properties=grown)
    assert fg.version == "1.1"
    s = reg.update_schema(
        sid,
        field_groups=[
            "IdentityMap",
            "Demographic Details",
            fgid,
            "Loyalty Details",
            "Personal Contact Details",
        ],
        identities=[*reg.get_schema(sid).identities, IdentityDescriptor("personalEmail.address", "Email")],
        title="Loyalty members",
    )
    assert [d.path for d in s.identities] == ["_acme.loyaltyId", "personalEmail.address"]
    assert s.version == "1.1" and s.title == "Loyalty members"
    union = reg.union_schema(PROFILE)["properties"]
    assert "loyalty" in union and "points" in union["_acme"]["properties"]
    # the cached validator follows the change
    assert [i.path for i in reg.validator(sid).validate({"_acme": {"points": "many"}})] == ["_acme.points"]


@pytest.mark.parametrize(
    "change",
    [
        {"field_groups": ["IdentityMap"]},
        {"identities": []},
        {"identities": [IdentityDescriptor("_acme.loyaltyId", "CRMID")]},
        {"profile_enabled": False},
    ],
    ids=["drop-field-group", "drop-descriptor", "change-descriptor", "disable-profile"],
)
def test_breaking_schema_changes_refused_once_enabled(reg: SchemaRegistry, change: dict[str, Any]) -> None:
    sid, _ = _enabled(reg)
    before = reg.get_schema(sid)
    with pytest.raises(BreakingSchemaChange) as exc:
        reg.update_schema(sid, **change)
    assert exc.value.status == 409 and "only additive changes" in exc.value.message
    assert reg.get_schema(sid) == before


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"tier": LOYALTY_FIELDS["tier"], "joined": LOYALTY_FIELDS["joined"]}, "_acme.loyaltyId"),
        ({**LOYALTY_FIELDS, "joined": {"type": "string", "format": "date-time"}}, "_acme.joined"),
        ({**LOYALTY_FIELDS, "tier": {"type": "string", "enum": ["gold"]}}, "_acme.tier"),
        ({**LOYALTY_FIELDS, "loyaltyId": {"type": "integer"}}, "_acme.loyaltyId"),
    ],
    ids=["remove-field", "change-format", "narrow-enum", "retype"],
)
def test_breaking_field_group_changes_refused_when_used_by_profile(
    reg: SchemaRegistry, fields: dict[str, Any], path: str
) -> None:
    _, fgid = _enabled(reg)
    with pytest.raises(BreakingSchemaChange) as exc:
        reg.update_field_group(fgid, properties=fields)
    assert exc.value.path == path
    assert reg.get_field_group(fgid).properties["_acme"]["properties"] == LOYALTY_FIELDS


def test_schemas_not_enabled_may_change_freely(reg: SchemaRegistry) -> None:
    fg = reg.create_field_group("Acme loyalty", LOYALTY_FIELDS, classes=[PROFILE])
    s = reg.create_schema("Draft", PROFILE, ["Demographic Details", fg.id])
    reg.update_field_group(fg.id, properties={"tier": {"type": "integer"}})
    s = reg.update_schema(s.id, field_groups=[fg.id])
    assert set(reg.resolve(s.id)["properties"]) == {"_id", "personID", "_repo", "_acme"}


def test_delete(reg: SchemaRegistry) -> None:
    fg = reg.create_field_group("Acme loyalty", LOYALTY_FIELDS)
    s = reg.create_schema("Loyalty", PROFILE, [fg.id])
    with pytest.raises(Conflict):
        reg.delete_field_group(fg.id)
    with pytest.raises(SemanticError):
        reg.delete_field_group("IdentityMap")
    reg.delete_schema(s.alt_id or s.id)
    reg.delete_field_group("Acme loyalty")
    assert reg.list_schemas() == [] and all(g.tenant is None for g in reg.list_field_groups())
    with pytest.raises(NotFound):
        reg.get_schema("Loyalty")


def test_round_trip_through_plain_json(reg: SchemaRegistry) -> None:
    sid, fgid = _enabled(reg)
    reg.create_schema("Events", EXPERIENCE_EVENT, ["Commerce Details", "Web Details"], profile_enabled=True)
    dumped = json.loads(json.dumps(reg.to_json()))
    again = SchemaRegistry.from_json(dumped)
    assert again.tenant == "acme"
    assert again.list_schemas() == reg.list_schemas()
    assert again.get_field_group(fgid) == reg.get_field_group(fgid)
    assert again.union_schema(PROFILE) == reg.union_schema(PROFILE)
    assert again.resolve(sid) == reg.resolve(sid)
    assert again.to_json() == dumped
    # and it keeps enforcing the rules
    with pytest.raises(BreakingSchemaChange):
        again.update_schema(sid, profile_enabled=False)


def test_bad_tenant_refused() -> None:
    with pytest.raises(InvalidInput):
        SchemaRegistry("not a tenant")


def test_dump_with_missing_field_group_refused(reg: SchemaRegistry) -> None:
    fg = reg.create_field_group("Acme loyalty", LOYALTY_FIELDS)
    reg.create_schema("Loyalty", PROFILE, [fg.id])
    dumped = reg.to_json()
    dumped["fieldGroups"] = []
    with pytest.raises(InvalidInput) as exc:
        SchemaRegistry.from_json(dumped)
    assert exc.value.path == fg.id


def test_single_field_group_ref_accepted(reg: SchemaRegistry) -> None:
    s = reg.create_schema("One", PROFILE, "Demographic Details")
    assert s.field_groups == (st.PERSON_DETAILS,)
