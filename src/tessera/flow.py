"""The data flow, in the order of the design diagram.

    record ─► xdm (normalise, size, validate) ─► identities (extract, refuse junk)
           ─► identity graph (link, rules, primary) ─► profile (fragment | event)
           ─► merged profiles refreshed ─► streaming segments evaluated

One call processes a chunk of rows against a staged view of the store and commits the chunk in
one atomic, durable write: rows are acknowledged only after that commit. A bad row is rejected
with a reason and never stops the good rows of the chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from tessera.errors import TesseraError
from tessera.model import Identity, parse_time, utcnow

if TYPE_CHECKING:
    from tessera.platform import Sandbox
    from tessera.store.staged import StagedStore


@dataclass
class Rejection:
    """Why one row was not ingested: what was wrong and where."""

    index: int
    code: str
    message: str
    path: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"index": self.index, "code": self.code, "message": self.message}
        if self.path:
            body["path"] = self.path
        return body


@dataclass
class ChunkResult:
    """What happened to each row of a chunk."""

    accepted: list[int] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    touched_profiles: set[str] = field(default_factory=set)
    """Profiles whose data changed in any way (streaming segments re-evaluate them)."""
    changed_profiles: set[str] = field(default_factory=set)
    """Profiles whose merged attributes or identities changed (their materialised view is refreshed)."""


class RowRejected(Exception):
    def __init__(self, code: str, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path


def process_chunk(
    sandbox: Sandbox,
    dataset: dict[str, Any],
    rows: Iterable[tuple[int, Any]],
    *,
    batch_id: str | None,
    ingested_at: datetime | None = None,
    upsert_deletes: dict[int, Sequence[str]] | None = None,
    before_commit: Callable[[StagedStore, ChunkResult], None] | None = None,
) -> ChunkResult:
    """Run rows of one dataset through every stage and commit them together.

    Args:
        sandbox: where the data goes.
        dataset: the catalog document of the target dataset.
        rows: ``(index, record)`` pairs; a record that is an ``Exception`` (a reader's parse error)
            is rejected with its message.
        batch_id: the batch the rows belong to (``None`` for streaming).
        ingested_at: ingestion time (default now, UTC); it orders fragments for merge policies.
        upsert_deletes: for upsert datasets, field paths to delete per row index.
        before_commit: stages extra writes that must commit atomically with the chunk (stream
            workers record the message ids they applied here, so a redelivery is skipped).
    """
    from tessera.catalog import identity_enabled, profile_enabled, upsert_enabled
    from tessera.ingest.readers import RowError

    now = ingested_at or utcnow()
    result = ChunkResult()
    schema_id = dataset["schemaRef"]["id"]
    schemas = sandbox.schemas
    plan = schemas.ingest_plan(schema_id)
    settings = sandbox.settings
    size_limit = settings.max_event_bytes if plan.is_event else settings.max_profile_record_bytes
    use_identity = identity_enabled(dataset)
    use_profile = profile_enabled(dataset)
    upsert = upsert_enabled(dataset) and not plan.is_event
    identity_source = dataset.get("identitySource")

    with sandbox.write_lock:
        staged = sandbox.begin()
        try:
            for index, raw in rows:
                try:
                    if isinstance(raw, Exception | RowError):
                        raise RowRejected("PARSE", str(raw))
                    if not isinstance(raw, dict):
                        raise RowRejected("TYPE", f"a record must be a JSON object, got {type(raw).__name__}")
                    record = plan.normalize(raw)
                    size = len(orjson.dumps(record))
                    if size > size_limit:
                        kind = "ExperienceEvent" if plan.is_event else "profile record"
                        raise RowRejected("SIZE", f"{kind} is {size} bytes; the limit is {size_limit} bytes")
                    problems = plan.validate(record)
                    if problems:
                        first = problems[0]
                        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
                        raise RowRejected("SCHEMA", first.message + more, first.path)
                    event_time = _event_time(record) if plan.is_event else None
                    identities, declared_primary = plan.identities(record, identity_source)
                    identities = sandbox.identity.check_row(identities)
                    if not identities:
                        raise RowRejected(
                            "IDENTITY", "the record carries no identity (identityMap or identity field)"
                        )
                    outcome = sandbox.identity.link_row(
                        staged,
                        identities,
                        declared_primary=declared_primary,
                        is_event=plan.is_event,
                        seen_at=event_time or now,
                        dataset_id=dataset["id"],
                        batch_id=batch_id,
                        link=use_identity,
                    )
                    result.touched_profiles |= outcome.touched_profiles
                    result.changed_profiles |= outcome.changed_profiles
                    if use_profile:
                        if plan.is_event:
                            changed = sandbox.profiles.put_event(
                                staged, dataset, outcome.primary, record, event_time or now, now, batch_id
                            )
                        else:
                            deletes = (upsert_deletes or {}).get(index, ())
                            changed = sandbox.profiles.put_record(
                                staged, dataset, outcome.primary, record, now, upsert=upsert, deletes=deletes
                            )
                        result.changed_profiles |= changed
                    result.accepted.append(index)
                except RowRejected as rej:
                    result.rejected.append(Rejection(index, rej.code, rej.message, rej.path))
                except TesseraError as err:
                    result.rejected.append(Rejection(index, type(err).__name__, err.message, err.path))
            sandbox.identity.flush(staged)
            if result.changed_profiles:
                sandbox.profiles.refresh(staged, result.changed_profiles, now)
            if result.touched_profiles:
                sandbox.segments_on_change(staged, result.touched_profiles, now)
            if before_commit is not None:
                before_commit(staged, result)
            staged.commit()
        except BaseException:
            staged.rollback()
            sandbox.identity.reload()
            raise
    return result


def _event_time(record: dict[str, Any]) -> datetime:
    raw = record.get("timestamp")
    if raw is None:
        raise RowRejected("SCHEMA", "an ExperienceEvent needs a timestamp", "timestamp")
    if "_id" not in record or not str(record["_id"]).strip():
        raise RowRejected("SCHEMA", "an ExperienceEvent needs an _id", "_id")
    try:
        return parse_time(raw)
    except (TypeError, ValueError) as exc:
        raise RowRejected("SCHEMA", f"timestamp {raw!r} is not an ISO-8601 date-time", "timestamp") from exc


__all__ = ["ChunkResult", "Identity", "Rejection", "process_chunk"]
