"""Every profile of a sandbox as the input of a batch job, read from the store as JSON bytes.

A batch job over a million profiles cannot afford a Python dict per profile and per event: the
SQL path (:meth:`StoredProfiles.load_relation`) hands the stored documents to DuckDB, which parses
only the fields the job's segments read and groups events under their profiles with a join.
Segments evaluated by their closures still iterate Python rows, built one profile at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from tessera.gc_pause import gc_paused
from tessera.pql.relation import load_relation, load_relation_from_documents
from tessera.store.base import KEY_SEP

if TYPE_CHECKING:
    from tessera.platform import Sandbox

Row = tuple[str, dict[str, Any], list[dict[str, Any]]]


class StoredProfiles:
    """The rows of a batch job: ``(profile id, attributes, events)`` for every stored profile.

    Args:
        sandbox: the sandbox whose profile service reads the documents and whose identity graph
            says which identities make each profile.
        rows: builds the Python rows, for iteration.
    """

    def __init__(self, sandbox: Sandbox, rows: Callable[[], Iterator[Row]]) -> None:
        self._sandbox = sandbox
        self._rows = rows
        self._namespaces: dict[str, str] | None = None

    def __iter__(self) -> Iterator[Row]:
        return self._rows()

    def namespaces(self) -> dict[str, str]:
        """Each profile's primary identity namespace (``"unknown"`` when it has none): noted
        while :meth:`load_relation` read the documents, else read now."""
        if self._namespaces is not None:
            return self._namespaces
        import duckdb

        out: dict[str, str] = {}
        con = duckdb.connect()
        try:
            for chunk in self._sandbox.profiles.profile_documents():
                _note_namespaces(con, chunk, out)
        finally:
            con.close()
        return out

    def load_relation(
        self, con: Any, table: str, profile_schema: dict[str, Any], event_schema: dict[str, Any]
    ) -> int:
        """Build the PQL relation (see :mod:`tessera.pql.relation`) in ``table`` on ``con``."""
        if "segmentMembership" in profile_schema.get("properties", {}):
            # stored profiles carry memberships that batch rows leave out: build the rows
            return load_relation(con, table, profile_schema, event_schema, iter(self))
        import duckdb

        profiles, identity = self._sandbox.profiles, self._sandbox.identity
        profile_ids: list[pa.ChunkedArray] = []
        namespaces: dict[str, str] = {}
        side = duckdb.connect()  # the job's namespace counts, from the documents read here

        def profile_chunks() -> Iterator[pa.Table]:
            for chunk in profiles.profile_documents():
                profile_ids.append(chunk["profile_id"])
                _note_namespaces(side, chunk, namespaces)
                yield chunk

        def owner_chunks() -> Iterator[pa.Table]:  # after the profiles: every identity's profile
            pids, ns, values = identity.member_columns(pid for ids in profile_ids for pid in ids.to_pylist())
            step = 500_000
            for start in range(0, len(pids), step):
                part = slice(start, start + step)
                owner = pc.binary_join_element_wise(
                    pa.array(ns[part], pa.string()), pa.array(values[part], pa.string()), KEY_SEP
                )
                yield pa.table({"owner": owner, "profile_id": pa.array(pids[part], pa.string())})

        try:
            # millions of short-lived rows and no cycles: left on, the collector walks the whole
            # identity graph again and again while they are read (half the read time at 100k)
            with gc_paused():
                loaded = load_relation_from_documents(
                    con,
                    table,
                    profile_schema,
                    event_schema,
                    profiles=profile_chunks(),
                    owners=owner_chunks(),
                    events=profiles.event_documents(),
                    profile_path=profiles.PROFILE_ATTRIBUTES_PATH,
                    event_path=profiles.EVENT_RECORD_PATH,
                )
        finally:
            side.close()
        self._namespaces = namespaces
        return loaded


def _note_namespaces(con: Any, chunk: pa.Table, out: dict[str, str]) -> None:
    """Add each profile's primary namespace in ``chunk`` (``profile_id``, ``doc``) to ``out``."""
    con.register("_tessera_chunk", chunk)
    try:
        ids, found = (
            con.sql(
                "SELECT profile_id, coalesce(json_extract_string(doc, '$.primary.namespace'), 'unknown') "
                "FROM _tessera_chunk"
            )
            .to_arrow_table()
            .columns
        )
        out.update(zip(ids.to_pylist(), found.to_pylist(), strict=True))
    finally:
        con.unregister("_tessera_chunk")
