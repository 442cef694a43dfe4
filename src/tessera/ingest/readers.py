"""Batch file readers: JSON array, JSON lines, CSV (with a column → XDM path mapping) and Parquet.

Every reader yields ``(row, record_or_error)`` pairs: ``row`` is the 1-based number of the record
in the file, the second item is either the record (a plain ``dict``) or a :class:`RowError`
saying where and what was wrong. A bad row never stops the good ones; only a file that cannot be
read at all (not Parquet, not UTF-8, not JSON) raises :class:`tessera.errors.InvalidInput`,
before any row is yielded.

Identity sources: some files keep identities outside ``identityMap`` (the Luma events file has
them in ``endUserIDs``; a CSV has them in plain columns). An :class:`IdentityFields` mapping
(field path → namespace) copies such values into ``identityMap`` entries as rows are read.
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, Literal

import orjson

from tessera.errors import InvalidInput
from tessera.model import format_time, parse_time

Format = Literal["json", "jsonl", "csv", "parquet"]
Record = dict[str, Any]
Source = str | os.PathLike[str] | bytes

FORMATS: tuple[Format, ...] = ("json", "jsonl", "csv", "parquet")
_EXTENSIONS: dict[str, Format] = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


@dataclass(frozen=True, slots=True)
class RowError:
    """One row that could not be read.

    Attributes:
        message: what was wrong, e.g. ``"not valid JSON: unexpected character"``.
        location: where, e.g. ``"line 7, column 12"`` or ``"line 4, column ZIP"``.
    """

    message: str
    location: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


Row = tuple[int, Record | RowError]
IdentitySource = Callable[[Record], Record]


@dataclass(frozen=True, slots=True)
class IdentityField:
    """Where one identity lives in a record and which namespace it belongs to."""

    namespace: str
    primary: bool = False
    authenticated_state: str = "ambiguous"


class IdentityFields:
    """An identity source: copy values found at field paths into ``identityMap``.

    Args:
        fields: dotted field path → namespace code, or → :class:`IdentityField`, or → a dict
            ``{"namespace", "primary", "authenticatedState"}`` (the JSON form a catalog can store).

    Fields keep their value; empty or missing values are skipped; a value already present in
    ``identityMap`` under the same namespace is not added twice.

    >>> src = IdentityFields({"crm.id": {"namespace": "CRMID", "primary": True}})
    >>> src({"crm": {"id": "c-1"}})["identityMap"]
    {'CRMID': [{'id': 'c-1', 'primary': True, 'authenticatedState': 'ambiguous'}]}
    """

    def __init__(self, fields: Mapping[str, str | IdentityField | Mapping[str, Any]]) -> None:
        self.fields: dict[tuple[str, ...], IdentityField] = {}
        for path, spec in fields.items():
            if isinstance(spec, str):
                f = IdentityField(spec)
            elif isinstance(spec, IdentityField):
                f = spec
            else:
                if "namespace" not in spec:
                    raise InvalidInput(f"identity field {path!r} needs a namespace", path=path)
                f = IdentityField(
                    str(spec["namespace"]),
                    bool(spec.get("primary", False)),
                    str(spec.get("authenticatedState", "ambiguous")),
                )
            self.fields[tuple(path.split("."))] = f

    def to_json(self) -> dict[str, dict[str, Any]]:
        """The JSON form accepted by the constructor."""
        return {
            ".".join(p): {
                "namespace": f.namespace,
                "primary": f.primary,
                "authenticatedState": f.authenticated_state,
            }
            for p, f in self.fields.items()
        }

    def __call__(self, record: Record) -> Record:
        idmap = record.get("identityMap")
        if not isinstance(idmap, dict):
            idmap = {}
        for path, f in self.fields.items():
            value: Any = record
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
                if value is None:
                    break
            if value is None or value == "":
                continue
            value = str(value)
            entries = idmap.setdefault(f.namespace, [])
            if any(isinstance(e, dict) and e.get("id") == value for e in entries):
                continue
            entries.append({"id": value, "primary": f.primary, "authenticatedState": f.authenticated_state})
        if idmap:
            record["identityMap"] = idmap
        return record


def end_user_ids(record: Record) -> Record:
    """Identity source for Adobe Analytics ``endUserIDs``: every ``endUserIDs._experience.<x>``
    entry that carries ``{id, namespace: {code}, primary}`` becomes an ``identityMap`` entry
    under its own namespace code (Luma: ``mcid`` → ECID, ``aaid`` → AAID).

    >>> r = end_user_ids({"endUserIDs": {"_experience": {"mcid": {"id": "1", "namespace": {"code": "ECID"}, "primary": True}}}})
    >>> r["identityMap"]["ECID"][0]["id"]
    '1'
    """
    exp = record.get("endUserIDs", {})
    exp = exp.get("_experience") if isinstance(exp, dict) else None
    if not isinstance(exp, dict):
        return record
    idmap = record.get("identityMap")
    if not isinstance(idmap, dict):
        idmap = {}
    for entry in exp.values():
        if not isinstance(entry, dict) or not entry.get("id"):
            continue
        ns = entry.get("namespace")
        code = ns.get("code") if isinstance(ns, dict) else None
        if not code:
            continue
        lst = idmap.setdefault(str(code), [])
        if not any(e.get("id") == entry["id"] for e in lst):
            lst.append(
                {
                    "id": str(entry["id"]),
                    "primary": bool(entry.get("primary")),
                    "authenticatedState": "ambiguous",
                }
            )
    if idmap:
        record["identityMap"] = idmap
    return record


def detect_format(path: str | os.PathLike[str]) -> Format:
    """The format implied by a file name's extension (``.snappy.parquet`` included).

    >>> detect_format("events.snappy.parquet")
    'parquet'
    >>> detect_format("people.ndjson")
    'jsonl'
    """
    suffixes = [s.lower() for s in Path(path).suffixes]
    for s in reversed(suffixes):
        if s in _EXTENSIONS:
            return _EXTENSIONS[s]
        if s not in (".gz", ".snappy", ".zst"):
            break
    raise InvalidInput(
        f"cannot tell the format of {os.fspath(path)!r} from its extension; "
        f"give format= one of {', '.join(FORMATS)}",
        path=os.fspath(path),
    )


def read_file(
    source: Source,
    format: Format | str | None = None,
    *,
    mapping: Mapping[str, str | Mapping[str, Any]] | None = None,
    identity_source: IdentitySource | Mapping[str, Any] | None = None,
    batch_size: int = 8192,
) -> Iterator[Row]:
    """Read a batch file as ``(row, record | RowError)`` pairs.

    Args:
        source: a file path, or the file's bytes (then ``format`` is required).
        format: ``json``, ``jsonl``, ``csv`` or ``parquet``; default: from the file extension.
        mapping: CSV only: column → XDM path (see :func:`read_csv`).
        identity_source: applied to every good record: a function, or a mapping accepted by
            :class:`IdentityFields`.
        batch_size: Parquet record batch size.

    Raises:
        InvalidInput: the file cannot be read at all (checked before the first row is yielded).
    """
    if format is None:
        if isinstance(source, bytes):
            raise InvalidInput("format is required when reading bytes", path="format")
        format = detect_format(source)
    if format not in FORMATS:
        raise InvalidInput(f"unknown format {format!r}; use one of {', '.join(FORMATS)}", path="format")
    if mapping is not None and format != "csv":
        raise InvalidInput("a column mapping applies to CSV files only", path="mapping")
    rows: Iterator[Row]
    if format == "json":
        rows = read_json(source)
    elif format == "jsonl":
        rows = read_jsonl(source)
    elif format == "csv":
        rows = read_csv(source, mapping=mapping)
    else:
        rows = read_parquet(source, batch_size=batch_size)
    if identity_source is None:
        return rows
    fn = identity_source if callable(identity_source) else IdentityFields(identity_source)
    return _with_identities(rows, fn)


def _with_identities(rows: Iterator[Row], fn: IdentitySource) -> Iterator[Row]:
    for n, rec in rows:
        yield (n, rec) if isinstance(rec, RowError) else (n, fn(rec))


def _name(source: Source) -> str:
    return "<bytes>" if isinstance(source, bytes) else os.fspath(source)


def _open(source: Source) -> BinaryIO:
    if isinstance(source, bytes):
        return io.BytesIO(source)
    try:
        return open(source, "rb")  # noqa: SIM115 - handed to the caller, closed there
    except OSError as e:
        raise InvalidInput(f"cannot open {_name(source)}: {e.strerror}", path=_name(source)) from e


def _check_text_head(head: bytes, name: str, what: str) -> None:
    for bom, enc in _BOMS:
        if head.startswith(bom):
            raise InvalidInput(f"{name} is {enc}-encoded; {what} files must be UTF-8", path=name)
    if head.startswith(b"PAR1"):
        raise InvalidInput(f"{name} is a Parquet file, not {what}; use format='parquet'", path=name)
    if b"\x00" in head:
        raise InvalidInput(f"{name} contains NUL bytes: it is binary, not {what} text", path=name)


def read_json(source: Source) -> Iterator[Row]:
    """A JSON file holding an array of records (or one record object, or JSON lines).

    A file whose first line is a complete object followed by more lines is read as JSON lines
    (a common ``.json`` naming of JSONL). Items that are not objects are row errors (``item N``); a file that is not JSON raises
    :class:`InvalidInput` with the line and column of the problem.
    """
    name = _name(source)
    with _open(source) as f:
        data = f.read()
    _check_text_head(data[:4096], name, "JSON")
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        line, col = _line_col(data, e.pos)
        # Many ".json" files are really JSON lines: one complete object, then more on the next line.
        if line > 1 and _first_line_is_object(data):
            return _jsonl_rows(io.BytesIO(data))
        raise InvalidInput(f"{name} is not valid JSON: {e.msg}", path=f"{name}:{line}:{col}") from e
    return _json_items(doc, name)


def _first_line_is_object(data: bytes) -> bool:
    first = data.lstrip().split(b"\n", 1)[0]
    try:
        return isinstance(orjson.loads(first), dict)
    except orjson.JSONDecodeError:
        return False


def _json_items(doc: Any, name: str) -> Iterator[Row]:
    if isinstance(doc, dict):
        yield 1, doc
        return
    if not isinstance(doc, list):
        raise InvalidInput(f"{name} must hold a JSON array of records, found {type(doc).__name__}", path=name)
    for i, item in enumerate(doc, 1):
        if isinstance(item, dict):
            yield i, item
        else:
            yield i, RowError(f"expected a JSON object, found {_json_type(item)}", f"item {i}")


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}.get(
        type(v), "value"
    )


def _line_col(data: bytes, pos: int) -> tuple[int, int]:
    pos = max(0, min(pos, len(data)))
    line = data.count(b"\n", 0, pos) + 1
    col = pos - (data.rfind(b"\n", 0, pos) + 1) + 1
    return line, col


def read_jsonl(source: Source) -> Iterator[Row]:
    """JSON lines: one record per line; blank lines are skipped (not counted as rows).

    A bad line (not JSON, not an object, not UTF-8) is a row error located by line (and column)
    and never stops the lines after it.
    """
    name = _name(source)
    f = _open(source)
    try:
        head = f.read(4096)
        _check_text_head(head, name, "JSON lines")
        f.seek(0)
    except BaseException:
        f.close()
        raise
    return _jsonl_rows(f)


def _jsonl_rows(f: BinaryIO) -> Iterator[Row]:
    loads = orjson.loads
    row = 0
    with f:
        for lineno, line in enumerate(f, 1):
            if lineno == 1 and line.startswith(codecs.BOM_UTF8):
                line = line[3:]
            if not line.strip():
                continue
            row += 1
            line = line.rstrip(b"\r\n")
            try:
                rec = loads(line)
            except orjson.JSONDecodeError as e:
                yield row, _jsonl_error(line, lineno, e)
                continue
            if isinstance(rec, dict):
                yield row, rec
            else:
                yield row, RowError(f"expected a JSON object, found {_json_type(rec)}", f"line {lineno}")


def _jsonl_error(line: bytes, lineno: int, e: orjson.JSONDecodeError) -> RowError:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as u:  # orjson does not say where: find the first bad byte
        return RowError(f"not UTF-8 (byte 0x{line[u.start]:02x})", f"line {lineno}, column {u.start + 1}")
    return RowError(f"not valid JSON: {e.msg}", f"line {lineno}, column {e.pos + 1}")


_CSV_TYPES = ("string", "integer", "number", "boolean")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass(frozen=True, slots=True)
class _Column:
    index: int
    header: str
    path: tuple[str, ...]
    type: str


def _coerce(text: str, typ: str) -> Any:
    if typ == "string":
        return text
    if typ == "integer":
        return int(text)
    if typ == "number":
        v = float(text)
        return int(v) if v.is_integer() and "." not in text and "e" not in text.lower() else v
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(text)


def read_csv(
    source: Source,
    *,
    mapping: Mapping[str, str | Mapping[str, Any]] | None = None,
    delimiter: str = ",",
) -> Iterator[Row]:
    """CSV with a header row; each row becomes a nested record.

    Args:
        source: path or bytes (UTF-8, an optional BOM is skipped).
        mapping: column name → XDM path (``"person.name.firstName"``), or → ``{"path": ...,
            "type": "string" | "integer" | "number" | "boolean"}`` to coerce the text. Columns not
            in the mapping are dropped. Default: every column, its header as the dotted path, as
            text. Empty cells are left out of the record.
        delimiter: field separator.

    Row numbers count data rows (the header is not a row); errors give the file line and the
    column. A cell that does not convert to its type, or a row with the wrong number of cells,
    is a row error.

    >>> rows = list(read_csv(b"F_NAME,YOB\\nAda,1815\\n", mapping={"F_NAME": "person.name.firstName",
    ...     "YOB": {"path": "person.birthYear", "type": "integer"}}))
    >>> rows[0]
    (1, {'person': {'name': {'firstName': 'Ada'}, 'birthYear': 1815}})
    """
    name = _name(source)
    with _open(source) as f:
        raw = f.read()
    _check_text_head(raw[:4096], name, "CSV")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line, col = _line_col(raw, e.start)
        raise InvalidInput(
            f"{name} is not UTF-8 (byte 0x{raw[e.start]:02x} at line {line}, column {col}); save it as UTF-8",
            path=f"{name}:{line}:{col}",
        ) from e
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return iter(())
    except csv.Error as e:
        raise InvalidInput(f"{name}: cannot read the CSV header: {e}", path=f"{name}:1") from e
    columns = _csv_columns(header, mapping, name)
    return _csv_rows(reader, columns, len(header))


def _csv_columns(
    header: list[str], mapping: Mapping[str, str | Mapping[str, Any]] | None, name: str
) -> list[_Column]:
    seen: dict[str, int] = {}
    for i, h in enumerate(header):
        seen.setdefault(h, i)  # a repeated header (Luma's `timestamp`): the first one wins
    cols: list[_Column] = []
    if mapping is None:
        for h, i in seen.items():
            if h:
                cols.append(_Column(i, h, tuple(h.split(".")), "string"))
        return cols
    for h, spec in mapping.items():
        if h not in seen:
            raise InvalidInput(
                f"mapping names column {h!r}, which {name} does not have (columns: {', '.join(header)})",
                path=f"mapping.{h}",
            )
        if isinstance(spec, str):
            path, typ = spec, "string"
        else:
            path, typ = str(spec.get("path", "")), str(spec.get("type", "string"))
        if not path or any(not p for p in path.split(".")):
            raise InvalidInput(
                f"column {h!r} maps to an empty or malformed path {path!r}", path=f"mapping.{h}"
            )
        if typ not in _CSV_TYPES:
            raise InvalidInput(
                f"column {h!r} has type {typ!r}; use one of {', '.join(_CSV_TYPES)}", path=f"mapping.{h}.type"
            )
        cols.append(_Column(seen[h], h, tuple(path.split(".")), typ))
    return cols


def _csv_rows(reader: Any, columns: list[_Column], width: int) -> Iterator[Row]:
    row = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            row += 1
            yield row, RowError(f"malformed CSV: {e}", f"line {reader.line_num}")
            continue
        if not cells:
            continue  # a blank line is not a row
        row += 1
        if len(cells) != width:
            yield row, RowError(f"expected {width} cells, found {len(cells)}", f"line {reader.line_num}")
            continue
        rec: Record = {}
        err: RowError | None = None
        for col in columns:
            text = cells[col.index]
            if text == "":
                continue
            try:
                value = _coerce(text, col.type)
            except ValueError:
                err = RowError(
                    f"{text!r} is not a valid {col.type}", f"line {reader.line_num}, column {col.header}"
                )
                break
            target = rec
            for key in col.path[:-1]:
                nxt = target.get(key)
                if not isinstance(nxt, dict):
                    nxt = target[key] = {}
                target = nxt
            target[col.path[-1]] = value
        yield row, (err if err is not None else rec)


def read_parquet(source: Source, *, batch_size: int = 8192, drop_nulls: bool = True) -> Iterator[Row]:
    """Parquet, streamed in record batches; nested columns become nested dicts.

    Parquet cannot tell a missing field from a null one, so nulls are dropped by default
    (``drop_nulls``), which makes records look like their JSON form. Maps become dicts,
    timestamps become ISO-8601 UTC strings with ``Z`` (naive ones taken as UTC), dates become
    ``YYYY-MM-DD``.

    Raises:
        InvalidInput: not a Parquet file (checked on open), or corrupt data met while reading.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = _name(source)
    f = _open(source)
    try:
        pf = pq.ParquetFile(f)
    except (pa.ArrowException, OSError) as e:
        f.close()
        raise InvalidInput(f"{name} is not a valid Parquet file: {e}", path=name) from e
    return _parquet_rows(pf, f, name, batch_size, drop_nulls)


