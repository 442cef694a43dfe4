"""Backup and restore of one sandbox as a folder of Parquet files with a manifest.

Layout of a backup folder::

    manifest.json           kind, backup format, store format, sandbox entry, counts, checksums
    tables/<table>.parquet  every point-store table: columns k (string), v (binary), key order
    files/...               the sandbox folder's other files (staged uploads, exports)

Everything the sandbox answers from lives in its point store (catalog, schemas, identity graph,
fragments and events, materialised profiles, merge policies, segments, memberships, jobs,
destinations and their outboxes), so the tables are the sandbox; ``files`` carries what lives
beside the store on disk.

Consistency: an SQLite store is first copied with SQLite's online backup API, which reads one
consistent snapshot even while a server writes to the sandbox, and the Parquet files are
written from that copy. Other point stores (Redis) have no snapshot across keys and are read
table by table as they are: a write during the backup may be in it in part, so back such a
sandbox up while nothing writes to it.

Restore checks the manifest and every checksum before it creates anything, creates the sandbox
(under its own name or ``as_name``), checks that its point store is empty (a Redis namespace
outlives the sandbox folder, and may even be another installation's live sandbox), writes the
rows, copies the files, and deletes the half restored sandbox again if any step fails. A backup
written in an older store format is migrated when the restored sandbox is first opened
(:mod:`tessera.ops.migrations`); a newer one is refused. Values that name the original sandbox
folder (file destinations) or the original sandbox (merge policies) are rewritten for the
restored one.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from tessera import __version__
from tessera.catalog.ids import epoch_ms
from tessera.errors import Conflict, InvalidInput, TesseraError
from tessera.ops.migrations import CURRENT_FORMAT, UnsupportedStoreFormat, stored_format
from tessera.platform import Platform, open_point_store
from tessera.store import PointStore, SqliteStore, WriteBatch
from tessera.store.base import scan_chunks

KIND = "tessera-sandbox-backup"
BACKUP_FORMAT = 1
MANIFEST = "manifest.json"
ROW_GROUP = 50_000
WRITE_CHUNK = 5_000
STORE_FILES = ("point.sqlite", "point.sqlite-wal", "point.sqlite-shm")
_SCHEMA = pa.schema([("k", pa.string()), ("v", pa.binary())])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_table(store: PointStore, table: str, path: Path) -> int:
    rows = 0
    with pq.ParquetWriter(path, _SCHEMA, compression="zstd") as writer:
        for keys, values in scan_chunks(store, table, ROW_GROUP):
            writer.write_table(pa.table([keys, values], schema=_SCHEMA))
            rows += len(keys)
        if rows == 0:  # an empty table still gets a file with the schema
            writer.write_table(pa.table([[], []], schema=_SCHEMA))
    return rows


def _snapshot(store: PointStore, tmp: Path) -> PointStore:
    """A consistent copy of an SQLite store (the store itself for other backends)."""
    if not isinstance(store, SqliteStore):
        return store
    copy = tmp / "snapshot.sqlite"
    source = sqlite3.connect(store.path)
    target = sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    return SqliteStore(copy)


def backup_sandbox(platform: Platform, name: str, target: str | Path) -> dict[str, Any]:
    """Write a backup of sandbox ``name`` into the folder ``target`` (new or empty); returns the manifest.

    Raises:
        NotFound: no such sandbox.
        Conflict: ``target`` exists and is not empty.
    """
    entry = platform.sandboxes.get(name)
    out = Path(target)
    if out.exists() and any(out.iterdir()):
        raise Conflict(f"Backup folder {out} is not empty", path="dir")
    # the open sandbox's store when this process serves it; else the store alone (no graph load)
    opened = {sb.name: sb for sb in platform.opened()}.get(name)
    source_folder = platform.sandboxes.folder(name)
    live = opened.store if opened is not None else open_point_store(platform.settings, name, source_folder)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    tables: dict[str, dict[str, Any]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="tessera-backup-") as tmp:
            snap = _snapshot(live, Path(tmp))
            try:
                store_format = stored_format(snap)
                for table in snap.tables():
                    path = out / "tables" / f"{table}.parquet"
                    rows = _write_table(snap, table, path)
                    tables[table] = {"file": f"tables/{table}.parquet", "rows": rows, "sha256": _sha256(path)}
            finally:
                if snap is not live:
                    snap.close()
    finally:
        if opened is None:
            live.close()
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in source_folder.rglob("*") if p.is_file()):
        rel = path.relative_to(source_folder)
        if rel.as_posix() in STORE_FILES:
            continue
        copy = out / "files" / rel
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)
        files[rel.as_posix()] = {"bytes": copy.stat().st_size, "sha256": _sha256(copy)}
    manifest = {
        "kind": KIND,
        "backupFormat": BACKUP_FORMAT,
        "storeFormat": store_format,
        "tesseraVersion": __version__,
        "createdAt": epoch_ms(),
        "sandbox": entry,
        "folder": str(source_folder.resolve()),
        "tables": tables,
        "files": files,
        "counts": {
            "tables": len(tables),
            "rows": sum(t["rows"] for t in tables.values()),
            "files": len(files),
        },
    }
    (out / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest


def read_manifest(source: str | Path) -> dict[str, Any]:
    """The manifest of a backup folder, checked: kind, formats, and every file's checksum.

    Raises:
        InvalidInput: not a backup, an unknown backup format, or a damaged or missing file.
        UnsupportedStoreFormat: written by a newer Tessera.
    """
    folder = Path(source)
    try:
        manifest: dict[str, Any] = orjson.loads((folder / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise InvalidInput(f"{folder} holds no readable {MANIFEST}: {exc}", path="dir") from exc
    if manifest.get("kind") != KIND:
        raise InvalidInput(f"{folder / MANIFEST} is not a Tessera sandbox backup", path="dir")
    if manifest.get("backupFormat") != BACKUP_FORMAT:
        raise InvalidInput(f"Unknown backup format {manifest.get('backupFormat')!r}", path="backupFormat")
    if int(manifest.get("storeFormat", 1)) > CURRENT_FORMAT:
        raise UnsupportedStoreFormat(
            f"The backup is in store format {manifest['storeFormat']}, but this Tessera reads formats up to "
            f"{CURRENT_FORMAT}: restore it with a newer Tessera",
            path="storeFormat",
        )
    checks = [(folder, folder / t["file"], t["sha256"], name) for name, t in manifest["tables"].items()]
    checks += [
        (folder / "files", folder / "files" / rel, f["sha256"], rel) for rel, f in manifest["files"].items()
    ]
    for base, path, expected, label in checks:
        if not path.resolve().is_relative_to(base.resolve()):
            raise InvalidInput(f"The manifest names a file outside the backup: {label}", path="manifest")
        if not path.is_file():
            raise InvalidInput(f"The backup is incomplete: {path} is missing", path="dir")
        if _sha256(path) != expected:
            raise InvalidInput(f"The backup is damaged: checksum of {path} does not match", path="dir")
    return manifest


def _rows(path: Path) -> Iterator[tuple[str, bytes]]:
    parquet = pq.ParquetFile(path)
    for group in range(parquet.num_row_groups):
        chunk = parquet.read_row_group(group)
        yield from zip(chunk.column("k").to_pylist(), chunk.column("v").to_pylist(), strict=True)


def _rewrite(table: str, value: bytes, old_folder: bytes, new_folder: bytes, name: str) -> bytes:
    if old_folder and old_folder != new_folder and old_folder in value:
        value = value.replace(old_folder, new_folder)
    if table == "merge_policies":
        from tessera.profile.policies import SandboxRef

        doc = orjson.loads(value)
        if isinstance(doc, dict) and "sandbox" in doc:
            doc["sandbox"] = SandboxRef.named(name).to_json()
            value = orjson.dumps(doc)
    return value


def restore_sandbox(platform: Platform, source: str | Path, as_name: str | None = None) -> dict[str, Any]:
    """Restore the backup in ``source`` as a new sandbox (its original name, or ``as_name``).

    Returns ``{"sandbox", "tables", "rows", "files", "storeFormat"}``.

    Raises:
        InvalidInput / UnsupportedStoreFormat: see :func:`read_manifest`.
        Conflict: a sandbox of that name exists (restore with ``as_name``).
    """
    folder = Path(source)
    manifest = read_manifest(folder)
    entry = manifest["sandbox"]
    name = as_name or entry["name"]
    if platform.sandboxes.exists(name):
        raise Conflict(f"Sandbox {name!r} already exists; restore under another name", path="name")
    target = platform.sandboxes.folder(name)
    if target.exists() and any(target.iterdir()):
        raise Conflict(f"The folder of sandbox {name!r} ({target}) is not empty", path="name")
    kind = entry.get("type", "development") if name == entry["name"] else "development"
    if name == "prod":
        kind = "production"
    platform.sandboxes.create(name, entry.get("title") if name == entry["name"] else name, kind)
    old_folder = orjson.dumps(str(manifest.get("folder", "")))[1:-1]
    new_folder = orjson.dumps(str(target.resolve()))[1:-1]
    rows = 0
    ours = False  # whether the point store holds only what this restore wrote
    try:
        store = open_point_store(platform.settings, name, target)
        try:
            leftover = store.tables()
            if leftover:
                # rows merged into someone else's data would answer neither as the backup nor as before
                raise Conflict(
                    f"The point store of sandbox {name!r} already holds data (tables {', '.join(leftover)}); "
                    "restore under another name",
                    path="name",
                )
            ours = True
            for table, info in sorted(manifest["tables"].items()):
                wb = WriteBatch()
                count = 0
                for k, v in _rows(folder / info["file"]):
                    wb.put(table, k, _rewrite(table, v, old_folder, new_folder, name))
                    count += 1
                    if len(wb) >= WRITE_CHUNK:
                        store.write(wb)
                        wb = WriteBatch()
                if len(wb):
                    store.write(wb)
                if count != info["rows"]:
                    raise InvalidInput(
                        f"The backup is damaged: table {table} has {count} rows, the manifest says {info['rows']}",
                        path="dir",
                    )
                rows += count
        finally:
            store.close()
        for rel in manifest["files"]:
            copy = target / rel
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / "files" / rel, copy)
        platform.sandbox(name)  # opening it migrates an older store format and loads the graph
    except BaseException:
        try:
            if ours:
                platform.delete_sandbox(name)  # also clears what was written to a Redis store
            else:
                # the store holds someone else's data: only the registry entry and folder go
                platform.sandboxes.delete(name)
        except TesseraError:
            shutil.rmtree(target, ignore_errors=True)
        raise
    return {
        "sandbox": name,
        "tables": len(manifest["tables"]),
        "rows": rows,
        "files": len(manifest["files"]),
        "storeFormat": manifest["storeFormat"],
    }
