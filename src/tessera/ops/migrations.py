"""Store format versions: every point store records the format it is written in.

The record is ``store_meta/format`` → ``{"version": n, "migrated": [...]}``. Opening a store
(:func:`open_format`, called by the platform for the system store and every sandbox store):

* no record, or an older version → run each migration from that version up, in one write per
  step, then record the current version (a store with no record is format 1: Tessera wrote
  none before format 2; on an empty new store the migrations find nothing to change);
* the current version → nothing to do;
* a newer version → :class:`UnsupportedStoreFormat`: this code would misread data written by a
  newer Tessera, so it refuses to open it rather than corrupt it.

Formats:

1. Webhook destinations derived the next outbox sequence number from their pending outbox.
2. Each webhook destination records its last sequence number in ``outbox_seq``, so delivery
   ids keep increasing after the outbox drains. Format-2 code reading a format-1 store without
   the migration would restart numbering at 1: it would overwrite pending changes (lost
   deliveries) and reuse delivery ids that receivers deduplicate on.
3. Every stored profile has a row in ``profile_sample`` (:mod:`tessera.profile.sample`), the
   random order segment estimates sample from. Format-2 code writing a format-3 store would add
   profiles without it, and estimates would never see them. The step writes the rows in chunks
   before the format record (one write would hold every profile id of a large store); they are
   idempotent puts, so an interrupted upgrade simply redoes the step.
4. Segment memberships are one document per profile (``profile_memberships``: profile id →
   ``{segment id: record}``) instead of one row per profile and segment (``memberships``:
   ``<profile id>|<segment id>`` → record), so a batch job writes one row per changed profile
   (:mod:`tessera.segments.memberships`). Format-3 code would not see the memberships of a
   format-4 store. The step moves each profile's rows into its document in chunks of whole
   profiles (the document and the deletion of its rows in one write), before the format record;
   an interrupted upgrade redoes the step over the rows left.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson

from tessera.catalog.ids import epoch_ms
from tessera.errors import StorageError
from tessera.store import PointStore, WriteBatch, dump_json, get_json
from tessera.store.base import KEY_SEP

META = "store_meta"
FORMAT_KEY = "format"
CURRENT_FORMAT = 4
log = logging.getLogger("tessera.store")


class UnsupportedStoreFormat(StorageError):
    """The store was written by a newer Tessera than this one."""

    title = "Unsupported store format"


def _v1_to_v2(store: PointStore, wb: WriteBatch) -> None:
    """Record each webhook destination's last outbox sequence number (see the module docstring)."""
    last: dict[str, int] = {}
    pending: dict[str, int] = {}
    for k, _ in store.scan("outbox"):
        dest, _, number = k.rpartition(KEY_SEP)
        last[dest] = max(last.get(dest, 0), int(number))
        pending[dest] = pending.get(dest, 0) + 1
    for dest, raw in store.scan("destinations"):
        doc = orjson.loads(raw)
        if doc.get("type") != "webhook" or store.get("outbox_seq", dest) is not None:
            continue
        state = get_json(store, "destination_state", dest) or {}
        # every change ever enqueued is either delivered or still pending
        seq = max(last.get(dest, 0), int(state.get("delivered", 0)) + pending.get(dest, 0))
        wb.put("outbox_seq", dest, str(seq).encode())


def _v2_to_v3(store: PointStore, wb: WriteBatch) -> None:
    """Put every stored profile into the sample order (see the module docstring)."""
    from tessera.profile import sample
    from tessera.profile.service import PROFILES

    done = sample.backfill(store, (k for k, _ in store.scan(PROFILES)))
    if done:
        log.info("added %d profiles to the estimate sample order", done)


def _v3_to_v4(store: PointStore, wb: WriteBatch, chunk: int = 5_000) -> None:
    """Move the memberships into one document per profile (see the module docstring)."""
    from tessera.segments import memberships as ms

    moved = 0
    batch = WriteBatch()
    ms.MembershipIndex.drop(batch)  # documents change behind it: the next job reads them all
    pid: str | None = None
    ups: dict[str, object] = {}

    def flush_profile() -> None:
        nonlocal moved
        if pid is None:
            return
        merged = dict(ups)
        raw = store.get(ms.MEMBERSHIPS, pid)  # a profile an interrupted upgrade moved in part
        if raw is not None:
            merged = {**orjson.loads(raw), **merged}
        batch.put(ms.MEMBERSHIPS, pid, dump_json(dict(sorted(merged.items()))))
        moved += 1

    for k, raw in store.scan(ms.LEGACY):
        owner, _, sid = k.rpartition(KEY_SEP)
        if owner != pid:
            flush_profile()
            if len(batch) >= chunk:  # a chunk ends between profiles: each moves in one write
                store.write(batch)
                batch = WriteBatch()
            pid, ups = owner, {}
        ups[sid] = orjson.loads(raw)
        batch.delete(ms.LEGACY, k)
    flush_profile()
    wb.extend(batch)  # the last chunk commits with the format record
    if moved:
        log.info("moved the memberships of %d profiles into one document each", moved)


MIGRATIONS: dict[int, Callable[[PointStore, WriteBatch], None]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
}
"""``from version → step`` that turns a store of that version into the next one."""


def stored_format(store: PointStore) -> int:
    doc = get_json(store, META, FORMAT_KEY)
    return 1 if doc is None else int(doc["version"])


def open_format(store: PointStore, what: str) -> int:
    """Check and migrate ``store`` (``what`` names it in messages); returns the version found.

    Raises:
        UnsupportedStoreFormat: when the store's format is newer than :data:`CURRENT_FORMAT`.
    """
    doc = get_json(store, META, FORMAT_KEY)
    found = 1 if doc is None else int(doc["version"])
    if found > CURRENT_FORMAT:
        raise UnsupportedStoreFormat(
            f"{what} is in store format {found}, but this Tessera reads formats up to {CURRENT_FORMAT}: "
            "upgrade Tessera to open it (nothing was changed)",
            path="store",
        )
    if doc is not None and found == CURRENT_FORMAT:
        return found
    history = list((doc or {}).get("migrated", []))
    version = found
    while version < CURRENT_FORMAT:
        wb = WriteBatch()
        MIGRATIONS[version](store, wb)
        history.append({"from": version, "to": version + 1, "at": epoch_ms()})
        version += 1
        wb.put_json(META, FORMAT_KEY, {"version": version, "migrated": history})
        store.write(wb)  # one step per commit: an interrupted upgrade resumes at the next step
        if len(wb) > 1:
            log.info("migrated %s from store format %d to %d", what, version - 1, version)
    return found
