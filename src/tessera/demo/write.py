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

from .generator import REFERENCE_TIME, generate

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
    records = list(sample.records())
    # from_pylist takes top-level columns from the first row only; nested structs are unioned.
    names = list(dict.fromkeys(k for r in records for k in r))
    inferred = pa.Table.from_pydict({k: [r.get(k) for r in records] for k in names}).schema
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
    chosen = [d for d in demo.datasets if datasets is None or d.name in set(datasets)]
    sinks = {d.name: _Sink(out, d.name, fmts) for d in chosen}
    try:
        # Cohort-major: each cohort is planned once and shared by all datasets.
        for ds, chunk in demo.batches(sinks):
            sinks[ds.name].write(chunk)
    finally:
        for sink in sinks.values():
            sink.close()
    entries: dict[str, Any] = {}
    for d in chosen:
        entries[d.name] = {"class": d.xdm_class, "title": d.title, "records": sinks[d.name].count}
        for f in fmts:
            entries[d.name][f] = f"{d.name}.{f}"
    manifest = {**demo.summary(), "files": entries}
    (out / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest


class _Sink:
    """The open output files of one dataset."""

    def __init__(self, out: Path, name: str, fmts: tuple[str, ...]) -> None:
        self.count = 0
        self.jsonl = (out / f"{name}.jsonl").open("wb") if "jsonl" in fmts else None
        self.schema = parquet_schema(name) if "parquet" in fmts else None
        self.parquet = None
        if self.schema is not None:
            self.parquet = pq.ParquetWriter(out / f"{name}.parquet", self.schema, compression="zstd")

    def write(self, chunk: list[dict[str, Any]]) -> None:
        if not chunk:
            return
        self.count += len(chunk)
        if self.jsonl is not None:
            dumps = orjson.dumps
            self.jsonl.write(b"\n".join([dumps(r) for r in chunk]))
            self.jsonl.write(b"\n")
        if self.parquet is not None:
            self.parquet.write_table(pa.Table.from_pylist(chunk, schema=self.schema))

    def close(self) -> None:
        if self.jsonl is not None:
            self.jsonl.close()
        if self.parquet is not None:
            self.parquet.close()
