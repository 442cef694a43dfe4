"""merge(): conflict rules, determinism (property tests), events under a policy."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tessera.errors import InvalidInput, SemanticError
from tessera.model import Identity
from tessera.profile import (
    Event,
    Fragment,
    MergePolicy,
    SandboxRef,
    combine_events,
    merge,
    stitched_identities,
)
from tessera.profile.merge import latest_writer_reference

T0 = datetime(2024, 6, 1, tzinfo=UTC)
PROD = SandboxRef.named("prod")
TS = MergePolicy("ts", "ts", PROD)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A fixed vocabulary of leaf paths with no prefix clashes, so "latest writer per leaf" is well defined.
LEAF_PATHS = [
    ("person", "name", "firstName"),
    ("person", "name", "lastName"),
    ("person", "maritalStatus"),
    ("homeAddress", "city"),
    ("homeAddress", "country"),
    ("_acme", "tier"),
    ("_acme", "points"),
    ("interests",),
    ("segmentMembership",),
]
VALUES = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.lists(st.integers(0, 3), max_size=2))


def build(leaves: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for path, value in leaves.items():
        node = doc
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return doc


@st.composite
def fragment_sets(draw: st.DrawFn, distinct_times: bool) -> list[Fragment]:
    count = draw(st.integers(1, 6))
    datasets = draw(
        st.lists(st.sampled_from(["CRM", "Loyalty", "Web", "POS"]), min_size=count, max_size=count)
    )
    if distinct_times:
        offsets = draw(st.lists(st.integers(0, 10_000), min_size=count, max_size=count, unique=True))
    else:
        offsets = draw(st.lists(st.integers(0, 3), min_size=count, max_size=count))
    out = []
    for i in range(count):
        chosen = draw(st.lists(st.sampled_from(LEAF_PATHS), max_size=len(LEAF_PATHS), unique=True))
        leaves = {path: draw(VALUES) for path in chosen}
        if draw(st.booleans()):
            leaves[("identityMap",)] = {"Email": [{"id": draw(st.sampled_from(["a", "b", "c"]))}]}
        record = build(leaves)
        custom = None
        if not distinct_times and draw(st.booleans()):
            custom = T0 + timedelta(seconds=draw(st.integers(0, 3)))
        out.append(
            Fragment(
                datasets[i],
                Identity("ID", str(i)),
                record,
                T0 + timedelta(seconds=offsets[i]),
                sequence=draw(st.integers(0, 2)),
                custom_timestamp=custom,
            )
        )
    return out


POLICIES = st.sampled_from(
    [
        TS,
        MergePolicy("ts-ranked", "ts", PROD, order=("Web", "CRM")),
        MergePolicy("dsp", "dsp", PROD, attribute_merge="dataSetPrecedence", order=("Loyalty", "CRM", "POS")),
    ]
)


@SETTINGS
@given(fragments=fragment_sets(distinct_times=False), policy=POLICIES, seed=st.integers(0, 2**16))
def test_merge_does_not_depend_on_input_order(
    fragments: list[Fragment], policy: MergePolicy, seed: int
) -> None:
    shuffled = list(fragments)
    random.Random(seed).shuffle(shuffled)
    a, b = merge(fragments, policy), merge(shuffled, policy)
    assert a.attributes == b.attributes
    assert a.provenance == b.provenance
    assert a == b


@SETTINGS
@given(fragments=fragment_sets(distinct_times=True))
def test_timestamp_ordered_with_distinct_times_is_latest_writer_per_leaf(fragments: list[Fragment]) -> None:
    view = merge(fragments, TS)
    flat = {dotted: view_value(view.attributes, dotted) for dotted in view.provenance}
    assert flat == latest_writer_reference(fragments)
    newest_per_leaf = {
        leaf.dotted: f.dataset_id for f in sorted(fragments, key=lambda f: f.timestamp) for leaf in f.leaves
    }
    assert view.provenance == newest_per_leaf


def view_value(doc: dict[str, Any], dotted: str) -> Any:
    node: Any = doc
    for key in dotted.split("."):
        node = node[key]
    return node


@SETTINGS
@given(fragments=fragment_sets(distinct_times=False))
def test_precedence_excludes_unlisted_datasets_and_ranked_dataset_wins(fragments: list[Fragment]) -> None:
    policy = MergePolicy("dsp", "dsp", PROD, attribute_merge="dataSetPrecedence", order=("Loyalty", "CRM"))
    view = merge(fragments, policy)
    assert set(view.source_datasets) <= {"Loyalty", "CRM"}
    loyalty_leaves = {leaf.dotted for f in fragments if f.dataset_id == "Loyalty" for leaf in f.leaves}
    for dotted in loyalty_leaves:
        assert view.provenance[dotted] == "Loyalty"


def test_arrays_and_maps_come_whole_from_one_fragment() -> None:
    old = Fragment("A", Identity("X", "1"), {"tags": [1, 2, 3], "segmentMembership": {"ups": {"s1": {}}}}, T0)
    new = Fragment(
        "B", Identity("X", "2"), {"tags": [9], "segmentMembership": {"ups": {"s2": {}}}}, T0 + timedelta(1)
    )
    view = merge([old, new], TS)
    assert view.attributes == {"tags": [9], "segmentMembership": {"ups": {"s2": {}}}}
    assert view.provenance == {"tags": "B", "segmentMembership": "B"}


def test_custom_map_paths_make_other_objects_atomic() -> None:
    maps = frozenset({"identityMap", "_acme.prefs"})
    old = Fragment("A", Identity("X", "1"), {"_acme": {"prefs": {"a": 1, "b": 2}}}, T0, map_paths=maps)
    new = Fragment("B", Identity("X", "2"), {"_acme": {"prefs": {"c": 3}}}, T0 + timedelta(1), map_paths=maps)
    assert merge([old, new], TS).attributes == {"_acme": {"prefs": {"c": 3}}}


def test_identity_union_and_identity_sources() -> None:
    a = Fragment("A", Identity("CRMID", "c1"), {"identityMap": {"Email": [{"id": "x@y"}]}}, T0)
    b = Fragment("B", Identity("Email", "x@y"), {}, T0)
    view = merge([a, b], TS)
    assert view.identities == (Identity("CRMID", "c1"), Identity("Email", "x@y"))
    assert view.identity_sources[Identity("Email", "x@y")] == ("A", "B")
    assert view.attributes == {"identityMap": {"Email": [{"id": "x@y"}]}}


def test_tombstones_are_not_merged_and_empty_view() -> None:
    gone = Fragment("A", Identity("X", "1"), {"a": 1}, T0, deleted=True)
    view = merge([gone], TS)
    assert view.is_empty and view.attributes == {} and view.last_modified is None
    assert view.to_json()["lastModifiedAt"] is None


def test_merge_refuses_wrong_class_and_duplicate_versions() -> None:
    ee = Fragment("A", Identity("X", "1"), {}, T0, schema_class="_xdm.context.experienceevent")
    with pytest.raises(InvalidInput, match="class"):
        merge([ee], TS)
    f = Fragment("A", Identity("X", "1"), {"a": 1}, T0)
    g = Fragment("A", Identity("X", "1"), {"a": 2}, T0)
    with pytest.raises(InvalidInput, match="one version per fragment"):
        merge([f, g], TS)


def test_view_to_json_names_policy_and_version() -> None:
    f = Fragment("A", Identity("X", "1"), {"a": 1}, T0)
    body = merge([f], TS).to_json()
    assert body["mergePolicy"] == {"id": "ts", "version": 1}
    assert body["identities"] == [{"namespace": "X", "id": "1"}]
    assert body["lastModifiedAt"] == "2024-06-01T00:00:00.000Z"


def test_stitched_identities_limit_is_configurable() -> None:
    me = Identity("CRMID", "c1")
    graph = [Identity("ECID", str(i)) for i in range(3)]
    assert len(stitched_identities(TS, me, graph, limit=4)) == 4
    with pytest.raises(SemanticError) as info:
        stitched_identities(TS, me, graph, limit=3)
    assert info.value.status == 422


def test_events_are_deduplicated_by_dataset_and_id_and_ordered_stably() -> None:
    ts = T0
    e1 = Event("Web", Identity("ECID", "1"), "a", ts, {"v": 1}, ingested_at=T0)
    e1_again = Event("Web", Identity("ECID", "1"), "a", ts, {"v": 2}, ingested_at=T0 + timedelta(1))
    same_id_other_ds = Event("App", Identity("ECID", "1"), "a", ts, {})
    later = Event("Web", Identity("ECID", "1"), "b", ts + timedelta(1), {})
    events = combine_events([later, e1_again, same_id_other_ds, e1], TS)
    assert [(e.dataset_id, e.event_id) for e in events] == [("App", "a"), ("Web", "a"), ("Web", "b")]
    assert events[1].record == {"v": 1}
    desc = combine_events([later, e1, same_id_other_ds], TS, descending=True)
    assert [e.event_id for e in desc] == ["b", "a", "a"]


def test_events_under_precedence_come_only_from_listed_datasets() -> None:
    policy = MergePolicy("dsp", "dsp", PROD, attribute_merge="dataSetPrecedence", order=("CRM", "Web"))
    web = Event("Web", Identity("ECID", "1"), "w", T0, {})
    app = Event("App", Identity("ECID", "1"), "a", T0, {})
    assert combine_events([web, app], policy) == [web]


def test_shape_clash_keeps_the_stronger_fragments_shape_in_both_directions() -> None:
    scalar = Fragment("A", Identity("X", "1"), {"address": "1 Main St", "k": 1}, T0 + timedelta(1))
    nested = Fragment("B", Identity("X", "2"), {"address": {"city": "SF", "zip": "9"}, "k": 2}, T0)
    assert merge([scalar, nested], TS).attributes == {"address": "1 Main St", "k": 1}
    older_scalar = Fragment("A", Identity("X", "1"), {"address": "1 Main St"}, T0 - timedelta(1))
    view = merge([older_scalar, nested], TS)
    assert view.attributes == {"address": {"city": "SF", "zip": "9"}, "k": 2}
    assert view.provenance == {"address.city": "B", "address.zip": "B", "k": "B"}


def test_null_in_a_newer_fragment_does_not_erase_an_older_value() -> None:
    old = Fragment("A", Identity("X", "1"), {"person": {"gender": "f"}}, T0)
    new = Fragment("B", Identity("X", "2"), {"person": {"gender": None}, "tier": None}, T0 + timedelta(1))
    view = merge([old, new], TS)
    assert view.attributes == {"person": {"gender": "f"}}
    assert view.provenance == {"person.gender": "A"}
