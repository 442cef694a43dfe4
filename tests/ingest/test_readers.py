"""Batch file readers: JSON, JSON lines, CSV with mapping, Parquet (incl. the Luma file)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tessera.demo.real import CRM_CSV, CRM_CSV_MAPPING, CRM_IDENTITY_FIELDS, LUMA_EVENTS, LUMA_IDENTITY_FIELDS
from tessera.errors import InvalidInput
from tessera.ingest.readers import (
    IdentityField,
    IdentityFields,
    RowError,
    detect_format,
    end_user_ids,
    read_csv,
    read_file,
    read_json,
    read_jsonl,
    read_parquet,
)

DATA = Path(__file__).parents[1] / "data" / "ingest"


def _split(
    rows: list[tuple[int, Any]],
) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, RowError]]]:
    good = [(n, r) for n, r in rows if not isinstance(r, RowError)]
    bad = [(n, r) for n, r in rows if isinstance(r, RowError)]
    return good, bad


# ---- format detection -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.json", "json"), ("a.JSONL", "jsonl"), ("a.ndjson", "jsonl"), ("x.csv", "csv"),
     ("luma_post.snappy.parquet", "parquet"), ("p.pq", "parquet")],
)  # fmt: skip
def test_detect_format(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt


def test_unknown_extension_and_bytes_without_format_are_refused() -> None:
    with pytest.raises(InvalidInput, match="cannot tell the format"):
        detect_format("data.xml")
    with pytest.raises(InvalidInput, match="format is required"):
        read_file(b"[]")
    with pytest.raises(InvalidInput, match="unknown format"):
        read_file(b"[]", "xml")
    with pytest.raises(InvalidInput, match="CSV files only"):
        read_file(b"[]", "json", mapping={"a": "b"})


def test_missing_file_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot open") as e:
        read_file(tmp_path / "nope.json")
    assert e.value.path == str(tmp_path / "nope.json")


# ---- JSON -------------------------------------------------------------------


def test_json_array_counts_and_non_objects() -> None:
    rows = list(read_file(b'[{"a": 1}, 2, {"b": {"c": null}}, "x"]', "json"))
    good, bad = _split(rows)
    assert [n for n, _ in rows] == [1, 2, 3, 4]
    assert good == [(1, {"a": 1}), (3, {"b": {"c": None}})]
    assert [(n, e.location, e.message) for n, e in bad] == [
        (2, "item 2", "expected a JSON object, found number"),
        (4, "item 4", "expected a JSON object, found string"),
    ]


def test_json_single_object_is_one_record() -> None:
    assert list(read_json(b'{"_id": "x"}')) == [(1, {"_id": "x"})]


def test_json_that_is_not_json_names_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_bytes(b'[\n  {"a": 1},\n  {"a": }\n]')
    with pytest.raises(InvalidInput, match="not valid JSON") as e:
        read_file(f)
    assert e.value.path == f"{f}:3:9"
    with pytest.raises(InvalidInput, match="JSON array of records"):
        list(read_json(b"42"))


def test_json_file_holding_json_lines_is_read_as_lines() -> None:
    rows = list(read_json(b'{"a": 1}\n{"a": 2}\n{"a": \n'))
    assert rows[:2] == [(1, {"a": 1}), (2, {"a": 2})]
    assert isinstance(rows[2][1], RowError) and rows[2][1].location.startswith("line 3")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        read_json(b'{"a": 1} {"a": 2}')  # one line: not JSON lines either


def test_crm_json_file_reads_16_records() -> None:
    rows = list(read_file(CRM_CSV.with_suffix(".json")))
    assert len(rows) == 16
    assert rows[0][1]["identityMap"]["LOYALTYID"][0]["primary"] is True  # type: ignore[index]


# ---- JSON lines ---------------------------------------------------------------


def test_mixed_jsonl_keeps_good_lines_and_reports_each_bad_one() -> None:
    rows = list(read_file(DATA / "mixed.jsonl"))
    good, bad = _split(rows)
    assert [n for n, _ in rows] == list(range(1, 10))  # blank lines are not rows
    assert [r["_id"] for _, r in good] == ["e1", "e2", "e4", "e5", "e7"]
    assert good[3][1]["note"] == "café ok"
    assert [(n, e.location) for n, e in bad] == [
        (3, "line 3, column 28"),
        (4, "line 5"),
        (6, "line 7"),
        (8, "line 10, column 23"),
    ]
    assert bad[0][1].message.startswith("not valid JSON")
    assert bad[1][1].message == "expected a JSON object, found array"
    assert bad[2][1].message == "expected a JSON object, found null"
    assert "UTF-8" in bad[3][1].message
    assert str(bad[1][1]) == "line 5: expected a JSON object, found array"


def test_jsonl_from_bytes_with_bom_and_no_trailing_newline() -> None:
    rows = list(read_jsonl(b'\xef\xbb\xbf{"a": 1}\n{"a": 2}'))
    assert rows == [(1, {"a": 1}), (2, {"a": 2})]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"a": 1}\n'.encode("utf-16"), "UTF-16"),
        (b"PAR1\x00\x00junk", "Parquet file"),
        (b"\x00\x01\x02binary", "NUL bytes"),
    ],
)
def test_jsonl_that_is_not_text_is_refused_before_any_row(
    tmp_path: Path, content: bytes, message: str
) -> None:
    f = tmp_path / "x.jsonl"
    f.write_bytes(content)
    with pytest.raises(InvalidInput, match=message) as e:
        read_file(f)
    assert e.value.path == str(f)


# ---- CSV ----------------------------------------------------------------------


def test_csv_default_mapping_uses_headers_as_dotted_paths() -> None:
    data = b"person.name.firstName,person.name.lastName,homeAddress.city\nAda,Lovelace,London\nAlan,,\n"
    assert list(read_csv(data)) == [
        (
            1,
            {
                "person": {"name": {"firstName": "Ada", "lastName": "Lovelace"}},
                "homeAddress": {"city": "London"},
            },
        ),
        (2, {"person": {"name": {"firstName": "Alan"}}}),
    ]


def test_csv_mapping_with_type_coercion_and_row_errors() -> None:
    data = (
        b"ID,YOB,VIP,SCORE,IGNORED\n"
        b"a1,1980,yes,1.5,x\n"
        b"a2,19x0,no,2,x\n"  # bad integer
        b"a3,1990,maybe,3,x\n"  # bad boolean
        b"a4,2000\n"  # too few cells
        b'"a5",,false,"4e2",x\n'
    )
    mapping: dict[str, Any] = {
        "ID": "_tessera.crm.crmId",
        "YOB": {"path": "person.birthYear", "type": "integer"},
        "VIP": {"path": "_tessera.vip", "type": "boolean"},
        "SCORE": {"path": "_tessera.score", "type": "number"},
    }
    rows = list(read_file(data, "csv", mapping=mapping))
    good, bad = _split(rows)
    assert good == [
        (1, {"_tessera": {"crm": {"crmId": "a1"}, "vip": True, "score": 1.5}, "person": {"birthYear": 1980}}),
        (5, {"_tessera": {"crm": {"crmId": "a5"}, "vip": False, "score": 400.0}}),
    ]
    assert [(n, e.location, e.message) for n, e in bad] == [
        (2, "line 3, column YOB", "'19x0' is not a valid integer"),
        (3, "line 4, column VIP", "'maybe' is not a valid boolean"),
        (4, "line 5", "expected 5 cells, found 2"),
    ]


def test_csv_mapping_errors_are_refused_up_front() -> None:
    with pytest.raises(InvalidInput, match="does not have") as e:
        read_csv(b"A,B\n1,2\n", mapping={"C": "x.y"})
    assert e.value.path == "mapping.C"
    with pytest.raises(InvalidInput, match="type 'date'"):
        read_csv(b"A\n1\n", mapping={"A": {"path": "x", "type": "date"}})
    with pytest.raises(InvalidInput, match="malformed path"):
        read_csv(b"A\n1\n", mapping={"A": "x..y"})


def test_csv_not_utf8_is_refused_with_position(tmp_path: Path) -> None:
    f = tmp_path / "latin1.csv"
    f.write_bytes("NAME\nJosé\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match="not UTF-8") as e:
        read_file(f)
    assert e.value.path == f"{f}:2:4"
    with pytest.raises(InvalidInput, match="UTF-16"):
        read_csv("NAME\nJo\n".encode("utf-16"))


def test_csv_empty_and_quoted_multiline_cells() -> None:
    assert list(read_csv(b"")) == []
    rows = list(read_csv(b'a,b\n"line one\nline two",2\n\n3,4\n'))
    assert rows == [(1, {"a": "line one\nline two", "b": "2"}), (2, {"a": "3", "b": "4"})]


def test_crm_csv_reads_all_259_rows_with_identities() -> None:
    rows = list(read_file(CRM_CSV, mapping=CRM_CSV_MAPPING, identity_source=CRM_IDENTITY_FIELDS))
    good, bad = _split(rows)
    assert (len(good), len(bad)) == (259, 0)
    first = good[0][1]
    assert first["person"]["name"] == {"courtesyTitle": "Mr", "firstName": "Ewart", "lastName": "Bennedsen"}
    assert first["person"]["birthYear"] == 2004
    assert first["homeAddress"]["_schema"] == {"latitude": 33.708276, "longitude": -85.7922905}
    idm = first["identityMap"]
    assert idm["CRMID"][0]["id"] == "71a16013-d805-7ece-9ac4-8f2cd66e8eaa"
    assert [e["id"] for e in idm["ECID"]] == [
        "87098882279810196101440938110216748923",
        "55019962992006103186215643814973128178",
    ]
    assert idm["LOYALTYID"][0] == {
        "id": "2e33192000007456-0365c00000000000",
        "primary": True,
        "authenticatedState": "authenticated",
    }
    countries: dict[str, int] = {}
    for _, r in good:
        c = r["homeAddress"]["country"]
        countries[c] = countries.get(c, 0) + 1
    assert countries == {"US": 119, "CA": 78, "MX": 62}


# ---- Parquet ------------------------------------------------------------------


def test_luma_parquet_reads_every_row_with_identities_from_end_user_ids() -> None:
    rows = list(read_file(LUMA_EVENTS, identity_source=LUMA_IDENTITY_FIELDS, batch_size=5000))
    good, bad = _split(rows)
    assert (len(good), len(bad)) == (23_055, 0)
    assert [n for n, _ in rows] == list(range(1, 23_056))
    assert len({r["_id"] for _, r in good}) == 23_055
    with_ecid = [r for _, r in good if "ECID" in r["identityMap"]]
    assert len(with_ecid) == 23_054  # one row has only an AAID
    assert all(re.fullmatch(r"\d{38}", r["identityMap"]["ECID"][0]["id"]) for r in with_ecid)
    assert all(r["identityMap"]["ECID"][0]["primary"] for r in with_ecid)
    assert all(len(r["identityMap"]["AAID"]) == 1 for _, r in good)
    first = good[0][1]
    assert first["timestamp"] == "2018-12-10T14:33:51.000Z"
    assert first["web"]["webPageDetails"]["pageViews"] == {"value": 1.0}
    assert "application" not in first  # nulls are dropped
    times = sorted(r["timestamp"] for _, r in good)
    assert times[0].startswith("2018-11-05") and times[-1].startswith("2018-12-17")
    tracking = [r.get("marketing", {}).get("trackingCode") for _, r in good]
    assert tracking.count("emaillaunch") == 3_896 and tracking.count("emailLaunch") == 1


def test_end_user_ids_source_uses_the_files_own_namespace_codes() -> None:
    rows = read_parquet(LUMA_EVENTS, batch_size=100)
    _, rec = next(rows)
    assert isinstance(rec, dict)
    rec = end_user_ids(rec)
    assert rec["identityMap"]["ECID"][0] == {
        "id": "79234187510694469448182042242884070212",
        "primary": True,
        "authenticatedState": "ambiguous",
    }
    assert rec["identityMap"]["AAID"][0]["id"] == "F52B311DA66E07-645029D48D9E9C2"
    assert end_user_ids({"a": 1}) == {"a": 1}


def test_parquet_maps_nested_timestamps_and_decimals(tmp_path: Path) -> None:
    f = tmp_path / "t.parquet"
    idmap = pa.map_(pa.string(), pa.list_(pa.struct([("id", pa.string()), ("primary", pa.bool_())])))
    table = pa.table(
        {
            "_id": ["a", "b"],
            "timestamp": pa.array(
                [datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC), None], pa.timestamp("us", "UTC")
            ),
            "identityMap": pa.array([[("Email", [{"id": "x@y.z", "primary": True}])], None], idmap),
            "nested": pa.array(
                [{"when": datetime(2024, 5, 6), "amount": Decimal("1.25")}, {"when": None, "amount": None}],
                pa.struct([("when", pa.timestamp("ms")), ("amount", pa.decimal128(5, 2))]),
            ),
        }
    )
    pq.write_table(table, f)
    assert list(read_file(f)) == [
        (
            1,
            {
                "_id": "a",
                "timestamp": "2024-01-02T03:04:05.123Z",
                "identityMap": {"Email": [{"id": "x@y.z", "primary": True}]},
                "nested": {"when": "2024-05-06T00:00:00.000Z", "amount": 1.25},
            },
        ),
        (2, {"_id": "b", "nested": {}}),
    ]
    second = list(read_parquet(f, drop_nulls=False))[1][1]
    assert isinstance(second, dict) and second["timestamp"] is None


def test_parquet_fast_path_keeps_tz_and_maps(tmp_path: Path) -> None:
    f = tmp_path / "fast.parquet"
    pq.write_table(
        pa.table(
            {
                "ts": pa.array([datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)], pa.timestamp("ns", "UTC")),
                "m": pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64())),
                "l": pa.array([[{"a": 1}, {"a": None}]]),
            }
        ),
        f,
    )
    assert list(read_file(f)) == [(1, {"ts": "2024-01-02T03:04:05.000Z", "m": {"k": 1}, "l": [{"a": 1}, {}]})]


def test_parquet_from_bytes_and_exact_counts_across_batches(tmp_path: Path) -> None:
    f = tmp_path / "n.parquet"
    pq.write_table(pa.table({"_id": [str(i) for i in range(2_345)]}), f, row_group_size=500)
    rows = list(read_file(f.read_bytes(), "parquet", batch_size=300))
    assert len(rows) == 2_345 and rows[-1] == (2_345, {"_id": "2344"})


def test_invalid_parquet_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "bad.parquet"
    f.write_bytes(b'{"not": "parquet"}')
    with pytest.raises(InvalidInput, match="not a valid Parquet file") as e:
        read_file(f)
    assert e.value.path == str(f)


def test_truncated_parquet_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "cut.parquet"
    data = LUMA_EVENTS.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInput):
        list(read_file(f))


# ---- identity sources -----------------------------------------------------------


def test_identity_fields_add_dedupe_and_skip_empty() -> None:
    src = IdentityFields(
        {
            "crm.id": {"namespace": "CRMID", "primary": True, "authenticatedState": "authenticated"},
            "email": "Email",
            "alt": IdentityField("Email"),
            "missing.path": "Phone",
        }
    )
    rec = src(
        {
            "crm": {"id": 42},
            "email": "a@b.c",
            "alt": "a@b.c",
            "identityMap": {"Email": [{"id": "z@b.c"}]},
        }
    )
    assert rec["identityMap"] == {
        "Email": [{"id": "z@b.c"}, {"id": "a@b.c", "primary": False, "authenticatedState": "ambiguous"}],
        "CRMID": [{"id": "42", "primary": True, "authenticatedState": "authenticated"}],
    }
    assert src({"email": ""}) == {"email": ""}
    assert IdentityFields(src.to_json()).to_json() == src.to_json()
    with pytest.raises(InvalidInput, match="needs a namespace"):
        IdentityFields({"x": {"primary": True}})
