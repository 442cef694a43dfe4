"""Conformance against Adobe's own XDM repository (copied with its licence to tests/data/xdm).

1. Every ``*.example.*.json`` validates against its sibling ``*.schema.json`` and every
   ``*.invalid.*.json`` is rejected, with Adobe's schemas loaded into a ``referencing`` registry
   (all ``$ref``s resolve locally) and format checking on.
2. The examples of the classes and field groups Tessera defines itself, converted to the plain
   key spelling, validate against Tessera's composed schemas too; known-wrong values are refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT6

from tessera.xdm import EXPERIENCE_EVENT, PROFILE, SchemaRegistry, normalize_keys
from tessera.xdm import standard as st

ADOBE = Path(__file__).resolve().parents[1] / "data" / "xdm" / "adobe-xdm"


def _sibling_schema(doc: Path) -> Path | None:
    for marker in (".example.", ".invalid."):
        if marker in doc.name:
            schema = doc.with_name(doc.name.split(marker)[0] + ".schema.json")
            return schema if schema.exists() else None
    return None


DOCS = sorted(
    p
    for p in ADOBE.rglob("*.json")
    if (".example." in p.name or ".invalid." in p.name) and _sibling_schema(p)
)


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def adobe_registry() -> Registry[Any]:
    resources = []
    for path in ADOBE.rglob("*.schema.json"):
        contents = _load(path)
        resources.append((contents["$id"], Resource.from_contents(contents, default_specification=DRAFT6)))
    return Registry().with_resources(resources)


def _errors(schema: dict[str, Any], doc: Any, registry: Registry[Any]) -> list[str]:
    validator = jsonschema.Draft6Validator(
        schema, registry=registry, format_checker=jsonschema.Draft6Validator.FORMAT_CHECKER
    )
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(doc)]


def test_the_corpus_is_there() -> None:
    # Guards against a silently empty parametrisation (e.g. data not copied).
    assert (ADOBE / "LICENSE").exists() and (ADOBE / "SOURCES.md").exists()
    assert sum(".example." in p.name for p in DOCS) >= 500
    assert sum(".invalid." in p.name for p in DOCS) >= 2


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ADOBE)))
def test_adobe_document_against_its_schema(doc: Path, adobe_registry: Registry[Any]) -> None:
    schema_path = _sibling_schema(doc)
    assert schema_path is not None
    errors = _errors(_load(schema_path), _load(doc), adobe_registry)
    if ".invalid." in doc.name:
        assert errors, f"{doc.name} should be rejected"
    else:
        assert errors == []


def _with_wrong_values(profile: dict[str, Any]) -> dict[str, Any]:
    bad: dict[str, Any] = json.loads(json.dumps(profile))
    bad["xdm:person"] = {"xdm:gender": "robot"}
    bad["xdm:identityMap"] = {"ECID": [{"xdm:id": "x", "xdm:authenticatedState": "weird"}]}
    return bad


def test_class_alone_checks_almost_nothing_composition_does(adobe_registry: Registry[Any]) -> None:
    """The trap of external-data.md §1.3: field groups must be composed with the class."""
    bad = _with_wrong_values(_load(ADOBE / "components/classes/profile.example.1.json"))
    class_only = {"$ref": PROFILE}
    composed = {
        "allOf": [
            {"$ref": ref}
            for ref in (PROFILE, st.IDENTITY_MAP, st.PERSON_DETAILS, st.PERSONAL_DETAILS, st.WORK_DETAILS)
        ]
    }
    assert _errors(class_only, bad, adobe_registry) == []
    errors = _errors(composed, bad, adobe_registry)
    assert any("robot" in e for e in errors) and any("weird" in e for e in errors)


# ---- the same examples against Tessera's own definitions ---------------------------------------

PROFILE_GROUPS = [
    st.IDENTITY_MAP,
    st.PERSON_DETAILS,
    st.PERSONAL_DETAILS,
    st.WORK_DETAILS,
    st.SEGMENTATION,
    st.LOYALTY,
    st.CONSENTS,
    st.SOURCE_AUDIT,
]
EVENT_GROUPS = [st.COMMERCE, st.WEB, st.ENVIRONMENT, st.SOURCE_AUDIT]
OWN = {
    "classes/profile": "profile",
    "classes/experienceevent": "event",
    "fieldgroups/shared/identitymap": "profile",
    "fieldgroups/profile/profile-person-details": "profile",
    "fieldgroups/profile/profile-personal-details": "profile",
    "fieldgroups/profile/profile-work-details": "profile",
    "fieldgroups/shared/segmentation": "profile",
    "fieldgroups/profile/profile-loyalty-details": "profile",
    "fieldgroups/profile/profile-consents": "profile",
    "fieldgroups/shared/external-source-system-audit-details": "profile",
    "fieldgroups/experience-event/experienceevent-commerce": "event",
    "fieldgroups/experience-event/experienceevent-web": "event",
    "fieldgroups/experience-event/experienceevent-environment-details": "event",
}
OWN_DOCS = [
    (path, kind)
    for stem, kind in OWN.items()
    for path in sorted((ADOBE / "components").glob(stem + ".example.*.json"))
]


@pytest.fixture(scope="module")
def tessera_registry() -> SchemaRegistry:
    reg = SchemaRegistry("acme")
    reg.create_schema("Profiles", PROFILE, PROFILE_GROUPS)
    reg.create_schema("Events", EXPERIENCE_EVENT, EVENT_GROUPS)
    return reg


def test_own_examples_found() -> None:
    assert len(OWN_DOCS) >= 20


@pytest.mark.parametrize(("doc", "kind"), OWN_DOCS, ids=lambda v: v.name if isinstance(v, Path) else v)
def test_adobe_example_against_tessera_schema(doc: Path, kind: str, tessera_registry: SchemaRegistry) -> None:
    data = _load(doc)
    if doc.name.startswith("identitymap.") and "xdm:identityMap" not in data:
        data = {"xdm:identityMap": data}  # these examples show the map's content only
    record = normalize_keys(data)
    if kind == "event":
        # Field-group examples show only their own fields; AEP requires these on every event.
        record.setdefault("_id", "evt-1")
        record.setdefault("timestamp", "2024-01-01T00:00:00Z")
    validator = tessera_registry.validator("Profiles" if kind == "profile" else "Events")
    assert [i.message for i in validator.validate(record)] == []


def test_tessera_schema_refuses_the_known_wrong_values(tessera_registry: SchemaRegistry) -> None:
    bad = _with_wrong_values(_load(ADOBE / "components/classes/profile.example.1.json"))
    issues = tessera_registry.validator("Profiles").validate(bad)
    assert {i.path for i in issues} == {"person.gender", "identityMap.ECID[0].authenticatedState"}
