"""Fast regression tests for what the fault suites found, in-process (the suites themselves run
against a real server): startup recovery, the 507 for a full store, regex and PQL limits."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from faults_harness import GOLD_SEGMENT, prepare, record

from tessera.errors import PqlError, StorageError, StorageFull, storage_error_of
from tessera.platform import Platform
from tessera.pql import check, parse
from tessera.pql.functions import _matches
from tessera.pql.limits import LIMITS, unsafe_regex
from tessera.settings import Settings
from tessera.store.sqlite import _write_error


def test_recovery_resumes_staged_batches_and_fails_interrupted_work(tmp_path: Path) -> None:
    home = tmp_path / "home"
    layout = prepare(home)
    with Platform(Settings(home=str(home))) as platform:
        sb = platform.sandbox()
        staged = sb.ingest.create_batch(layout.crm)
        sb.ingest.upload(
            staged["id"], "rows.json", b"[" + b",".join(_json(record(i, i)) for i in range(5)) + b"]"
        )
        sb.batches.set_status(staged["id"], "processing")  # as a killed COMPLETE leaves it
        lost = sb.batches.create(layout.crm)
        sb.batches.set_status(lost["id"], "processing")  # ingested from a file that is gone
        job = sb.segments.submit_job([{"segmentId": GOLD_SEGMENT}])
        export = {"id": "e-1", "status": "PROCESSING", "creationTime": 1}
        from tessera.activation.exports import EXPORTS
        from tessera.store import WriteBatch

        sb.store.write(WriteBatch().put_json(EXPORTS, "e-1", export))
        root = sb.folder / "exports"
        root.mkdir(parents=True, exist_ok=True)
        (root / "half.jsonl.tmp").write_text("{")

        assert sb.recover() == {"batches": 2, "segmentJobs": 1, "exportJobs": 1}

        resumed = sb.batches.get(staged["id"])
        assert resumed["status"] == "success" and resumed["resumed"] == 1
        assert resumed["metrics"]["outputRecordCount"] == 5
        failed = sb.batches.get(lost["id"])
        assert failed["status"] == "failed" and failed["errors"][0]["code"] == "INTERRUPTED"
        assert sb.segments.job(job["id"])["errors"][0]["code"] == "INTERRUPTED"
        assert sb.segments.activation.exports.get("e-1")["status"] == "FAILED"
        assert not list(root.glob("*.tmp"))
        assert sb.recover() == {"batches": 0, "segmentJobs": 0, "exportJobs": 0}


def _json(doc: object) -> bytes:
    import orjson

    return orjson.dumps(doc)


class _Full(sqlite3.OperationalError):
    sqlite_errorname = "SQLITE_FULL"


def test_a_full_store_or_disk_is_a_507() -> None:
    assert isinstance(_write_error(_Full("database or disk is full")), StorageFull)
    assert StorageFull.status == 507 and issubclass(StorageFull, StorageError)
    assert type(_write_error(sqlite3.OperationalError("locked"))) is StorageError
    assert isinstance(storage_error_of(OSError(27, "File too large")), StorageFull)
    assert storage_error_of(OSError(13, "Permission denied")) is None


@pytest.mark.parametrize(
    "pattern",
    ["(a+)+$", "(a*)*b", "(.*a){25}", "^(\\w+\\s?)*$", "(x+x+)+y", "(a)\\1", "[unclosed", "a" * 5000],
)
def test_dangerous_or_invalid_patterns_are_refused_when_checked(pattern: str) -> None:
    assert unsafe_regex(pattern) is not None
    with pytest.raises(PqlError, match="regular expression is refused"):
        check(f"person.name.firstName.matches({_quoted(pattern)})")


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.mark.parametrize("pattern", ["^[a-z]+@acme\\.com$", "(ab|cd)+", "a{2,5}b*", "^\\d{3}-\\d{4}$"])
def test_ordinary_patterns_pass(pattern: str) -> None:
    assert unsafe_regex(pattern) is None
    check(f"person.name.firstName.matches({_quoted(pattern)})")


def test_a_slow_match_runs_out_of_time_and_counts_as_no_match() -> None:
    started = time.monotonic()
    assert not _matches("a" * 60 + "!", "(a|aa)+$")
    assert time.monotonic() - started < 10 * LIMITS.regex_timeout_s + 1


def test_long_operator_chains_and_deep_nesting_are_refused() -> None:
    with pytest.raises(PqlError, match="nested"):
        parse(" or ".join(f'person.name.firstName = "n{i}"' for i in range(1000)))
    with pytest.raises(PqlError, match="nested"):
        parse("(" * 500 + "1 = 1" + ")" * 500)
    with pytest.raises(PqlError, match="longer"):
        parse('person.name.firstName = "' + "a" * 200_000 + '"')
    parse(" or ".join(f'person.name.firstName = "n{i}"' for i in range(50)))
