"""Record validation: field paths, expectations, formats, spellings; never raises on bad data."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from tessera.errors import SchemaValidationError
from tessera.xdm import EXPERIENCE_EVENT, PROFILE, RecordValidator, SchemaRegistry, ValidationIssue, validate
from tessera.xdm import standard as st
from tessera.xdm.fields import array, date_time, integer, map_of, number, obj, string


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    reg = SchemaRegistry("acme")
    reg.create_schema(
        "Customers",
        PROFILE,
        [
            st.IDENTITY_MAP,
            st.PERSON_DETAILS,
            st.PERSONAL_DETAILS,
            st.WORK_DETAILS,
            st.SEGMENTATION,
            st.LOYALTY,
        ],
    )
    reg.create_schema("Web events", EXPERIENCE_EVENT, [st.COMMERCE, st.WEB, st.ENVIRONMENT])
    return reg


@pytest.fixture(scope="module")
def profile(registry: SchemaRegistry) -> RecordValidator:
    return registry.validator("Customers")


@pytest.fixture(scope="module")
def event(registry: SchemaRegistry) -> RecordValidator:
    return registry.validator("Web events")


def _paths(issues: list[ValidationIssue]) -> list[str]:
    return [i.path for i in issues]


def test_valid_profile_has_no_issues(profile: RecordValidator) -> None:
    record = {
        "_id": "p1",
        "person": {
            "name": {"firstName": "Ann", "lastName": "Lee"},
            "birthDate": "1990-02-28",
            "gender": "female",
        },
        "personalEmail": {"address": "ann@example.com"},
        "mobilePhone": {"number": "+1 555 0100"},
        "homeAddress": {"city": "Basel", "countryCode": "CH"},
        "identityMap": {
            "Email": [{"id": "ann@example.com", "primary": True, "authenticatedState": "authenticated"}]
        },
        "segmentMembership": {
            "ups": {"seg-1": {"status": "realized", "lastQualificationTime": "2024-01-02T03:04:05Z"}}
        },
        "loyalty": {"tier": "gold", "points": 120.5},
    }
    assert profile.validate(record) == []
    assert profile.is_valid(record)


def test_bad_date_names_path_expectation_and_value(profile: RecordValidator) -> None:
    issues = profile.validate({"person": {"birthDate": "1990-13-01"}})
    assert len(issues) == 1
    issue = issues[0]
    assert issue.path == "person.birthDate"
    assert issue.expected == "string (date)"
    assert "1990-13-01" in issue.got
    assert issue.message == "person.birthDate: expected string (date), got string '1990-13-01'"


@pytest.mark.parametrize(
    "value",
    ["ann", "ann@", "@example.com", "ann@example", "a b@example.com", "ann@example.com\n", "ann@x.com."],
)
def test_email_format_enforced(profile: RecordValidator, value: str) -> None:
    assert _paths(profile.validate({"personalEmail": {"address": value}})) == ["personalEmail.address"]
    assert _paths(profile.validate({"workEmail": {"address": value}})) == ["workEmail.address"]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2024-01-02T03:04:05Z", True),
        ("2024-01-02T03:04:05.123+02:00", True),
        ("2024-01-02T03:04:05", False),  # no offset: not RFC 3339
        ("2024-02-30T03:04:05Z", False),
        ("2024-02-29T23:59:59-05:00", True),
        ("2023-02-29T10:00:00Z", False),
        ("2024-04-31T10:00:00Z", False),
        ("2024-01-02T24:00:00Z", False),
        ("2024-01-02T10:60:00Z", False),
        ("2024-00-02T10:00:00Z", False),
        ("2024-01-02T10:00:00Z\n", False),
        ("٢٠٢٤-01-02T10:00:00Z", False),
        ("yesterday", False),
        (1704164645000, False),
    ],
)
def test_date_time_format_enforced(event: RecordValidator, value: Any, ok: bool) -> None:
    issues = event.validate({"_id": "e1", "timestamp": value})
    assert (issues == []) is ok
    if not ok:
        assert _paths(issues) == ["timestamp"] and issues[0].expected == "string (date-time)"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2024-02-29", True),
        ("1999-12-31", True),
        ("2023-02-29", False),
        ("1990-1-2", False),
        ("1990-01-02T00:00:00Z", False),
    ],
)
def test_date_format_enforced(profile: RecordValidator, value: str, ok: bool) -> None:
    assert (profile.validate({"person": {"birthDate": value}}) == []) is ok


def test_python_dates_and_datetimes_accepted(profile: RecordValidator, event: RecordValidator) -> None:
    # Parquet readers hand over date/datetime objects, not strings.
    assert event.validate({"_id": "e1", "timestamp": datetime(2024, 1, 2, tzinfo=UTC)}) == []
    assert profile.validate({"person": {"birthDate": date(1990, 1, 2)}}) == []


def test_events_require_id_and_timestamp(event: RecordValidator) -> None:
    issues = event.validate({"eventType": "web.webpagedetails.pageViews"})
    assert {(i.path, i.got) for i in issues} == {("_id", "missing"), ("timestamp", "missing")}


def test_paths_through_arrays_and_maps(event: RecordValidator, profile: RecordValidator) -> None:
    issues = event.validate(
        {
            "_id": "e1",
            "timestamp": "2024-01-02T03:04:05Z",
            "productListItems": [{"SKU": "a", "quantity": 1}, {"SKU": "b", "quantity": "two"}],
            "identityMap": {"ECID": [{"id": "1"}, {"id": 2}]},
        }
    )
    assert sorted(_paths(issues)) == ["identityMap.ECID[1].id", "productListItems[1].quantity"]
    issues = profile.validate({"segmentMembership": {"ups": {"seg-9": {"status": "gone"}}}})
    assert _paths(issues) == ["segmentMembership.ups.seg-9.status"]
    assert issues[0].expected == "one of ['existing', 'exited', 'realized']"


def test_nested_arrays_fill_every_index() -> None:
    schema = obj({"a": array(obj({"b": array(obj({"c": integer()}))}))})
    issues = validate({"a": [{}, {"b": [{"c": 1}, {"c": 1}, {"c": "x"}]}]}, schema)
    assert _paths(issues) == ["a[1].b[2].c"]


def test_enum_and_type_errors(profile: RecordValidator) -> None:
    issues = profile.validate({"person": {"gender": "robot", "birthYear": "1990", "name": "Ann"}})
    by_path = {i.path: i for i in issues}
    assert set(by_path) == {"person.gender", "person.birthYear", "person.name"}
    assert by_path["person.birthYear"].expected == "integer"
    assert by_path["person.birthYear"].got == "string '1990'"
    assert by_path["person.name"].expected == "object"


def test_numbers() -> None:
    schema = obj({"n": number(), "i": integer()})
    assert validate({"n": 1, "i": 5.0}, schema) == []
    assert _paths(validate({"n": True}, schema)) == ["n"]
    assert _paths(validate({"i": 5.5}, schema)) == ["i"]
    assert _paths(validate({"i": False}, schema)) == ["i"]


def test_null_is_refused_unless_allowed(profile: RecordValidator) -> None:
    issues = profile.validate({"person": {"birthDate": None}})
    assert _paths(issues) == ["person.birthDate"] and "omit the field" in issues[0].expected
    lenient = RecordValidator(obj({"person": obj({"birthDate": string(format="date")})}), allow_null=True)
    assert lenient.validate({"person": {"birthDate": None}}) == []


def test_unknown_fields_allowed_by_default_and_reported_when_strict(registry: SchemaRegistry) -> None:
    record = {"person": {"name": {"firstName": "Ann"}, "nickname": "A"}}
    assert registry.validator("Customers").validate(record) == []
    strict = registry.validator("Customers", allow_unknown=False)
    issues = strict.validate(record)
    assert _paths(issues) == ["person.nickname"] and issues[0].expected == "no such field in the schema"


def test_jsonld_spelling_understood(profile: RecordValidator) -> None:
    record: dict[str, Any] = {
        "@id": "p1",
        "xdm:person": {"xdm:name": {"xdm:firstName": "Ann"}, "xdm:birthDate": "1990-13-01"},
        "repo:createDate": "2024-01-01T00:00:00Z",
    }
    assert _paths(profile.validate(record)) == ["person.birthDate"]
    record["xdm:person"]["xdm:birthDate"] = "1990-12-01"
    assert profile.validate(record) == []


def test_record_that_is_not_an_object(profile: RecordValidator) -> None:
    issues = profile.validate(["not", "a", "record"])
    assert len(issues) == 1 and issues[0].path == "" and issues[0].expected == "object"
    assert issues[0].message.startswith("(record): expected object")


def test_issue_to_error_names_record_and_path() -> None:
    issue = ValidationIssue("person.birthDate", "string (date)", "string 'x'")
    err = issue.to_error(record=7)
    assert isinstance(err, SchemaValidationError)
    assert err.path == "person.birthDate"
    assert err.to_json()["status"] == 400
    assert "record 7" in err.message and "person.birthDate" in err.message
    assert issue.to_json()["expected"] == "string (date)"


def test_map_of_scalars_and_date_times_in_maps() -> None:
    schema = obj({"m": map_of(date_time())})
    issues = validate({"m": {"a": "2024-01-01T00:00:00Z", "b": "soon"}}, schema)
    assert _paths(issues) == ["m.b"]
    assert _paths(validate({"m": []}, schema)) == ["m"]


json_values = hs.recursive(
    hs.none() | hs.booleans() | hs.integers() | hs.floats(allow_nan=False) | hs.text(max_size=12),
    lambda children: (
        hs.lists(children, max_size=4) | hs.dictionaries(hs.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
field_names = hs.sampled_from(
    ["person", "identityMap", "personalEmail", "loyalty", "_id", "xdm:person", "@id"]
)


_ANY_REG = SchemaRegistry("acme")
_ANY = _ANY_REG.validator(
    _ANY_REG.create_schema(
        "Any", PROFILE, [st.IDENTITY_MAP, st.PERSON_DETAILS, st.PERSONAL_DETAILS, st.LOYALTY]
    ).id
)


@settings(max_examples=150, deadline=None)
@given(hs.dictionaries(field_names, json_values, max_size=5) | json_values)
def test_never_raises_on_arbitrary_data(data: Any) -> None:
    issues = _ANY.validate(data)
    assert all(isinstance(i, ValidationIssue) and "\x00" not in i.path for i in issues)


def test_constraints_checked() -> None:
    schema = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "pattern": "^[A-Z]{3}$", "minLength": 3, "maxLength": 3},
            "score": {"type": "number", "minimum": 0, "maximum": 10},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
        },
        "required": ["code"],
    }
    assert validate({"code": "ABC", "score": 10, "tags": ["a"]}, schema) == []
    issues = validate({"code": "abcd", "score": 11, "tags": []}, schema)
    assert {(i.path, i.expected) for i in issues} == {
        ("code", "text matching /^[A-Z]{3}$/"),
        ("code", "at most 3 characters"),
        ("score", "a number <= 10"),
        ("tags", "at least 1 items"),
    }
    assert [(i.path, i.got) for i in validate({}, schema)] == [("code", "missing")]


def test_deeply_nested_containers_compile_and_report_full_paths() -> None:
    node: dict[str, Any] = integer()
    for depth in range(12):
        node = array(node) if depth % 3 == 0 else map_of(node) if depth % 3 == 1 else obj({f"f{depth}": node})
    schema = obj({"root": node})
    record: Any = "bad"
    expected = ""
    for depth in range(12):
        if depth % 3 == 0:
            record, expected = [record], "[0]" + expected
        elif depth % 3 == 1:
            record, expected = {"k": record}, ".k" + expected
        else:
            record, expected = {f"f{depth}": record}, f".f{depth}" + expected
    issues = validate({"root": record}, schema)
    assert [i.path for i in issues] == ["root" + expected]


def test_absurdly_deep_namespaced_record_is_an_issue_not_a_crash(profile: RecordValidator) -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = {"xdm:a": deep}
    issues = profile.validate({"xdm:person": deep})
    assert [i.got for i in issues] == ["too many nested levels"]
