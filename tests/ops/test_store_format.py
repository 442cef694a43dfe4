"""Store format versions: new stores record theirs, format 1 migrates, newer formats are refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tessera.activation.destinations import OUTBOX, OUTBOX_SEQ
from tessera.ops.backup import backup_sandbox, restore_sandbox
from tessera.ops.migrations import CURRENT_FORMAT, FORMAT_KEY, META, UnsupportedStoreFormat, stored_format
from tessera.platform import Platform
from tessera.segments.memberships import Change
from tessera.settings import Settings
from tessera.store import SqliteStore, WriteBatch, get_json, key


def open_platform(home: Path) -> Platform:
    return Platform(Settings(home=str(home), group_commit_ms=0.0))


def changes(n: int, start: int = 0) -> list[Change]:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    return [Change(f"p{i}", "seg", "realized", at, None) for i in range(start, start + n)]


def enqueue(platform: Platform, dest_id: str, batch: list[Change]) -> None:
    sb = platform.sandbox()
    wb = WriteBatch()
    sb.segments.activation.destinations.enqueue(sb.store, wb, batch)
    sb.store.write(wb)


def make_v1_sandbox(home: Path) -> str:
    """A sandbox as format 1 left it: a webhook destination with pending changes, no ``outbox_seq``
    and no format record. Built with today's code, then the format-2 parts are removed."""
    with open_platform(home) as platform:
        dest = platform.sandbox().segments.activation.destinations.create(
            {
                "type": "webhook",
                "name": "hook",
                "url": "http://127.0.0.1:9/",
                "secret": "s3cret-s3cret",
                "segments": ["seg"],
            }
        )
        enqueue(platform, dest["id"], changes(3))
        store = platform.sandbox().store
        store.write(WriteBatch().delete(OUTBOX_SEQ, dest["id"]).delete(META, FORMAT_KEY))
        return str(dest["id"])


def test_new_stores_record_the_current_format(tmp_path: Path) -> None:
    with open_platform(tmp_path / "home") as platform:
        assert stored_format(platform.sandbox().store) == CURRENT_FORMAT
        assert stored_format(platform.system) == CURRENT_FORMAT


def test_format_1_store_is_migrated_on_open_and_keeps_its_pending_deliveries(tmp_path: Path) -> None:
    home = tmp_path / "home"
    dest_id = make_v1_sandbox(home)
    raw = SqliteStore(home / "sandboxes" / "prod" / "point.sqlite")
    assert stored_format(raw) == 1 and raw.get(OUTBOX_SEQ, dest_id) is None
    raw.close()
    with open_platform(home) as platform:
        store = platform.sandbox().store
        meta = get_json(store, META, FORMAT_KEY)
        assert meta["version"] == CURRENT_FORMAT and meta["migrated"][0]["from"] == 1
        assert meta["migrated"][-1]["to"] == CURRENT_FORMAT
        assert store.get(OUTBOX_SEQ, dest_id) == b"3"
        # new changes continue the numbering instead of overwriting pending ones
        enqueue(platform, dest_id, changes(2, start=10))
        pending = [k.rsplit("\x1f", 1)[1] for k, _ in store.scan(OUTBOX, key(dest_id, ""))]
        assert pending == [f"{n:015d}" for n in range(1, 6)]
        destinations = platform.sandbox().segments.activation.destinations
        assert destinations.pending(dest_id) == 5


def test_drained_format_1_outbox_continues_after_the_delivered_count(tmp_path: Path) -> None:
    home = tmp_path / "home"
    dest_id = make_v1_sandbox(home)
    raw = SqliteStore(home / "sandboxes" / "prod" / "point.sqlite")
    wb = WriteBatch().put_json(
        "destination_state", dest_id, {"attempts": 0, "nextAttempt": None, "delivered": 7, "lastError": None}
    )
    for k, _ in list(raw.scan(OUTBOX, key(dest_id, ""))):
        wb.delete(OUTBOX, k)
    raw.write(wb)
    raw.close()
    with open_platform(home) as platform:
        assert platform.sandbox().store.get(OUTBOX_SEQ, dest_id) == b"7"


def test_newer_format_is_refused_with_a_clear_error_and_left_untouched(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with open_platform(home) as platform:
        platform.sandboxes.create("dev")
        platform.sandbox("dev").store.write(
            WriteBatch().put_json(META, FORMAT_KEY, {"version": CURRENT_FORMAT + 1, "migrated": []})
        )
    with open_platform(home) as platform:
        assert stored_format(platform.sandbox().store) == CURRENT_FORMAT  # prod still opens
        with pytest.raises(
            UnsupportedStoreFormat, match=f"store format {CURRENT_FORMAT + 1}.*upgrade Tessera"
        ):
            platform.sandbox("dev")
    raw = SqliteStore(home / "sandboxes" / "dev" / "point.sqlite")
    assert stored_format(raw) == CURRENT_FORMAT + 1
    raw.close()


def test_newer_system_store_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with open_platform(home) as platform:
        platform.system.write(WriteBatch().put_json(META, FORMAT_KEY, {"version": 99, "migrated": []}))
    with pytest.raises(UnsupportedStoreFormat, match="system store"):
        open_platform(home)


def test_backup_of_a_format_1_sandbox_restores_migrated(tmp_path: Path) -> None:
    home = tmp_path / "home"
    dest_id = make_v1_sandbox(home)
    platform = open_platform(home)
    try:
        # opening prod migrated it; put it back to format 1 to back up a format-1 store
        platform.sandbox().store.write(WriteBatch().delete(META, FORMAT_KEY).delete(OUTBOX_SEQ, dest_id))
        manifest = backup_sandbox(platform, "prod", tmp_path / "bk")
        assert manifest["storeFormat"] == 1
        restore_sandbox(platform, tmp_path / "bk", as_name="copy")
        assert stored_format(platform.sandbox("copy").store) == CURRENT_FORMAT
        (dest,) = platform.sandbox("copy").segments.activation.destinations.list()
        assert platform.sandbox("copy").store.get(OUTBOX_SEQ, dest["id"]) == b"3"
    finally:
        platform.close()
