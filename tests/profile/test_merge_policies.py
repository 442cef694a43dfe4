"""Merge policies: validation, JSON shape, and the book's rules (default, edge, version, limit)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from tessera.errors import Conflict, InvalidInput, NotFound, SemanticError
from tessera.profile import MergePolicy, MergePolicyBook

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def body(name: str = "p", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "identityGraph": {"type": "pdg"},
        "attributeMerge": {"type": "timestampOrdered"},
    }
    out.update(extra)
    return out


def make_book(**kwargs: Any) -> MergePolicyBook:
    counter = itertools.count(1)
    return MergePolicyBook(clock=lambda: NOW, new_id=lambda: f"id{next(counter)}", **kwargs)


def test_create_returns_the_documented_object() -> None:
    book = make_book(ims_org_id="ORG")
    p = book.create(
        body(
            "crm-first",
            attributeMerge={"type": "dataSetPrecedence", "order": ["CRM", "Loyalty"]},
            default=True,
        ),
        sandbox="prod",
    )
    assert p.to_json() == {
        "id": "id1",
        "name": "crm-first",
        "imsOrgId": "ORG",
        "sandbox": {"sandboxId": "prod", "sandboxName": "prod", "type": "production", "default": True},
        "schema": {"name": "_xdm.context.profile"},
        "version": 1,
        "identityGraph": {"type": "pdg"},
        "attributeMerge": {"type": "dataSetPrecedence", "order": ["CRM", "Loyalty"]},
        "isActiveOnEdge": False,
        "default": True,
        "updateEpoch": int(NOW.timestamp()),
    }
    assert MergePolicy.from_json(p.to_json()) == p


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        ({"name": ""}, "name"),
        ({"identityGraph": {"type": "graph"}}, "identityGraph.type"),
        ({"identityGraph": "pdg"}, "identityGraph"),
        ({"attributeMerge": {"type": "newest"}}, "attributeMerge.type"),
        ({"attributeMerge": {"type": "dataSetPrecedence"}}, "attributeMerge.order"),
        ({"attributeMerge": {"type": "dataSetPrecedence", "order": ["A", "A"]}}, "attributeMerge.order[1]"),
        ({"attributeMerge": {"type": "dataSetPrecedence", "order": ["A", 3]}}, "attributeMerge.order[1]"),
        ({"attributeMerge": {"type": "timestampOrdered", "rank": []}}, "attributeMerge.rank"),
        ({"default": "maybe"}, "default"),
        ({"schema": {"title": "x"}}, "schema.name"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_bodies_name_the_field(bad: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidInput) as info:
        make_book().create(body(**bad), sandbox="prod")
    assert info.value.path == path


def test_order_is_limited_to_fifty_datasets() -> None:
    order = [f"ds{i}" for i in range(51)]
    with pytest.raises(InvalidInput, match="at most 50"):
        make_book().create(body(attributeMerge={"type": "dataSetPrecedence", "order": order}), sandbox="prod")


def test_read_only_fields_in_a_body_are_ignored() -> None:
    p = make_book().create(body(id="mine", version=7, updateEpoch=1), sandbox="prod")
    assert (p.id, p.version) == ("id1", 1)


def test_new_default_demotes_the_old_one_of_the_same_class_only() -> None:
    book = make_book()
    first = book.create(body("a", default=True), sandbox="prod")
    event_default = book.create(
        body("ee", default=True, schema={"name": "_xdm.context.experienceevent"}), sandbox="prod"
    )
    second = book.create(body("b", default=True), sandbox="prod")
    assert book.get(first.id).default is False
    assert book.get(first.id).version == 2
    assert book.get(second.id).default and book.get(event_default.id).default
    assert book.default_for("prod") == book.get(second.id)
    # Other sandboxes are independent.
    other = book.create(body("a", default=True), sandbox="dev")
    assert book.get(second.id).default and other.default


def test_version_increments_on_every_change_and_patch_follows_the_reference_shape() -> None:
    book = make_book()
    p = book.create(body("a"), sandbox="prod")
    p = book.patch(p.id, {"op": "add", "path": "/default", "value": "true"})
    assert (p.default, p.version) == (True, 2)
    p = book.patch(p.id, [{"op": "replace", "path": "/identityGraph.type", "value": "none"}])
    assert (p.identity_graph, p.version) == ("none", 3)
    p = book.replace(p.id, body("renamed"))
    assert (p.name, p.default, p.version) == ("renamed", False, 4)
    # A patch that changes nothing is not a change.
    assert book.patch(p.id, {"op": "replace", "path": "/name", "value": "renamed"}).version == 4


def test_patch_switching_to_precedence_needs_an_order() -> None:
    book = make_book()
    p = book.create(body("a"), sandbox="prod")
    with pytest.raises(InvalidInput) as info:
        book.patch(p.id, {"op": "replace", "path": "/attributeMerge.type", "value": "dataSetPrecedence"})
    assert info.value.path == "attributeMerge.order"
    p = book.patch(
        p.id,
        [
            {"op": "add", "path": "/attributeMerge/order", "value": ["CRM"]},
            {"op": "replace", "path": "/attributeMerge/type", "value": "dataSetPrecedence"},
        ],
    )
    assert (p.attribute_merge, p.order, p.version) == ("dataSetPrecedence", ("CRM",), 2)


@pytest.mark.parametrize(
    ("op", "error", "path"),
    [
        ({"op": "move", "path": "/name", "value": "x"}, InvalidInput, "op"),
        ({"op": "replace", "path": "/id", "value": "x"}, InvalidInput, "/id"),
        ({"op": "replace", "path": "/name"}, InvalidInput, "/name"),
        ({"op": "remove", "path": "/name"}, InvalidInput, "/name"),
        ({"op": "replace", "path": "/version", "value": 9}, Conflict, "/version"),
    ],
)
def test_bad_patches_are_refused(op: dict[str, Any], error: type[Exception], path: str) -> None:
    book = make_book()
    p = book.create(body("a"), sandbox="prod")
    with pytest.raises(error) as info:
        book.patch(p.id, op)
    assert getattr(info.value, "path", None) == path
    assert book.get(p.id) == p


def test_version_precondition_passes_when_current() -> None:
    book = make_book()
    p = book.create(body("a"), sandbox="prod")
    ops = [
        {"op": "replace", "path": "/version", "value": 1},
        {"op": "replace", "path": "/name", "value": "b"},
    ]
    assert book.patch(p.id, ops).name == "b"


def test_limit_is_per_sandbox_and_configurable() -> None:
    book = make_book(max_policies=2)
    book.create(body("a"), sandbox="prod")
    book.create(body("b"), sandbox="prod")
    with pytest.raises(SemanticError) as info:
        book.create(body("c"), sandbox="prod")
    assert info.value.status == 422
    book.create(body("c"), sandbox="dev")
    assert len(make_book().list()) == 0
    default_limit = make_book()
    for i in range(5):
        default_limit.create(body(f"p{i}"), sandbox="prod")
    with pytest.raises(SemanticError):
        default_limit.create(body("p5"), sandbox="prod")


def test_names_are_unique_per_sandbox() -> None:
    book = make_book()
    book.create(body("a"), sandbox="prod")
    with pytest.raises(Conflict):
        book.create(body("a"), sandbox="prod")


def test_one_policy_active_on_edge_and_it_cannot_be_deleted() -> None:
    book = make_book()
    edge = book.create(body("a", isActiveOnEdge=True), sandbox="prod")
    with pytest.raises(Conflict) as info:
        book.create(body("b", isActiveOnEdge=True), sandbox="prod")
    assert info.value.path == "isActiveOnEdge"
    with pytest.raises(Conflict):
        book.delete(edge.id)
    book.patch(edge.id, {"op": "replace", "path": "/isActiveOnEdge", "value": False})
    assert book.delete(edge.id).name == "a"
    with pytest.raises(NotFound):
        book.get(edge.id)


def test_builtin_default_is_created_on_first_use_only() -> None:
    book = make_book()
    builtin = book.default_for("prod")
    assert (builtin.attribute_merge, builtin.identity_graph, builtin.default) == (
        "timestampOrdered",
        "pdg",
        True,
    )
    assert book.default_for("prod") is builtin
    assert book.resolve("prod") is builtin
    book.patch(builtin.id, {"op": "replace", "path": "/default", "value": False})
    with pytest.raises(SemanticError, match="no default merge policy"):
        book.default_for("prod")


def test_get_list_and_bulk_get() -> None:
    book = make_book()
    a = book.create(body("b-policy", default=True), sandbox="prod")
    b = book.create(body("a-policy", identityGraph={"type": "none"}), sandbox="prod")
    c = book.create(body("c-policy"), sandbox="dev")
    assert [p.name for p in book.list(sandbox="prod")] == ["a-policy", "b-policy"]
    assert [p.name for p in book.list(sandbox="prod", order_by="-name")] == ["b-policy", "a-policy"]
    assert book.list(default=True) == [a]
    assert book.list(identity_graph="none") == [b]
    with pytest.raises(NotFound):
        book.get(c.id, sandbox="prod")
    results = book.bulk_get([a.id, "nope"], sandbox="prod")
    assert results[a.id] == a and isinstance(results["nope"], NotFound)
    with pytest.raises(InvalidInput):
        book.list(order_by="id")


def test_book_round_trips_through_json() -> None:
    book = make_book()
    book.create(body("a", default=True), sandbox="prod")
    book.create(body("b", attributeMerge={"type": "dataSetPrecedence", "order": ["X"]}), sandbox="dev")
    again = MergePolicyBook.from_json(book.to_json())
    assert again.policies == book.policies


def test_from_json_rejects_a_broken_stored_object() -> None:
    obj = make_book().create(body("a"), sandbox="prod").to_json()
    obj["version"] = 0
    with pytest.raises(InvalidInput) as info:
        MergePolicy.from_json(obj)
    assert info.value.path == "version"
