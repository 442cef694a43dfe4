"""Fragments: upsert/replace semantics, custom timestamps, events, as-of versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.errors import InvalidInput
from tessera.model import Identity
from tessera.profile import Event, Fragment, apply_record, apply_upsert, fragments_as_of, version_at

C1 = Identity("CRMID", "c1")
T0 = datetime(2024, 6, 1, tzinfo=UTC)


def test_upsert_updates_only_supplied_leaves_and_leaves_inputs_untouched() -> None:
    old = {"person": {"name": {"firstName": "Jane", "lastName": "Doe"}}, "tier": "gold"}
    new = {"person": {"name": {"lastName": "Smith"}}}
    out = apply_upsert(old, new)
    assert out == {"person": {"name": {"firstName": "Jane", "lastName": "Smith"}}, "tier": "gold"}
    assert old["person"]["name"]["lastName"] == "Doe"
    out["person"]["name"]["firstName"] = "changed"
    assert new == {"person": {"name": {"lastName": "Smith"}}}


def test_upsert_replaces_arrays_and_maps_whole() -> None:
    old = {"interests": ["golf", "tennis"], "segmentMembership": {"ups": {"s1": {"status": "realized"}}}}
    new = {"interests": ["chess"], "segmentMembership": {"ups": {"s2": {"status": "realized"}}}}
    assert apply_upsert(old, new) == new


def test_upsert_unions_identity_map_entries() -> None:
    old = {"identityMap": {"Email": [{"id": "a@x", "primary": True}]}}
    new = {"identityMap": {"Email": [{"id": "a@x", "primary": False}, {"id": "b@x"}], "Phone": [{"id": "1"}]}}
    assert apply_upsert(old, new) == {
        "identityMap": {"Email": [{"id": "a@x", "primary": False}, {"id": "b@x"}], "Phone": [{"id": "1"}]}
    }


def test_upsert_ignores_nulls_and_deletes_explicitly_pruning_empty_objects() -> None:
    old = {"homeAddress": {"city": "SF", "zip": "1"}, "person": {"gender": "f"}}
    out = apply_upsert(
        old, {"person": {"gender": None}}, deletes=["homeAddress.city", ("homeAddress", "zip")]
    )
    assert out == {"person": {"gender": "f"}}


def test_upsert_delete_of_missing_path_is_a_no_op() -> None:
    assert apply_upsert({"a": 1}, {}, deletes=["b.c", "a.x"]) == {"a": 1}


@pytest.mark.parametrize("deletes", [["person.name"], ["person.name.firstName"], ["identityMap"]])
def test_upsert_refuses_a_path_both_deleted_and_supplied(deletes: list[str]) -> None:
    new = {"person": {"name": {"firstName": "J"}}, "identityMap": {"Email": [{"id": "a"}]}}
    with pytest.raises(InvalidInput) as info:
        apply_upsert({}, new, deletes=deletes)
    assert info.value.path == deletes[0]


def test_replace_mode_replaces_the_record_and_refuses_deletes() -> None:
    assert apply_record({"a": 1, "b": 2}, {"b": 3}, upsert=False) == {"b": 3}
    with pytest.raises(InvalidInput, match="upsert mode"):
        apply_record({"a": 1}, {}, upsert=False, deletes=["a"])


def test_fragment_uses_custom_timestamp_when_present() -> None:
    rec = {"extSourceSystemAudit": {"lastUpdatedDate": "2024-05-01T00:00:00+02:00"}}
    f = Fragment("CRM", C1, rec, T0)
    assert f.timestamp == datetime(2024, 4, 30, 22, tzinfo=UTC)
    assert Fragment("CRM", C1, {}, T0).timestamp == T0


def test_fragment_normalises_times_to_utc_and_class_names() -> None:
    naive = datetime(2024, 6, 1)
    f = Fragment("CRM", C1, {}, naive, schema_class="https://ns.adobe.com/xdm/context/profile")
    assert f.ingested_at == T0 and f.schema_class == "_xdm.context.profile"
    other_tz = Fragment("CRM", C1, {}, datetime(2024, 6, 1, 2, tzinfo=timezone(timedelta(hours=2))))
    assert other_tz.ingested_at == T0


def test_fragment_rejects_bad_custom_timestamp_and_identity_map() -> None:
    with pytest.raises(InvalidInput) as info:
        Fragment("CRM", C1, {"extSourceSystemAudit": {"lastUpdatedDate": "yesterday"}}, T0)
    assert info.value.path == "extSourceSystemAudit.lastUpdatedDate"
    with pytest.raises(InvalidInput) as info:
        Fragment("CRM", C1, {"identityMap": {"Email": [{"primary": True}]}}, T0)
    assert info.value.path == "identityMap.Email[0]"


def test_fragment_leaves_treat_arrays_and_maps_as_one_value() -> None:
    rec = {
        "a": {"b": [1, 2], "c": {}},
        "segmentMembership": {"ups": {"s": {"status": "realized"}}},
        "identityMap": {"E": [{"id": "x"}]},
        "n": None,
    }
    f = Fragment("CRM", C1, rec, T0)
    assert [(leaf.dotted, leaf.ancestors) for leaf in f.leaves] == [
        ("segmentMembership", ()),
        ("a.b", ("a",)),
    ]
    assert f.identities == (("E", "x", {"id": "x"}),)


def test_event_from_record_requires_id_and_timestamp() -> None:
    e = Event.from_record("Web", C1, {"_id": "e", "timestamp": "2024-01-01T00:00:00Z"})
    assert e.timestamp == datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput) as info:
        Event.from_record("Web", C1, {"timestamp": "2024-01-01T00:00:00Z"})
    assert info.value.path == "_id"
    with pytest.raises(InvalidInput) as info:
        Event.from_record("Web", C1, {"_id": "e", "timestamp": "soon"})
    assert info.value.path == "timestamp"


def test_version_at_picks_latest_version_not_after_t_and_respects_tombstones() -> None:
    v1 = Fragment("CRM", C1, {"v": 1}, T0, sequence=1)
    v2 = Fragment("CRM", C1, {"v": 2}, T0 + timedelta(days=1), sequence=2)
    v2b = Fragment("CRM", C1, {"v": 3}, T0 + timedelta(days=1), sequence=3)  # same instant: sequence decides
    gone = Fragment("CRM", C1, {}, T0 + timedelta(days=2), sequence=4, deleted=True)
    versions = [gone, v2b, v1, v2]
    assert version_at(versions, T0 - timedelta(seconds=1)) is None
    assert version_at(versions, T0) is v1
    assert version_at(versions, T0 + timedelta(days=1, hours=1)) is v2b
    assert version_at(versions, T0 + timedelta(days=3)) is None


def test_fragments_as_of_groups_by_dataset_and_identity() -> None:
    a1 = Fragment("CRM", C1, {"v": 1}, T0, sequence=1)
    a2 = Fragment("CRM", C1, {"v": 2}, T0 + timedelta(days=1), sequence=2)
    b1 = Fragment("Loyalty", C1, {"w": 1}, T0 + timedelta(days=2), sequence=3)
    assert fragments_as_of([b1, a2, a1], T0 + timedelta(hours=1)) == [a1]
    assert fragments_as_of([b1, a2, a1], T0 + timedelta(days=5)) == [a2, b1]


FIELD_PATHS = [("a", "b"), ("a", "c"), ("d",), ("e", "f", "g"), ("e", "h")]
SCALARS = st.one_of(st.integers(0, 9), st.text(max_size=2))


def _doc(leaves: dict[tuple[str, ...], object]) -> dict[str, object]:
    doc: dict[str, object] = {}
    for path, value in leaves.items():
        node = doc
        for key in path[:-1]:
            node = node.setdefault(key, {})  # type: ignore[assignment]
        node[path[-1]] = value
    return doc


@settings(max_examples=60, deadline=None)
@given(
    old=st.dictionaries(st.sampled_from(FIELD_PATHS), SCALARS),
    new=st.dictionaries(st.sampled_from(FIELD_PATHS), SCALARS),
    deleted=st.sets(st.sampled_from(FIELD_PATHS)),
)
def test_upsert_is_old_minus_deletes_plus_new_per_leaf(
    old: dict[tuple[str, ...], object], new: dict[tuple[str, ...], object], deleted: set[tuple[str, ...]]
) -> None:
    deleted -= set(new)
    out = apply_upsert(_doc(old), _doc(new), deletes=[".".join(p) for p in deleted])
    expected = {p: v for p, v in old.items() if p not in deleted}
    expected.update(new)
    assert out == _doc(expected)
