"""Write a generated demo population to JSON-lines and Parquet files, one file per dataset."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from .generator import REFERENCE_TIME, DemoData, generate

FORMATS = ("jsonl", "parquet")

# identityMap is a map from namespace code to a list of identities (as AEP writes it in Parquet).
IDENTITY_MAP_TYPE = pa.map_(
    pa.string(),
    pa.list_(pa.struct([("id", pa.string()), ("primary", pa.bool_()), ("authenticatedState", pa.string())])),
)

_SCHEMA_SAMPLE_PEOPLE = 400
_SCHEMA_SAMPLE_SEED = 0x5EED


@cache
def parquet_schema(dataset: str) -> pa.Schema:
    """The Arrow schema used for ``dataset``'s Parquet files.

    Inferred once from a fixed sample population (so every file of a dataset has the same
    schema whatever its size), with ``identityMap`` as a ``map<string, list<struct>>``.
    """
    sample = generate(_SCHEMA_SAMPLE_PEOPLE, seed=_SCHEMA_SAMPLE_SEED).dataset(dataset)
    inferred = pa.Table.from_pylist(list(sample.records())).schema
    fields = [pa.field(f.name, IDENTITY_MAP_TYPE) if f.name == "identityMap" else f for f in inferred]
    return pa.schema(fields)


def write(
    directory: str | Path,
    people: int,
    *,
    seed: int = 0,
    formats: Iterable[str] = FORMATS,
    reference_time: datetime = REFERENCE_TIME,
    datasets: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Generate a demo population and write each dataset as ``<name>.jsonl`` / ``<name>.parquet``.

    Args:
        directory: output folder (created if missing).
        people: number of known customers.
        seed: random seed (same seed → byte-identical files).
        formats: any of ``"jsonl"`` and ``"parquet"``.
        reference_time: the demo's "now".
        datasets: names to write (default: all).

    Returns:
        The manifest, also written to ``manifest.json``: the :meth:`DemoData.summary` plus, per
        dataset, its XDM class, record count and file names.
    """
    fmts = tuple(formats)
    for f in fmts:
        if f not in FORMATS:
            raise ValueError(f"unknown format {f!r}; use one of {', '.join(FORMATS)}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    demo = generate(people, seed=seed, reference_time=reference_time)
    wanted = set(datasets) if datasets is not None else None
    entries: dict[str, Any] = {}
    for ds in demo.datasets:
        if wanted is not None and ds.name not in wanted:
            continue
        files = _write_dataset(demo, ds.name, out, fmts)
        entries[ds.name] = {
            "class": ds.xdm_class,
            "title": ds.title,
            "records": files.pop("records"),
            **files,
        }
    manifest = {**demo.summary(), "files": entries}
    (out / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest


def _write_dataset(demo: DemoData, name: str, out: Path, fmts: tuple[str, ...]) -> dict[str, Any]:
    ds = demo.dataset(name)
    jsonl = (out / f"{name}.jsonl").open("wb") if "jsonl" in fmts else None
    writer = None
    schema = parquet_schema(name) if "parquet" in fmts else None
    if schema is not None:
        writer = pq.ParquetWriter(out / f"{name}.parquet", schema, compression="zstd")
    count = 0
    try:
        for chunk in ds.chunks():
            count += len(chunk)
            if jsonl is not None:
                dumps = orjson.dumps
                jsonl.write(b"\n".join(dumps(r) for r in chunk))
                if chunk:
                    jsonl.write(b"\n")
            if writer is not None and chunk:
                writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
    finally:
        if jsonl is not None:
            jsonl.close()
        if writer is not None:
            writer.close()
    files: dict[str, Any] = {"records": count}
    for f in fmts:
        files[f] = f"{name}.{f}"
    return files
