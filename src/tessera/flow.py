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

from tessera.errors import IdentityRejected, TesseraError
from tessera.model import Identity, parse_time, utcnow
from tessera.ops import metrics

if TYPE_CHECKING:
    from tessera.platform import Sandbox
    from tessera.store.staged import StagedStore
    from tessera.xdm.service import IngestPlan


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


@dataclass(frozen=True)
class _Settings:
    """What every row of one chunk shares: the dataset's plan, limits and switches."""

    plan: IngestPlan
    size_limit: int
    use_identity: bool
    use_profile: bool
    upsert: bool
    identity_source: Any

    @classmethod
    def of(cls, sandbox: Sandbox, dataset: dict[str, Any]) -> _Settings:
        from tessera.catalog import identity_enabled, profile_enabled, upsert_enabled

        plan = sandbox.schemas.ingest_plan(dataset["schemaRef"]["id"])
        settings = sandbox.settings
        return cls(
            plan=plan,
            size_limit=settings.max_event_bytes if plan.is_event else settings.max_profile_record_bytes,
            use_identity=identity_enabled(dataset),
            use_profile=profile_enabled(dataset),
            upsert=upsert_enabled(dataset) and not plan.is_event,
            identity_source=dataset.get("identitySource"),
        )


_Prepared = tuple[dict[str, Any], datetime | None, list[Identity], Identity | None]
"""A checked row: its normalised record, event time, identities and declared primary identity."""


def _prepare(sandbox: Sandbox, cfg: _Settings, raw: Any) -> _Prepared:
    """The per-row stages before the graph: parse check, normalise, size, schema, identities.

    Raises RowRejected or a TesseraError; both paths call this, so a row is refused for the
    same reason whichever path ingests it.
    """
    plan = cfg.plan
    if isinstance(raw, _ROW_ERRORS):
        raise RowRejected("PARSE", str(raw))
    if not isinstance(raw, dict):
        raise RowRejected("TYPE", f"a record must be a JSON object, got {type(raw).__name__}")
    record = plan.normalize(raw)
    size = len(orjson.dumps(record))
    if size > cfg.size_limit:
        kind = "ExperienceEvent" if plan.is_event else "profile record"
        raise RowRejected("SIZE", f"{kind} is {size} bytes; the limit is {cfg.size_limit} bytes")
    problems = plan.validate(record)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise RowRejected("SCHEMA", first.message + more, first.path)
    event_time = _event_time(record) if plan.is_event else None
    identities, declared_primary = plan.identities(record, cfg.identity_source)
    identities = sandbox.identity.check_row(identities)
    if not identities:
        raise RowRejected("IDENTITY", "the record carries no identity (identityMap or identity field)")
    return record, event_time, identities, declared_primary


def _row_errors() -> tuple[type, ...]:
    from tessera.ingest.readers import RowError  # the reader module imports this one

    return (Exception, RowError)


_ROW_ERRORS = _row_errors()


