"""Staging of uploaded batch files: safe names, one folder per batch."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tessera.errors import InvalidInput, storage_error_of

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,200}$")
FORMATS_BY_SUFFIX = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
}


def safe_file_name(name: str) -> str:
    """Refuse names that could escape the staging folder or confuse the file system.

    >>> safe_file_name("profiles.json")
    'profiles.json'
    """
    if not SAFE_NAME.match(name or "") or ".." in name:
        raise InvalidInput(
            f"File name {name!r} is not allowed: use letters, digits, dot, dash, underscore and space, "
            "no path separators and no '..'",
            path="fileName",
        )
    return name


def format_of(name: str, declared: str | None = None) -> str:
    """The file format from the batch's declared format or the file's suffix."""
    suffix = Path(name).suffix.lower()
    guessed = FORMATS_BY_SUFFIX.get(suffix)
    if declared == "json" and guessed == "jsonl":
        return "jsonl"
    if declared:
        return declared
    if guessed is None:
        raise InvalidInput(
            f"Cannot tell the format of {name!r}: use a .json, .jsonl, .csv or .parquet suffix or declare it",
            path="inputFormat.format",
        )
    return guessed


class Staging:
    """Uploaded files of open batches under ``<sandbox>/staging/<batchId>/``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, batch_id: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", batch_id):
            raise InvalidInput(f"invalid batch id {batch_id!r}", path="batchId")
        return self.root / batch_id

    def put(self, batch_id: str, name: str, data: bytes) -> Path:
        target = self.folder(batch_id) / safe_file_name(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            tmp.unlink(missing_ok=True)  # a half-written upload must not stay behind
            raise storage_error_of(exc) or exc from exc
        tmp.replace(target)
        return target

    def append(self, batch_id: str, name: str, offset: int, data: bytes) -> int:
        target = self.folder(batch_id) / (safe_file_name(name) + ".part")
        if not target.exists():
            raise InvalidInput(f"File {name!r} was not initialised in batch {batch_id}", path="fileName")
        size = target.stat().st_size
        if offset != size:
            raise InvalidInput(
                f"Chunk starts at byte {offset} but {size} bytes are uploaded", path="Content-Range"
            )
        try:
            with target.open("ab") as handle:
                handle.write(data)
        except OSError as exc:
            with target.open("ab") as handle:
                handle.truncate(size)  # the chunk is refused whole, so it can be sent again
            raise storage_error_of(exc) or exc from exc
        return size + len(data)

    def initialise(self, batch_id: str, name: str) -> None:
        target = self.folder(batch_id) / (safe_file_name(name) + ".part")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"")

    def finish(self, batch_id: str, name: str) -> Path:
        part = self.folder(batch_id) / (safe_file_name(name) + ".part")
        if not part.exists():
            raise InvalidInput(f"File {name!r} was not initialised in batch {batch_id}", path="fileName")
        final = part.with_name(name)
        part.replace(final)
        return final

    def files(self, batch_id: str) -> list[Path]:
        folder = self.folder(batch_id)
        if not folder.exists():
            return []
        return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.endswith(".part"))

    def drop(self, batch_id: str) -> None:
        shutil.rmtree(self.folder(batch_id), ignore_errors=True)
