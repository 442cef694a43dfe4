"""The whole segment job on a loaded demo store, phase by phase (issue 6: 1M profiles in ≤ 60 s).

A job at scale is mostly reading: every stored profile and event goes from the point store into
DuckDB before one query evaluates all segments. This benchmark keeps a loaded data directory so
the same store can be measured by two versions of the code:

    PYTHONPATH=src python benchmarks/job.py build --home /tmp/job-100k --people 100000
    PYTHONPATH=src python benchmarks/job.py measure --home /tmp/job-100k --repeat 2

``build`` loads the demo (generated people, the demo's linking rules and segments) through the
batch path; ``measure`` runs ``sandbox.segments.run_job()`` ``--repeat`` times in one process and
prints, per run, the whole job and the relation phases (profiles / owners / events / grouping,
as logged by ``tessera.pql``). The reference, measured in the same run on the same store, is
reading every stored event the way a job did before Arrow scans: ``scan_chunks`` building one
Python ``(key, bytes)`` pair per event — the figure to beat is the events phase against it.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform as host
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tessera import Platform
from tessera.demo.load import load_demo
from tessera.gc_pause import gc_paused
from tessera.profile.service import EVENTS
from tessera.store.base import scan_chunks

PHASES = re.compile(
    r"profiles (?P<profiles>[\d.]+) s, owners (?P<owners>[\d.]+) s, "
    r"events (?P<events>[\d.]+) s, grouping (?P<grouping>[\d.]+) s"
)


class _Phases(logging.Handler):
    """Keeps the phase times of the last relation the PQL loader logged."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.last: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        found = PHASES.search(record.getMessage())
        if found:
            self.last = {k: float(v) for k, v in found.groupdict().items()}


def build(home: Path, people: int) -> None:
    t = time.perf_counter()
    with Platform.open(home) as platform:
        sb = platform.sandbox()
        status = load_demo(sb, people=people, progress=None)
        print(json.dumps({"people": people, "profiles": sb.profiles.count(), "datasets": status["datasets"]}))
    print(f"built in {time.perf_counter() - t:.0f} s")


def _reference(sb: Any) -> tuple[int, float]:
    """Every stored event read as Python rows (the job's input before Arrow scans)."""
    started = time.perf_counter()
    rows = 0
    with gc_paused():
        for keys, _ in scan_chunks(sb.store, EVENTS, 100_000):
            rows += len(keys)
    return rows, time.perf_counter() - started


def measure(home: Path, repeat: int, label: str) -> None:
    phases = _Phases()
    log = logging.getLogger("tessera.pql")
    log.addHandler(phases)
    log.setLevel(logging.INFO)
    with Platform.open(home) as platform:
        sb = platform.sandbox()
        events, reference_s = _reference(sb)
        print(
            f"# segment job — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {host.python_version()}, "
            f"{label or 'this checkout'}\n"
            f"data: {sb.profiles.count():,} profiles, {events:,} events | reference: reading every "
            f"event as Python rows {reference_s:.2f} s ({reference_s / events * 1e6:.2f} µs/event)"
        )
        for run in range(1, repeat + 1):
            started = time.perf_counter()
            job = sb.segments.run_job()
            whole = time.perf_counter() - started
            p = phases.last
            read = sum(p.values())
            print(
                f"run {run}: job {whole:.2f} s ({job['status']}) | relation "
                f"{p.get('profiles', 0):.2f} / {p.get('owners', 0):.2f} / {p.get('events', 0):.2f} / "
                f"{p.get('grouping', 0):.2f} s = {read:.2f} s | rest {whole - read:.2f} s | "
                f"events phase {p.get('events', 0) / events * 1e6:.2f} µs/event, "
                f"ratio to reference {p.get('events', 0) / reference_s:.2f}x",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="load the demo into --home")
    b.add_argument("--home", type=Path, required=True)
    b.add_argument("--people", type=int, default=100_000, help="generated people (x1.25 profiles)")
    m = sub.add_parser("measure", help="run the whole job over a loaded --home")
    m.add_argument("--home", type=Path, required=True)
    m.add_argument("--repeat", type=int, default=2)
    m.add_argument("--label", default="")
    args = parser.parse_args()
    if args.cmd == "build":
        build(args.home, args.people)
    else:
        measure(args.home, args.repeat, args.label)


if __name__ == "__main__":
    main()