def _rejection(index: int, exc: RowRejected | TesseraError) -> Rejection:
    if isinstance(exc, RowRejected):
        return Rejection(index, exc.code, exc.message, exc.path)
    return Rejection(index, type(exc).__name__, exc.message, exc.path)


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
    """Run rows of one dataset through every stage, one row after the other, and commit them together.

    This is the reference path (streaming messages use it); :func:`process_batch` gives the same
    result for a whole batch with the graph, the writes and the lookups done in bulk.

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
    now = ingested_at or utcnow()
    result = ChunkResult()
    cfg = _Settings.of(sandbox, dataset)
    plan = cfg.plan

    with sandbox.write_lock:
        staged = sandbox.begin()
        try:
            # The per-row checks need neither the graph nor the store: all rows first, so that
            # what the rows will read is read ahead in one go (a round trip each on Redis).
            prepared: list[tuple[int, _Prepared | RowRejected | TesseraError]] = []
            for index, raw in rows:
                try:
                    prepared.append((index, _prepare(sandbox, cfg, raw)))
                except (RowRejected, TesseraError) as exc:
                    prepared.append((index, exc))
            if plan.is_event and cfg.use_profile:
                sandbox.profiles.prefetch_for_events(
                    staged, dataset["id"], [p for _, p in prepared if not isinstance(p, Exception)]
                )
            for index, item in prepared:
                if isinstance(item, Exception):
                    result.rejected.append(_rejection(index, item))
                    continue
                record, event_time, identities, declared_primary = item
                try:
                    outcome = sandbox.identity.link_row(
                        staged,
                        identities,
                        declared_primary=declared_primary,
                        is_event=plan.is_event,
                        seen_at=event_time or now,
                        dataset_id=dataset["id"],
                        batch_id=batch_id,
                        link=cfg.use_identity,
                    )
                    result.touched_profiles |= outcome.touched_profiles
                    result.changed_profiles |= outcome.changed_profiles
                    if cfg.use_profile:
                        if plan.is_event:
                            changed = sandbox.profiles.put_event(
                                staged, dataset, outcome.primary, record, event_time or now, now, batch_id
                            )
                        else:
                            deletes = (upsert_deletes or {}).get(index, ())
                            changed = sandbox.profiles.put_record(
                                staged,
                                dataset,
                                outcome.primary,
                                record,
                                now,
                                upsert=cfg.upsert,
                                deletes=deletes,
                            )
                        result.changed_profiles |= changed
                    result.accepted.append(index)
                except (RowRejected, TesseraError) as exc:
                    result.rejected.append(_rejection(index, exc))
            _finish_chunk(sandbox, staged, result, now, before_commit)
        except BaseException:
            staged.rollback()
            sandbox.identity.reload()
            raise
    metrics.record_chunk(sandbox.name, dataset["id"], batch_id, len(result.accepted), result.rejected)
    return result


@dataclass
class PreparedChunk:
    """A chunk of a batch after the per-row checks, ready for the graph and the store.

    Preparing touches neither the graph nor the store, so a batch prepares its next chunk while
    the previous one is being applied and committed (see :func:`prepare_batch`).
    """

    now: datetime
    cfg: _Settings
    """The dataset's plan and switches the rows were checked with; the apply uses the same."""
    rejected: list[Rejection] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    id_rows: list[list[Identity]] = field(default_factory=list)
    declared: list[Identity | None] = field(default_factory=list)


def prepare_batch(
    sandbox: Sandbox,
    dataset: dict[str, Any],
    rows: Iterable[tuple[int, Any]],
    *,
    ingested_at: datetime | None = None,
) -> PreparedChunk:
    """The first half of :func:`process_batch`: every row checked (same rules, same messages).

    Runs without the sandbox's write lock: it reads only the dataset's schema plan and the
    identity namespaces.
    """
    cfg = _Settings.of(sandbox, dataset)
    out = PreparedChunk(now=ingested_at or utcnow(), cfg=cfg)
    for index, raw in rows:
        try:
            record, event_time, identities, declared_primary = _prepare(sandbox, cfg, raw)
        except (RowRejected, TesseraError) as exc:
            out.rejected.append(_rejection(index, exc))
            continue
        out.indexes.append(index)
        out.records.append(record)
        out.times.append(event_time or out.now)
        out.id_rows.append(identities)
        out.declared.append(declared_primary)
    return out


