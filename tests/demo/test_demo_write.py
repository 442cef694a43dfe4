"""Writing demo data to JSONL and Parquet, and the shipped real sample files."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tessera.demo import REAL_DATASETS, RealDataset, generate, write
from tessera.ingest.readers import RowError, read_file


def test_write_jsonl_and_parquet_round_trip(tmp_path: Path) -> None:
    manifest = write(tmp_path, 120, seed=4)
    demo = generate(120, seed=4)
    assert manifest["datasets"] == demo.counts()
    assert orjson.loads((tmp_path / "manifest.json").read_bytes()) == manifest
    for ds in demo.datasets:
        expected = list(ds.records())
        for fmt in ("jsonl", "parquet"):
            rows = list(read_file(tmp_path / manifest["files"][ds.name][fmt]))
            assert [n for n, _ in rows] == list(range(1, len(expected) + 1))
            assert [r for _, r in rows] == expected, (ds.name, fmt)


def test_write_is_byte_identical_for_the_same_seed(tmp_path: Path) -> None:
    write(tmp_path / "a", 60, seed=8, formats=["jsonl"])
    write(tmp_path / "b", 60, seed=8, formats=["jsonl"])
    for f in (tmp_path / "a").glob("*.jsonl"):
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes()


def test_write_selected_datasets_and_bad_format(tmp_path: Path) -> None:
    m = write(tmp_path, 5, formats=["parquet"], datasets=["crm_profiles"])
    assert list(m["files"]) == ["crm_profiles"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crm_profiles.parquet", "manifest.json"]
    with pytest.raises(ValueError, match="unknown format"):
        write(tmp_path, 5, formats=["xml"])


@pytest.mark.parametrize("spec", REAL_DATASETS, ids=lambda s: s.name)
def test_real_sample_files_read_with_exact_counts(spec: RealDataset) -> None:
    rows = list(read_file(spec.path, spec.format, mapping=spec.mapping, identity_source=spec.identity_fields))
    assert len(rows) == spec.records
    assert not [r for _, r in rows if isinstance(r, RowError)]
    assert all(r.get("identityMap") for _, r in rows if not isinstance(r, RowError))
    assert (spec.path.parent / "LICENSE").exists()


def test_write_zero_people_gives_empty_but_readable_files(tmp_path: Path) -> None:
    m = write(tmp_path, 0)
    assert set(m["datasets"].values()) == {0}
    assert list(read_file(tmp_path / "web_events.parquet")) == []
    assert (tmp_path / "web_events.jsonl").read_bytes() == b""
