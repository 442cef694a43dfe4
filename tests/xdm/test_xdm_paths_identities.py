"""Key spellings, field paths and identity extraction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as hs

from tessera.model import Identity
from tessera.xdm import (
    IdentityDescriptor,
    descriptor_identities,
    identity_map_identities,
    normalize_keys,
    record_identities,
    values_at,
)
from tessera.xdm.paths import plain_key, split_path

ADOBE = Path(__file__).resolve().parents[1] / "data" / "xdm" / "adobe-xdm" / "components"


def test_spelling_rules() -> None:
    assert plain_key("xdm:identityMap") == ("identityMap",)
    assert plain_key("@id") == ("_id",)
    assert plain_key("repo:createDate") == ("_repo", "createDate")
    assert plain_key("schema:latitude") == ("_schema", "latitude")
    assert plain_key("https://ns.adobe.com/experience/mcid") == ("_experience", "mcid")
    assert plain_key("https://ns.adobe.com/acme/loyalty") == ("_acme", "loyalty")
    # not field names: namespace codes, namespace URIs, segment ids stay as they are
    for key in ("ECID", "https://data.adobe.io/entities/namespace/4", "abcd@adobe.com", "urn:x", "a b"):
        assert plain_key(key) == (key,)


def test_normalize_nested_document_and_merge_prefix_objects() -> None:
    doc = {
        "@id": "https://data.example.com/1",
        "xdm:identityMap": {
            "https://data.adobe.io/entities/namespace/4": [{"xdm:id": "1", "xdm:primary": True}]
        },
        "repo:createDate": "2024-01-01T00:00:00Z",
        "repo:modifyDate": "2024-01-02T00:00:00Z",
        "xdm:homeAddress": {"schema:latitude": 1.0, "schema:longitude": 2.0, "xdm:city": "Basel"},
        "xdm:endUserIDs": {"https://ns.adobe.com/experience/mcid": {"xdm:id": "123"}},
        "list": [{"xdm:a": 1}, 2],
    }
    assert normalize_keys(doc) == {
        "_id": "https://data.example.com/1",
        "identityMap": {"https://data.adobe.io/entities/namespace/4": [{"id": "1", "primary": True}]},
        "_repo": {"createDate": "2024-01-01T00:00:00Z", "modifyDate": "2024-01-02T00:00:00Z"},
        "homeAddress": {"_schema": {"latitude": 1.0, "longitude": 2.0}, "city": "Basel"},
        "endUserIDs": {"_experience": {"mcid": {"id": "123"}}},
        "list": [{"a": 1}, 2],
    }


def test_normalized_adobe_examples_have_no_namespaced_field_names() -> None:
    for path in sorted(ADOBE.glob("classes/*.example.*.json")):
        doc = normalize_keys(json.loads(path.read_text(encoding="utf-8")))
        keys = [k for node in _dicts(doc) for k in node]
        assert not [k for k in keys if k.startswith(("xdm:", "@"))], path.name


def _dicts(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return [node, *[d for v in node.values() for d in _dicts(v)]]
    if isinstance(node, list):
        return [d for v in node for d in _dicts(v)]
    return []


keys = hs.sampled_from(["xdm:a", "a", "@id", "repo:createDate", "https://ns.adobe.com/x/y", "ECID", "_b"])
docs = hs.recursive(
    hs.integers() | hs.text(max_size=5),
    lambda c: hs.lists(c, max_size=3) | hs.dictionaries(keys, c, max_size=4),
    max_leaves=15,
)


@settings(max_examples=100, deadline=None)
@given(docs)
def test_normalize_is_idempotent(doc: Any) -> None:
    once = normalize_keys(doc)
    assert normalize_keys(once) == once


def test_split_path_and_values_at() -> None:
    assert split_path("/a/b") == split_path("a.b") == ["a", "b"]
    record = {
        "productListItems": [{"SKU": "a"}, {"SKU": "b"}, {"name": "c"}],
        "loyalty": {"loyaltyID": ["x", "y"]},
    }
    assert list(values_at(record, "productListItems.SKU")) == ["a", "b"]
    assert list(values_at(record, "loyalty.loyaltyID")) == ["x", "y"]
    assert list(values_at(record, "nothing.here")) == []


def test_identity_map_extraction() -> None:
    record = {
        "identityMap": {
            "ECID": [{"id": "1" * 38}, {"id": 5}],
            "Email": [{"id": "a@b.co", "primary": True, "authenticatedState": "authenticated"}],
            "Broken": "not a list",
        }
    }
    found = identity_map_identities(record)
    assert [(f.identity, f.primary, f.authenticated_state) for f in found] == [
        (Identity("ECID", "1" * 38), False, "ambiguous"),
        (Identity("Email", "a@b.co"), True, "authenticated"),
    ]
    assert identity_map_identities({}) == [] and identity_map_identities({"identityMap": []}) == []


def test_descriptor_extraction_and_combined_order() -> None:
    descriptors = [
        IdentityDescriptor("personalEmail.address", "Email", primary=True),
        IdentityDescriptor("_acme.loyaltyIds", "Loyalty"),
        IdentityDescriptor("mobilePhone.number", "Phone"),
    ]
    record = {
        "personalEmail": {"address": "a@b.co"},
        "_acme": {"loyaltyIds": ["L1", "L2", 3]},
        "mobilePhone": {"number": None},
        "identityMap": {"ECID": [{"id": "e"}]},
    }
    found = descriptor_identities(record, descriptors)
    assert [(str(f.identity), f.primary, f.source) for f in found] == [
        ("Email:a@b.co", True, "personalEmail.address"),
        ("Loyalty:L1", False, "_acme.loyaltyIds"),
        ("Loyalty:L2", False, "_acme.loyaltyIds"),
    ]
    assert [str(f.identity) for f in record_identities(record, descriptors)][-1] == "ECID:e"
