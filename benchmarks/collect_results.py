"""Gather every benchmark's recorded results (``benchmarks/results/*.md``) into ``RESULTS.md``.

Each benchmark writes its own file when run; this keeps one document to read, in a fixed order.
"""

from __future__ import annotations

from pathlib import Path

ORDER = [
    "ingest",
    "xdm",
    "generate",
    "identity",
    "merge",
    "profile",
    "pql",
    "segmentation",
    "api",
    "ui",
    "estimate",
    "soak",
    "scale",
]
HEADER = """# Benchmark results

Every figure is printed next to a reference measured in the same run (a ratio), because machines
are noisy. The machine for all runs below: 2 cores, 24 GiB, Debian 12, CPython 3.11.7. Most runs
were made while several other processes shared the two cores, which the sections say; absolute
numbers on an idle machine are better, ratios move less. Goals come from the issues; where a goal
is not met, the section says so.
"""


def main() -> None:
    here = Path(__file__).parent
    files = {p.stem: p for p in sorted((here / "results").glob("*.md"))}
    names = [n for n in ORDER if n in files] + sorted(set(files) - set(ORDER))
    parts = [HEADER]
    for name in names:
        body = files[name].read_text().strip()
        if not body.startswith("#"):
            body = f"## {name}\n\n{body}"
        else:
            body = "#" + body  # demote each file's title one level
        parts.append(body)
    (here / "RESULTS.md").write_text("\n\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