def _parquet_rows(pf: Any, f: BinaryIO, name: str, batch_size: int, drop_nulls: bool) -> Iterator[Row]:
    import pyarrow as pa

    row = 0
    with f:
        try:
            for batch in pf.iter_batches(batch_size=batch_size):
                # Records hold no cycles; pausing the cyclic GC while a batch is built avoids
                # repeated collections over hundreds of thousands of new dicts.
                was = gc.isenabled()
                gc.disable()
                try:
                    recs = _batch_records(batch, drop_nulls)
                finally:
                    if was:
                        gc.enable()
                for rec in recs:
                    row += 1
                    yield row, rec
        except (pa.ArrowException, OSError) as e:
            raise InvalidInput(
                f"{name}: corrupt Parquet data after row {row}: {e}", path=f"{name}:{row + 1}"
            ) from e


def _batch_records(batch: Any, drop_nulls: bool) -> list[Record]:
    """One record batch → records, column by column.

    Arrow's row-wise ``to_pylist`` converts nested values one Python object at a time (about
    0.3 ms for a wide Luma row); converting each leaf column in one call and assembling the dicts
    per struct level is an order of magnitude faster.
    """
    names = batch.schema.names
    arrays = [batch.column(i) for i in range(batch.num_columns)]
    cols = [_column(a, drop_nulls) for a in arrays]
    nulls = any(a.null_count for a in arrays)
    return _assemble(names, cols, batch.num_rows, drop_nulls and nulls)


