"""The relation contract shared by the SQL compiler and the segmentation service.

A profile relation is ONE DuckDB table (or Spark DataFrame) with three columns:

* ``profile_id VARCHAR`` — the profile's id;
* ``profile STRUCT(...)`` — the merged profile, typed from the profile union schema;
* ``events STRUCT(...)[]`` — the profile's ExperienceEvents, typed from the event union schema.

Types follow the resolved JSON Schema: objects with ``properties`` → ``STRUCT`` (field names exactly
as in XDM), arrays → ``T[]``, maps (``additionalProperties``) → ``MAP(VARCHAR, T)``, ``format:
date-time`` → ``TIMESTAMP`` (UTC, no zone), ``format: date`` → ``DATE``, integer → ``BIGINT``, number →
``DOUBLE``, boolean → ``BOOLEAN``, other strings → ``VARCHAR``. Unknown shapes are ``VARCHAR`` (JSON
text). Fields absent from the data are NULL; absent arrays are NULL (not empty).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import sqlglot.expressions as E

_log = logging.getLogger("tessera.pql")

_SIMPLE = {"integer": "BIGINT", "number": "DOUBLE", "boolean": "BOOLEAN"}
_SCALAR_KINDS = frozenset({"integer", "number", "boolean", "string"})


ITEM = "[]"
"""The step from a list to its items in a :class:`Reads` tree."""


@dataclass
class Reads:
    """The parts of a relation value (``profile`` or ``events``) a query reads.

    ``whole``: the value itself is used (compared, returned, sorted...), so all of it is needed.
    Otherwise only ``fields`` (field names, :data:`ITEM` for a list's items) are read, plus the
    value's presence: whether it is null and, for a list, how many items it has.
    """

    whole: bool = False
    fields: dict[str, Reads] = field(default_factory=dict)


def _json_structure(s: dict[str, Any] | None) -> Any:
    """The ``from_json`` structure (nested dict/list of type names) for a schema node."""
    if not s:
        return "VARCHAR"
    typ = s.get("type")
    if isinstance(typ, list):
        rest = [t for t in typ if t != "null"]
        typ = rest[0] if len(rest) == 1 else None
    if typ == "string":
        return {"date-time": "TIMESTAMP", "date": "DATE"}.get(s.get("format", ""), "VARCHAR")
    if typ in _SIMPLE:
        return _SIMPLE[typ]
    if typ == "array":
        return [_json_structure(s.get("items"))]
    if typ == "object" or "properties" in s:
        props = s.get("properties")
        if props:
            return {k: _json_structure(v) for k, v in props.items()}
        extra = s.get("additionalProperties")
        if isinstance(extra, dict):
            return f"MAP(VARCHAR, {duckdb_type(extra)})"
    return "VARCHAR"


def _kind(s: dict[str, Any]) -> str | None:
    typ = s.get("type")
    if isinstance(typ, list):
        rest = [t for t in typ if t != "null"]
        typ = rest[0] if len(rest) == 1 else None
    if typ is None and "properties" in s:
        return "object"
    return typ if isinstance(typ, str) else None


def prune_schema(schema: dict[str, Any] | None, reads: Reads) -> dict[str, Any] | None:
    """``schema`` with only the parts ``reads`` names (see :func:`tessera.pql.to_sql.reads_of`).

    An object whose fields are none of them read keeps one scalar field, so that it stays a
    STRUCT: null where the data has no object, and, as a list item, counted.

    >>> s = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
    >>> duckdb_type(prune_schema(s, Reads(fields={"b": Reads()})))
    'STRUCT("b" BIGINT)'
    """
    if not schema or reads.whole:
        return schema
    kind = _kind(schema)
    if kind == "array":
        return {**schema, "items": prune_schema(schema.get("items"), reads.fields.get(ITEM, Reads()))}
    props = schema.get("properties")
    if kind != "object" or not isinstance(props, dict) or not props:
        return schema
    kept = {k: prune_schema(props[k], r) for k, r in reads.fields.items() if k in props}
    if not kept:
        name = next((k for k, v in props.items() if _kind(v or {}) in _SCALAR_KINDS), next(iter(props)))
        kept = {name: prune_schema(props[name], Reads())}
    return {**schema, "properties": kept}


def _structure_to_sql(x: Any) -> str:
    if isinstance(x, str):
        return x
    if isinstance(x, list):
        return f"{_structure_to_sql(x[0])}[]"
    inner = ", ".join(
        f"{E.to_identifier(k, quoted=True).sql('duckdb')} {_structure_to_sql(v)}" for k, v in x.items()
    )
    return f"STRUCT({inner})"


def duckdb_type(schema: dict[str, Any] | None) -> str:
    """The DuckDB type of a resolved JSON Schema node.

    >>> duckdb_type({"type": "object", "properties": {"a": {"type": "string", "format": "date-time"}}})
    'STRUCT("a" TIMESTAMP)'
    """
    return _structure_to_sql(_json_structure(schema))


def load_relation(
    con: Any,
    table: str,
    profile_schema: dict[str, Any],
    event_schema: dict[str, Any],
    rows: Iterable[tuple[str, dict[str, Any], list[dict[str, Any]]]],
    batch_size: int = 50_000,
) -> int:
    """Create (or replace) ``table`` on DuckDB connection ``con`` and fill it from ``rows``.

    Each row is ``(profile_id, merged profile dict, list of event dicts)``. Values are converted by
    DuckDB's ``from_json`` with a structure derived from the schemas (one vectorised pass per batch).

    Returns:
        The number of profiles loaded.
    """
    ident = E.to_identifier(table, quoted=True).sql("duckdb")
    p_struct = _json_structure(profile_schema)
    e_struct = [_json_structure(event_schema)]
    con.execute(
        f"CREATE OR REPLACE TABLE {ident} (profile_id VARCHAR, profile {_structure_to_sql(p_struct)}, "
        f"events {_structure_to_sql(e_struct)})"
    )
    p_lit = E.Literal.string(orjson.dumps(p_struct).decode()).sql("duckdb")
    e_lit = E.Literal.string(orjson.dumps(e_struct).decode()).sql("duckdb")
    total = 0
    ids: list[str] = []
    profiles: list[str] = []
    events: list[str] = []

    def flush() -> None:
        if not ids:
            return
        batch = pa.table({"pid": ids, "pj": profiles, "ej": events})
        con.register("_tessera_pql_batch", batch)
        con.execute(
            f"INSERT INTO {ident} SELECT pid, from_json(pj, {p_lit}), from_json(ej, {e_lit}) "
            "FROM _tessera_pql_batch"
        )
        con.unregister("_tessera_pql_batch")
        ids.clear()
        profiles.clear()
        events.clear()

    for pid, prof, evs in rows:
        ids.append(pid)
        profiles.append(orjson.dumps(prof).decode())
        events.append(orjson.dumps(evs).decode())
        total += 1
        if len(ids) >= batch_size:
            flush()
    flush()
    return total


def _at_path(column: str, structure: Any, path: str) -> str:
    """SQL reading ``structure`` at JSON ``path`` (``$`` or ``$.a.b``) of a JSON text column, in one
    parse: the structure is wrapped in the path's objects and the fields are picked back out."""
    steps = [s for s in path.removeprefix("$").split(".") if s]
    wrapped = structure
    for step in reversed(steps):
        wrapped = {step: wrapped}
    sql = f"from_json({column}, {E.Literal.string(orjson.dumps(wrapped).decode()).sql('duckdb')})"
    for step in steps:
        sql = f"({sql}).{E.to_identifier(step, quoted=True).sql('duckdb')}"
    return sql


def _read_ahead(chunks: Iterable[pa.Table]) -> Iterator[pa.Table]:
    """``chunks`` in order, each next one produced on a helper thread while the caller loads
    this one: reading a chunk (Arrow and SQLite work in C, without the GIL) overlaps DuckDB
    parsing the previous one."""
    source = iter(chunks)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tessera-relation-read") as reader:
        upcoming = reader.submit(next, source, None)
        while (chunk := upcoming.result()) is not None:
            upcoming = reader.submit(next, source, None)
            yield chunk


def load_relation_from_documents(
    con: Any,
    table: str,
    profile_schema: dict[str, Any],
    event_schema: dict[str, Any],
    *,
    profiles: Iterable[pa.Table],
    owners: Iterable[pa.Table],
    events: Iterable[pa.Table],
    profile_path: str = "$",
    event_path: str = "$",
) -> int:
    """:func:`load_relation` from stored JSON documents, without building Python dicts.

    The documents are parsed by DuckDB (only the fields of the schemas) and the events are
    grouped under their profiles by a join, so a batch job's Python work is reading bytes.

    Args:
        profiles: chunks ``(profile_id, doc)``: ``doc`` is JSON text holding the profile at
            ``profile_path``.
        owners: chunks ``(owner, profile_id)``: which profile each event owner belongs to.
        events: chunks ``(owner, ts, tiebreak, doc)``: ``doc`` holds the event at ``event_path``;
            a profile's events are listed by ``ts`` then ``tiebreak``. Events whose owner belongs
            to no profile are left out.

    Returns:
        The number of profiles loaded.
    """
    ident = E.to_identifier(table, quoted=True).sql("duckdb")
    p_struct = _json_structure(profile_schema)
    e_struct = _json_structure(event_schema)
    p_value = _at_path("doc", p_struct, profile_path)
    e_value = _at_path("doc", e_struct, event_path)
    staged = "_tessera_chunk"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _tessera_p (profile_id VARCHAR, profile {_structure_to_sql(p_struct)})"
    )
    con.execute("CREATE OR REPLACE TEMP TABLE _tessera_o (owner VARCHAR, profile_id VARCHAR)")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _tessera_e "
        f"(owner VARCHAR, ts BIGINT, tiebreak VARCHAR, event {_structure_to_sql(e_struct)})"
    )
    loads = [
        (
            profiles,
            f"INSERT INTO _tessera_p SELECT profile_id, {p_value} FROM {staged}",
        ),
        (owners, f"INSERT INTO _tessera_o SELECT owner, profile_id FROM {staged}"),
        (
            events,
            f"INSERT INTO _tessera_e SELECT owner, ts, tiebreak, {e_value} FROM {staged}",
        ),
    ]
    spent: list[float] = []  # per phase: profiles, owners, events (reading and parsing), grouping
    counts: list[int] = []  # rows per load: profiles, owners, events
    try:
        for chunks, insert in loads:
            started = time.perf_counter()
            counts.append(0)
            for chunk in _read_ahead(chunks):
                counts[-1] += chunk.num_rows
                con.register(staged, chunk)
                try:
                    con.execute(insert)
                finally:
                    con.unregister(staged)
            spent.append(time.perf_counter() - started)
        started = time.perf_counter()
        con.execute(
            f"CREATE OR REPLACE TABLE {ident} AS "
            "SELECT p.profile_id, p.profile, "
            f"coalesce(g.events, []::{_structure_to_sql([e_struct])}) AS events "
            "FROM _tessera_p p LEFT JOIN ("
            "  SELECT o.profile_id, list(e.event ORDER BY e.ts, e.tiebreak) AS events"
            "  FROM _tessera_e e JOIN _tessera_o o ON e.owner = o.owner GROUP BY o.profile_id"
            ") g ON g.profile_id = p.profile_id"
        )
        total: int = con.execute(f"SELECT count(*) FROM {ident}").fetchone()[0]
        spent.append(time.perf_counter() - started)
        _log.info(
            "relation %s: %d profiles, %d identities, %d events; profiles %.2f s, owners %.2f s, "
            "events %.2f s, grouping %.2f s",
            table,
            total,
            counts[1],
            counts[2],
            *spent,
        )
    finally:
        for temp in ("_tessera_p", "_tessera_o", "_tessera_e"):
            con.execute(f"DROP TABLE IF EXISTS {temp}")
    return total