def apply_batch(
    sandbox: Sandbox,
    dataset: dict[str, Any],
    prepared: PreparedChunk,
    *,
    batch_id: str | None,
    upsert_deletes: dict[int, Sequence[str]] | None = None,
) -> ChunkResult:
    """The second half of :func:`process_batch`: graph, writes, refreshes and the durable commit."""
    now = prepared.now
    result = ChunkResult()
    cfg = prepared.cfg
    plan = cfg.plan
    rejected = list(prepared.rejected)
    indexes, records, times = prepared.indexes, prepared.records, prepared.times

    with sandbox.write_lock:
        staged = sandbox.begin()
        try:
            linked = sandbox.identity.link_rows(
                prepared.id_rows,
                declared_primaries=prepared.declared,
                is_event=plan.is_event,
                seen_at=times,
                dataset_id=dataset["id"],
                batch_id=batch_id,
                link=cfg.use_identity,
            )
            result.changed_profiles |= linked.changed_profiles
            result.touched_profiles |= linked.touched_profiles
            keep: list[tuple[int, Identity]] = []  # (position, primary) of the rows the graph took
            for n, reason in enumerate(linked.rejected):
                primary = linked.primaries[n]
                if reason is None and primary is not None:
                    keep.append((n, primary))
                else:
                    message = reason or "no primary identity"
                    rejected.append(_rejection(indexes[n], IdentityRejected(message, path="identityMap")))
            if cfg.use_profile and keep:
                if plan.is_event:
                    failed, changed = sandbox.profiles.put_events(
                        staged,
                        dataset,
                        [(indexes[n], p, records[n], times[n]) for n, p in keep],
                        now,
                        batch_id,
                    )
                else:
                    deletes = upsert_deletes or {}
                    rows_in = [(indexes[n], p, records[n], deletes.get(indexes[n], ())) for n, p in keep]
                    failed, changed = sandbox.profiles.put_records(
                        staged, dataset, rows_in, now, upsert=cfg.upsert
                    )
                result.changed_profiles |= changed
                rejected.extend(_rejection(index, err) for index, err in failed.items())
            else:
                failed = {}
            result.accepted = [indexes[n] for n, _ in keep if indexes[n] not in failed]
            rejected.sort(key=lambda r: r.index)
            result.rejected = rejected
            _finish_chunk(sandbox, staged, result, now)
        except BaseException:
            staged.rollback()
            sandbox.identity.reload()
            raise
    metrics.record_chunk(sandbox.name, dataset["id"], batch_id, len(result.accepted), result.rejected)
    return result


def process_batch(
    sandbox: Sandbox,
    dataset: dict[str, Any],
    rows: Iterable[tuple[int, Any]],
    *,
    batch_id: str | None,
    ingested_at: datetime | None = None,
    upsert_deletes: dict[int, Sequence[str]] | None = None,
) -> ChunkResult:
    """The same as :func:`process_chunk`, stage by stage over the whole chunk instead of row by row.

    Every row is checked first (same rules, same messages); the surviving rows go through the
    identity graph in one vectorised pass (:func:`tessera.identity.resolve_bulk`, identical to
    linking them one by one), their fragments and events are written with one lookup per table
    and one staged write, and each changed profile is re-merged and re-evaluated once. Stored
    state and rejections equal those of the row-at-a-time path (``tests/ingest/test_fast_batch_equivalence.py``).
    """
    prepared = prepare_batch(sandbox, dataset, rows, ingested_at=ingested_at)
    return apply_batch(sandbox, dataset, prepared, batch_id=batch_id, upsert_deletes=upsert_deletes)


def _finish_chunk(
    sandbox: Sandbox,
    staged: StagedStore,
    result: ChunkResult,
    now: datetime,
    before_commit: Callable[[StagedStore, ChunkResult], None] | None = None,
) -> None:
    sandbox.identity.flush(staged)
    if result.changed_profiles:
        sandbox.profiles.refresh(staged, result.changed_profiles, now)
    if result.touched_profiles:
        sandbox.segments_on_change(staged, result.touched_profiles, now)
    if before_commit is not None:
        before_commit(staged, result)
    staged.commit()


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


__all__ = [
    "ChunkResult",
    "Identity",
    "PreparedChunk",
    "Rejection",
    "apply_batch",
    "prepare_batch",
    "process_batch",
    "process_chunk",
]