def _assemble(names: list[str], cols: list[list[Any]], n: int, drop_nulls: bool) -> list[dict[str, Any]]:
    """Rows of dicts from equal-length columns; ``drop_nulls`` only when some column has a null."""
    if not names:
        return [{} for _ in range(n)]
    if drop_nulls:
        return [{k: x for k, x in zip(names, vals) if x is not None} for vals in zip(*cols)]  # noqa: B905
    return [dict(zip(names, vals)) for vals in zip(*cols)]  # noqa: B905 - equal lengths by construction


def _column(arr: Any, drop_nulls: bool) -> list[Any]:
    """An Arrow array → a list of JSON-shaped Python values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = arr.type
    if pa.types.is_struct(t):
        names = [t.field(i).name for i in range(t.num_fields)]
        flat = arr.flatten()
        children = [_column(c, drop_nulls) for c in flat]
        rows = _assemble(names, children, len(arr), drop_nulls and any(c.null_count for c in flat))
        if arr.null_count:
            valid = arr.is_valid().to_pylist()
            return [r if ok else None for r, ok in zip(rows, valid, strict=True)]
        return rows
    if pa.types.is_timestamp(t):
        utc = arr.cast(pa.timestamp("ms", tz="UTC" if t.tz is not None else None), safe=False)
        return pc.strftime(utc, format="%Y-%m-%dT%H:%M:%SZ").to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_date(t):
        return arr.cast(pa.string()).to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_decimal(t):
        return arr.cast(pa.float64()).to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_map(t):
        offs = arr.offsets.to_pylist()
        base = offs[0]
        keys = _column(arr.keys, drop_nulls)
        items = _column(arr.items, drop_nulls)
        valid = arr.is_valid().to_pylist() if arr.null_count else None
        out: list[Any] = []
        for i in range(len(arr)):
            if valid is not None and not valid[i]:
                out.append(None)
                continue
            a, b = offs[i] - base, offs[i + 1] - base
            out.append(dict(zip(keys[a:b], items[a:b], strict=True)))
        return out
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        offs = arr.offsets.to_pylist()
        base = offs[0]
        values = _column(arr.flatten(), drop_nulls)
        valid = arr.is_valid().to_pylist() if arr.null_count else None
        return [
            None if valid is not None and not valid[i] else values[offs[i] - base : offs[i + 1] - base]
            for i in range(len(arr))
        ]
    return arr.to_pylist()  # type: ignore[no-any-return]


def _has_special(t: Any) -> bool:
    """True if a nested type holds timestamps, dates or decimals (needing :func:`_plain`)."""
    import pyarrow as pa

    if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t) or pa.types.is_decimal(t):
        return True
    if pa.types.is_struct(t):
        return any(_has_special(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _has_special(t.value_type)
    if pa.types.is_map(t):
        return _has_special(t.key_type) or _has_special(t.item_type)
    return False


def _strip_nulls(d: dict[str, Any]) -> dict[str, Any]:
    """Drop null members, recursively, from JSON-shaped data (dicts, lists, scalars only)."""
    out = {}
    for k, v in d.items():
        if v is None:
            continue
        t = type(v)
        if t is dict:
            v = _strip_nulls(v)
        elif t is list:
            v = [_strip_nulls(x) if type(x) is dict else x for x in v]
        out[k] = v
    return out


def _plain(value: Any, drop_nulls: bool) -> Any:
    """Arrow Python values → JSON-shaped values."""
    if isinstance(value, dict):
        if drop_nulls:
            return {k: _plain(v, True) for k, v in value.items() if v is not None}
        return {k: _plain(v, False) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, drop_nulls) for v in value]
    if isinstance(value, datetime):
        return format_time(parse_time(value))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


__all__ = [
    "FORMATS",
    "Format",
    "IdentityField",
    "IdentityFields",
    "IdentitySource",
    "Row",
    "RowError",
    "detect_format",
    "end_user_ids",
    "read_csv",
    "read_file",
    "read_json",
    "read_jsonl",
    "read_parquet",
]
