"""Export jobs (``spec/aep.md`` §b6): members of segments to CSV, Parquet or JSONL files or a dataset."""

from __future__ import annotations

import builtins
import csv
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tessera.errors import InvalidInput, NotFound
from tessera.model import parse_time
from tessera.segments import memberships as ms
from tessera.store import WriteBatch, get_json, scan_json

if TYPE_CHECKING:
    from tessera.platform import Sandbox

EXPORTS = "exports"
FORMATS = ("csv", "parquet", "jsonl")


def pick(doc: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, or ``None``.

    >>> pick({"a": {"b": 1}}, "a.b"), pick({"a": 1}, "a.c")
    (1, None)
    """
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def select_members(
    sandbox: Sandbox,
    segments: Sequence[Mapping[str, Any]],
    *,
    since: datetime | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{profile id: {segment id: membership}}`` of profiles matching the segment/status filter."""
    wanted: dict[str, set[str]] = {}
    for i, seg in enumerate(segments):
        sid = seg.get("segmentId")
        if not sid:
            raise InvalidInput(
                "each filter segment needs a segmentId", path=f"filter.segments[{i}].segmentId"
            )
        wanted[str(sid)] = set(seg.get("status") or ["realized", "existing"])
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for pid, sid, rec in ms.scan_all(sandbox.store):
        if sid not in wanted or rec.get("status") not in wanted[sid]:
            continue
        t = parse_time(rec["lastQualificationTime"])
        if (
            (since is not None and t <= since)
            or (start is not None and t < start)
            or (end is not None and t >= end)
        ):
            continue
        out.setdefault(pid, {})[sid] = rec
    return out


def profile_rows(
    sandbox: Sandbox, members: Mapping[str, Mapping[str, Any]], fields: Sequence[str]
) -> list[dict[str, Any]]:
    """One flat row per profile: id, identities (JSON), chosen fields, memberships (JSON)."""
    rows = []
    for pid in sorted(members):
        doc = get_json(sandbox.store, "profiles", pid) or {}
        row: dict[str, Any] = {"profileId": pid}
        for f in fields:
            if f in {"identities", "identities.id"}:
                row["identities"] = orjson.dumps(doc.get("identities", [])).decode()
            else:
                value = pick(doc.get("attributes") or {}, f)
                row[f] = (
                    value
                    if value is None or isinstance(value, str | int | float | bool)
                    else orjson.dumps(value).decode()
                )
        row["segmentMembership"] = orjson.dumps(dict(members[pid])).decode()
        rows.append(row)
    return rows


def write_file(rows: list[dict[str, Any]], path: Path, fmt: str) -> None:
    """Write rows as CSV, Parquet or JSON lines (atomically: a temp file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    columns = sorted({c for r in rows for c in r}, key=lambda c: (c != "profileId", c))
    if fmt == "csv":
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns or ["profileId"])
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "jsonl":
        with tmp.open("wb") as fh:
            for r in rows:
                fh.write(orjson.dumps(r) + b"\n")
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows) if rows else pa.table({"profileId": pa.array([], pa.string())})
        pq.write_table(table, tmp)
    else:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}", path="destination.format")
    tmp.replace(path)


def read_export_file(path: Path) -> list[dict[str, Any]]:
    """The rows of a file :func:`write_file` wrote (CSV cells come back as strings)."""
    suffix = path.suffix.lstrip(".")
    if suffix == "jsonl":
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    if suffix == "csv":
        with path.open(newline="", encoding="utf-8") as fh:
            return [dict(row) for row in csv.DictReader(fh)]
    if suffix == "parquet":
        import pyarrow.parquet as pq

        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
        return rows
    raise InvalidInput(f"{path.name} is not an export file ({', '.join(FORMATS)})")


def mentions(row: Mapping[str, Any], profile_ids: set[str], values: Sequence[bytes]) -> bool:
    """Whether an exported row is about one of these profiles or carries one of these identity values."""
    if row.get("profileId") in profile_ids:
        return True
    blob = orjson.dumps(row)
    return any(v in blob for v in values)


def scrub_files(root: Path, profile_ids: set[str], identity_values: Sequence[str]) -> int:
    """Rewrite every export and destination file under ``root`` without the rows of these people.

    Identity values are matched as JSON strings (quoted) so that ``42`` does not match ``1423``.
    Returns the number of rows removed.
    """
    values = [orjson.dumps(v) for v in identity_values]
    # identities inside exported rows are JSON text in a string column: their quotes are escaped
    values += [orjson.dumps(orjson.dumps(v).decode())[1:-1] for v in identity_values]
    removed = 0
    if not root.is_dir():
        return 0
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix.lstrip(".") not in FORMATS:
            continue
        rows = read_export_file(path)
        kept = [r for r in rows if not mentions(r, profile_ids, values)]
        if len(kept) != len(rows):
            removed += len(rows) - len(kept)
            write_file(kept, path, path.suffix.lstrip("."))
    return removed


class Exports:
    """Export jobs, run synchronously on creation; the job object records status and metrics."""

    def __init__(self, sandbox: Sandbox, root: Path) -> None:
        self._sandbox = sandbox
        self._root = root

    @property
    def root(self) -> Path:
        """The sandbox's export folder (destination files live in its ``destinations`` sub-folder)."""
        return self._root

    def _target(self, requested: Any, default: str) -> Path:
        """Where an export file goes: always inside this sandbox's exports folder.

        A caller may name the file, never the folder: a request must not be able to write
        anywhere else on the server's disk.
        """
        from tessera.ingest.files import safe_file_name

        name = default if requested in (None, "") else safe_file_name(str(requested))
        self._root.mkdir(parents=True, exist_ok=True)
        return self._root / name

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create and run an export job.

        ``destination`` is ``{"datasetId": ...}`` (records ingested into that dataset) or
        ``{"format": "csv|parquet|jsonl", "path": optional file path}``.
        """
        filt = body.get("filter") or {}
        if not isinstance(filt, Mapping):
            raise InvalidInput("filter must be an object", path="filter")
        segments = filt.get("segments")
        if not isinstance(segments, list) or not segments:
            raise InvalidInput("filter.segments must list at least one segment", path="filter.segments")
        for i, seg in enumerate(segments):
            if not isinstance(seg, Mapping) or not isinstance(seg.get("segmentId"), str):
                raise InvalidInput('each segment is {"segmentId": "..."}', path=f"filter.segments[{i}]")
            if not isinstance(seg.get("status", []), list):
                raise InvalidInput("status is an array of states", path=f"filter.segments[{i}].status")
        for name in ("destination", "evaluationInfo", "mergePolicy"):
            if not isinstance(body.get(name) or {}, Mapping):
                raise InvalidInput(f"{name} must be an object", path=name)
        if not isinstance(filt.get("segmentQualificationTime") or {}, Mapping):
            raise InvalidInput(
                "segmentQualificationTime must be an object", path="filter.segmentQualificationTime"
            )
        fields = [f.strip() for f in str(body.get("fields", "identities.id")).split(",") if f.strip()]
        dest = dict(body.get("destination") or {})
        if "datasetId" not in dest:
            fmt = dest.get("format", "jsonl")
            if fmt not in FORMATS:
                raise InvalidInput(f"format must be one of {', '.join(FORMATS)}", path="destination.format")
        qt = filt.get("segmentQualificationTime") or {}
        start_ms = time.time()
        job: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "jobType": "BATCH",
            "fields": ",".join(fields),
            "filter": filt,
            "destination": dest,
            "status": "PROCESSING",
            "schema": {"name": "_xdm.context.profile"},
            "profileInstanceId": "ups",
            "errors": [],
            "creationTime": int(start_ms * 1000),
        }
        target = (
            None
            if "datasetId" in dest
            else self._target(dest.get("path"), f"{job['id']}.{dest.get('format', 'jsonl')}")
        )
        # on disk before any work, so a stop part-way leaves a job that recovery marks failed
        self._sandbox.store.write(WriteBatch().put_json(EXPORTS, job["id"], job))
        try:
            if (body.get("evaluationInfo") or {}).get("segmentation"):
                # evaluate the filtered segments first (a segment job), then export their members
                self._sandbox.segments.run_job([{"segmentId": str(seg["segmentId"])} for seg in segments])
            members = select_members(
                self._sandbox,
                segments,
                start=parse_time(qt["startTime"]) if qt.get("startTime") else None,
                end=parse_time(qt["endTime"]) if qt.get("endTime") else None,
                since=parse_time(body["since"]) if body.get("since") else None,
            )
            rows = profile_rows(self._sandbox, members, fields)
            if "datasetId" in dest:
                records = [self._record(pid, members[pid]) for pid in sorted(members)]
                batch = self._sandbox.ingest.ingest_records(dest["datasetId"], records)
                if isinstance(batch, Mapping) and batch.get("id"):
                    dest["batchId"] = batch["id"]
            else:
                assert target is not None  # set above whenever the destination is a file
                path = target
                write_file(rows, path, dest.get("format", "jsonl"))
                dest["path"] = str(path)
            job["status"] = "SUCCEEDED"
        except Exception as exc:
            job["status"] = "FAILED"
            job["errors"] = [{"code": type(exc).__name__, "msg": str(exc)}]
            rows = []
        end = time.time()
        by_ns: dict[str, int] = {}
        for pid in sorted({r["profileId"] for r in rows}):
            doc = get_json(self._sandbox.store, "profiles", pid) or {}
            ns = str((doc.get("primary") or {}).get("namespace", "unknown"))
            by_ns[ns] = by_ns.get(ns, 0) + 1
        job["metrics"] = {
            "totalTime": {
                "startTimeInMs": int(start_ms * 1000),
                "endTimeInMs": int(end * 1000),
                "totalTimeInMs": int((end - start_ms) * 1000),
            },
            "totalExportedProfileCounter": len(rows),
            "exportedProfileByNamespaceCounter": by_ns,
        }
        job["updateTime"] = int(end * 1000)
        self._sandbox.store.write(WriteBatch().put_json(EXPORTS, job["id"], job))
        return job

    def recover(self) -> builtins.list[dict[str, Any]]:
        """Mark export jobs a stopped process left ``PROCESSING`` as ``FAILED`` with the reason, and
        remove their half-written temporary files; returns the jobs."""
        if self._root.exists():
            for tmp in self._root.glob("*.tmp"):
                tmp.unlink(missing_ok=True)
        failed = []
        for job in self.list(status="PROCESSING"):
            job["status"] = "FAILED"
            job["errors"] = [
                {
                    "code": "INTERRUPTED",
                    "msg": "The server stopped while this export ran; no file was published. "
                    "Create the export job again.",
                }
            ]
            job["updateTime"] = int(time.time() * 1000)
            self._sandbox.store.write(WriteBatch().put_json(EXPORTS, job["id"], job))
            failed.append(job)
        return failed

    def _record(self, pid: str, memberships: Mapping[str, Any]) -> dict[str, Any]:
        doc = get_json(self._sandbox.store, "profiles", pid) or {}
        identity_map: dict[str, list[dict[str, Any]]] = {}
        for ident in doc.get("identities", []):
            ns = ident.get("namespace", {})
            code = ns.get("code") if isinstance(ns, Mapping) else ns
            identity_map.setdefault(str(code), []).append({"id": ident.get("id")})
        primary = doc.get("primary")
        if primary:
            for item in identity_map.get(primary["namespace"], []):
                if item["id"] == primary["id"]:
                    item["primary"] = True
        return {"identityMap": identity_map, "segmentMembership": {"ups": dict(memberships)}}

    def get(self, export_id: str) -> dict[str, Any]:
        doc = get_json(self._sandbox.store, EXPORTS, export_id)
        if doc is None:
            raise NotFound(f"Export job {export_id} does not exist", path="id")
        result: dict[str, Any] = doc
        return result

    def delete(self, export_id: str) -> None:
        """Forget a job (exports finish before ``create`` returns, so nothing is left to cancel;
        files already written stay where they are)."""
        self.get(export_id)
        self._sandbox.store.write(WriteBatch().delete(EXPORTS, export_id))

    def list(self, *, status: str | None = None) -> builtins.list[dict[str, Any]]:
        return [
            d for _, d in scan_json(self._sandbox.store, EXPORTS) if status is None or d["status"] == status
        ]


__all__ = [
    "EXPORTS",
    "FORMATS",
    "Exports",
    "pick",
    "read_export_file",
    "scrub_files",
    "select_members",
    "write_file",
]
