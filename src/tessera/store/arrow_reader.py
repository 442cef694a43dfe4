"""Whole-table reads of a SQLite point store as Arrow, in a process of their own.

A batch job reading 10^7 stored documents spends ~4 µs per row when Python builds a
``(key, bytes)`` pair for each; the ADBC SQLite driver builds the Arrow columns in C for ~1.3 µs.
But that driver links its own copy of SQLite, and two SQLite libraries must never share a
process with the same database open: POSIX record locks belong to the process, so when one
library closes its descriptor of the file the kernel drops the other library's locks too, and
the driver's copy, seeing no other connection, may reset the write-ahead-log index that the
store's writer has mapped in memory (the writer dies of SIGBUS on its next commit, or worse).
In a child process the locks are the kernel's ordinary cross-process WAL locks, and the child
reads SQLite while the parent parses the previous chunk: the read runs on the other core.

Parent side: :func:`read_table`. Child side: ``python -m tessera.store.arrow_reader PATH TABLE
ROWS`` writes chunks of ``(key string, value binary)`` as Arrow files in shared memory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from tessera.errors import StorageError
from tessera.store.base import check_table

if TYPE_CHECKING:
    import pyarrow as pa


def _schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([("key", pa.string()), ("value", pa.binary())])


SHARED_MEMORY = Path("/dev/shm")
"""Where the child leaves its chunks: a file system in memory, when the machine has one with
:data:`SHARED_MEMORY_MIN_FREE` bytes free (containers often get 64 MB), else the temporary folder."""

SHARED_MEMORY_MIN_FREE = 1 << 30

IN_FLIGHT = 2
"""Chunks the child may have written and the parent not yet taken: bounds the memory of a read."""


def read_table(path: Path, table: str, rows_per_chunk: int) -> Iterator[pa.Table]:
    """Every row of the store's ``table`` (the store's name, without its ``t_`` prefix), ordered
    by key, as Arrow tables of up to ``rows_per_chunk`` rows, read by a child process from one
    snapshot of the file. Stopping early stops the child.

    The child writes each chunk as an Arrow file in shared memory and names it on its stdout;
    the parent maps it (no copy) and answers on the child's stdin, which lets the child read on.

    Raises:
        StorageError: the child could not read the file (its message is passed on).
    """
    import pyarrow as pa

    check_table(table)
    env = dict(os.environ)
    # the child imports this package from where the parent did (a checkout on sys.path too)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    folder = Path(tempfile.mkdtemp(prefix="tessera-scan-", dir=_chunk_place()))
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(
            [sys.executable, "-m", __name__, str(path.resolve()), table, str(rows_per_chunk), str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            env=env,
        )
        assert child.stdin is not None and child.stdout is not None
        finished = False
        try:
            for line in child.stdout:
                chunk = Path(line.decode().strip())
                mapped = pa.ipc.open_file(pa.memory_map(str(chunk))).read_all()
                chunk.unlink()  # the mapping stays valid until the table is freed
                with contextlib.suppress(BrokenPipeError):
                    child.stdin.write(b"\n")
                    child.stdin.flush()
                yield mapped
            finished = True
        finally:
            # stopped early or failed: the child sees its stdin close and stops after its chunk
            with contextlib.suppress(BrokenPipeError):
                child.stdin.close()
            child.stdout.close()
            try:
                code = child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                code = child.wait()
            shutil.rmtree(folder, ignore_errors=True)
        if finished and code != 0:
            errors.seek(0)
            detail = errors.read().decode(errors="replace").strip().splitlines()
            raise StorageError(
                f"reading table {table!r} of {path} failed (exit {code}): "
                f"{detail[-1] if detail else 'no message'}"
            )


def _chunk_place() -> Path | None:
    try:
        if shutil.disk_usage(SHARED_MEMORY).free >= SHARED_MEMORY_MIN_FREE:
            return SHARED_MEMORY
    except OSError:  # no such folder here
        pass
    return None  # the temporary folder


def _write_chunks(path: str, table: str, rows_per_chunk: int, folder: Path) -> None:
    import adbc_driver_sqlite.dbapi as adbc
    import pyarrow as pa

    check_table(table)
    schema = _schema()
    con = adbc.connect(f"file:{quote(path)}?mode=ro")
    try:
        cur = con.cursor()
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(rows_per_chunk)})
        cur.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (f"t_{table}",))
        exists = cur.fetchone()
        if not (exists and exists[0]):
            return
        cur.execute(f'SELECT k AS "key", v AS "value" FROM "t_{table}" ORDER BY k')
        waiting = 0
        for number, batch in enumerate(cur.fetch_record_batch()):
            chunk = folder / f"{number}.arrow"
            with pa.OSFile(str(chunk), "wb") as sink, pa.ipc.new_file(sink, schema) as out:
                out.write_batch(batch.cast(schema))
            sys.stdout.write(f"{chunk}\n")
            sys.stdout.flush()
            waiting += 1
            if waiting >= IN_FLIGHT:
                if not sys.stdin.readline():
                    return  # the parent stopped reading (or is gone); it removes the folder
                waiting -= 1
        cur.close()
    finally:
        con.close()


if __name__ == "__main__":
    _write_chunks(sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
