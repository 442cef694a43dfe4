"""Demo-data generation speed: records/s into Python dicts, and JSONL / Parquet files.

Reference measured in the same run: ``orjson.dumps`` over the same number of already-built
records (the cheapest thing one can do per record in Python), so the ratio says how many
``orjson.dumps`` calls one generated record costs.

    python benchmarks/generate.py --people 20000 [--out benchmarks/results/generate.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tessera.demo import generate, write  # noqa: E402


def _best(fn: object, repeat: int, clock: Callable[[], float] = time.process_time) -> float:
    """Best of ``repeat`` runs. CPU time by default: the machine is shared, and CPU time is far
    less disturbed by other processes than wall time (file writes use wall time)."""
    best = float("inf")
    for _ in range(repeat):
        t = clock()
        fn()  # type: ignore[operator]
        best = min(best, clock() - t)
    return best


def _mem_gib() -> int:
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)


def _distro() -> str:
    try:
        return "Debian " + Path("/etc/debian_version").read_text().strip()
    except OSError:
        return f"{platform.system()} {platform.release()}"


def _read_rows(tmp: Path, n: int, repeat: int) -> list[str]:
    import duckdb

    from tessera.ingest.readers import read_file

    rows = []
    for fmt, fn in (("jsonl", "read_json"), ("parquet", "read_parquet")):
        path = tmp / ("j" if fmt == "jsonl" else "p") / f"web_events.{fmt}"
        t_ours = _best(lambda path=path: sum(1 for _ in read_file(path)), repeat)

        def duck(path: Path = path, fn: str = fn) -> None:
            con = duckdb.connect()
            con.execute(f"CREATE TABLE t AS SELECT * FROM {fn}('{path}')")
            con.close()

        t_duck = _best(duck, repeat)
        rows.append(f"| {fmt} | {n / t_ours:,.0f} | {n / t_duck:,.0f} | {t_ours / t_duck:.1f}× |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=20_000, help="population size (the scale)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is kept")
    ap.add_argument("--out", type=Path, help="also write the Markdown result here")
    args = ap.parse_args()

    demo = generate(args.people, seed=args.seed)
    counts = demo.counts()
    total = sum(counts.values())

    def gen_all() -> None:
        d = generate(args.people, seed=args.seed)
        for ds in d.datasets:
            for _ in ds.records():
                pass

    per_ds: dict[str, float] = {}
    for ds in demo.datasets:
        per_ds[ds.name] = _best(
            lambda ds=ds: sum(1 for _ in generate(args.people, seed=args.seed).dataset(ds.name).records()),
            args.repeat,
        )
    t_gen = _best(gen_all, args.repeat)

    sample = [r for ds in demo.datasets for r in ds.records()]
    dumps = orjson.dumps
    t_ref = _best(lambda: [dumps(r) for r in sample], args.repeat)

    tmp = Path(tempfile.mkdtemp(prefix="tessera-bench-"))
    try:
        write(tmp / "warm", 50, formats=["parquet"])  # Parquet schemas are inferred once per process
        t_jsonl = _best(
            lambda: write(tmp / "j", args.people, seed=args.seed, formats=["jsonl"]),
            args.repeat,
            time.perf_counter,
        )
        t_pq = _best(
            lambda: write(tmp / "p", args.people, seed=args.seed, formats=["parquet"]),
            args.repeat,
            time.perf_counter,
        )
        mb_jsonl = sum(f.stat().st_size for f in (tmp / "j").glob("*.jsonl")) / 1e6
        mb_pq = sum(f.stat().st_size for f in (tmp / "p").glob("*.parquet")) / 1e6
        read_rows = _read_rows(tmp, counts["web_events"], args.repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    lines = [
        "# Demo data generation (`benchmarks/generate.py`)",
        "",
        f"Date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} cores, {_mem_gib()} GiB, "
        f"{_distro()}, Python {platform.python_version()}; `--people {args.people} --seed {args.seed}`, "
        f"best of {args.repeat}; load average at the end {os.getloadavg()[0]:.1f} "
        "(other processes share the machine: compare the ratios, not the absolute rates).",
        "",
        f"{total:,} records ({', '.join(f'{k} {v:,}' for k, v in counts.items())}).",
        "",
        "| measurement | time (s; CPU unless marked wall) | records/s | vs reference |",
        "|---|---|---|---|",
        f"| reference: `orjson.dumps` of the same {total:,} prebuilt dicts | {t_ref:.3f} | {total / t_ref:,.0f} | 1.00× time |",
        f"| generate all datasets into dicts | {t_gen:.3f} | {total / t_gen:,.0f} | {t_gen / t_ref:.2f}× time |",
        f"| generate + write JSONL ({mb_jsonl:.1f} MB) | {t_jsonl:.3f} wall | {total / t_jsonl:,.0f} | {t_jsonl / t_ref:.2f}× time |",
        f"| generate + write Parquet zstd ({mb_pq:.1f} MB) | {t_pq:.3f} wall | {total / t_pq:,.0f} | {t_pq / t_ref:.2f}× time |",
        "",
        "Per dataset (generation into dicts, CPU time, each dataset alone, cohorts rebuilt):",
        "",
        "| dataset | records | records/s |",
        "|---|---|---|",
        *[f"| {k} | {counts[k]:,} | {counts[k] / v:,.0f} |" for k, v in per_ds.items()],
        "",
        "Goal: ≥ 200,000 records/s into dicts.",
        "",
        f"Reading the generated `web_events` files back ({counts['web_events']:,} records) with "
        "`tessera.ingest.readers.read_file` into dicts, next to DuckDB loading the same file into a table "
        "(CPU time of this process; DuckDB may use both cores, so its CPU time can exceed its wall time):",
        "",
        "| file | read_file records/s | DuckDB records/s | read_file / DuckDB time |",
        "|---|---|---|---|",
        *read_rows,
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
