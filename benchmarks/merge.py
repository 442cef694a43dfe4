"""Merge of a typical profile: µs per merge next to a plain dict.update chain (same run, same data).

A typical profile here: 3–6 record fragments from different datasets, ~40 leaves in total across
nested objects, an array, a map and identityMap entries. Three figures per policy:

* ``merge``: ``merge(fragments, policy)`` on prepared fragments (the materialised-profile path,
  where fragments are flattened once at write time);
* ``build+merge``: building the ``Fragment`` objects from records first (merge-on-read from rows);
* reference: ``d = {}; d.update(record)`` over the same records in timestamp order (shallow, wrong
  for nested data, but the floor any Python merge is measured against), run interleaved with each
  measurement so both see the same machine load; a naive recursive deep merge is printed too.

Usage: ``python benchmarks/merge.py [--scale N] [--repeat R]`` (N profiles, default 2000).
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from tessera.model import Identity  # noqa: E402
from tessera.profile import Fragment, MergePolicy, SandboxRef, merge  # noqa: E402

T0 = datetime(2024, 6, 1, tzinfo=UTC)
DATASETS = ["CRM", "Loyalty", "WebForms", "POS", "Email", "Support"]
FIELDS = [
    ("person", "name", "firstName"),
    ("person", "name", "lastName"),
    ("person", "name", "middleName"),
    ("person", "birthDate"),
    ("person", "gender"),
    ("person", "maritalStatus"),
    ("homeAddress", "street1"),
    ("homeAddress", "city"),
    ("homeAddress", "postalCode"),
    ("homeAddress", "country"),
    ("homeAddress", "stateProvince"),
    ("personalEmail", "address"),
    ("personalEmail", "status"),
    ("mobilePhone", "number"),
    ("mobilePhone", "status"),
    ("_acme", "loyalty", "tier"),
    ("_acme", "loyalty", "points"),
    ("_acme", "loyalty", "joined"),
    ("_acme", "prefs", "channel"),
    ("_acme", "prefs", "language"),
    ("_acme", "scores", "churn"),
    ("_acme", "scores", "ltv"),
    ("consents", "marketing", "email", "val"),
    ("consents", "marketing", "sms", "val"),
    ("interests",),
    ("segmentMembership",),
]


def record(rng: random.Random, i: int, n_leaves: int) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "identityMap": {"Email": [{"id": f"p{i}@example.com"}], "ECID": [{"id": str(rng.random())}]}
    }
    for path in rng.sample(FIELDS, n_leaves):
        node = doc
        for key in path[:-1]:
            node = node.setdefault(key, {})
        if path[-1] == "interests":
            value: Any = rng.sample(["golf", "chess", "tennis", "wine", "ski"], 2)
        elif path[-1] == "segmentMembership":
            value = {"ups": {f"seg{rng.randrange(9)}": {"status": "realized"}}}
        else:
            value = rng.choice([f"v{rng.randrange(100)}", rng.randrange(1000), True])
        node[path[-1]] = value
    return doc


def make_profiles(n: int, seed: int = 7) -> list[list[tuple[str, Identity, dict[str, Any], datetime]]]:
    rng = random.Random(seed)
    profiles = []
    for i in range(n):
        k = rng.randint(3, 6)
        per = max(1, 40 // k)  # ~40 leaves per profile in total
        rows = []
        for ds in rng.sample(DATASETS, k):
            ts = T0 + timedelta(seconds=rng.randrange(1_000_000))
            rows.append((ds, Identity("CRMID", f"{ds}-{i}"), record(rng, i, per), ts))
        profiles.append(rows)
    return profiles


def best_of_interleaved(repeat: int, fn: Callable[[], None], ref: Callable[[], None]) -> tuple[float, float]:
    """Best time of ``fn`` and of ``ref``, run alternately so both see the same machine load."""
    best, best_ref = float("inf"), float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        ref()
        mid = time.perf_counter()
        fn()
        best_ref = min(best_ref, mid - start)
        best = min(best, time.perf_counter() - mid)
    return best, best_ref


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=2000, help="number of profiles")
    parser.add_argument("--repeat", type=int, default=5, help="best of R runs")
    args = parser.parse_args()
    profiles = make_profiles(args.scale)
    prepared = [[Fragment(ds, ident, rec, ts) for ds, ident, rec, ts in rows] for rows in profiles]
    leaves = sum(len(f.leaves) for frags in prepared for f in frags) / len(prepared)
    ordered_records = [[rec for _, _, rec, _ in sorted(rows, key=lambda r: r[3])] for rows in profiles]
    sandbox = SandboxRef.named("prod")
    policies = {
        "timestampOrdered": MergePolicy("ts", "ts", sandbox),
        "dataSetPrecedence": MergePolicy(
            "dsp", "dsp", sandbox, attribute_merge="dataSetPrecedence", order=tuple(DATASETS[:4])
        ),
    }

    def reference() -> None:
        for records in ordered_records:
            out: dict[str, Any] = {}
            for rec in records:
                out.update(rec)

    def deep_update(dst: dict[str, Any], src: dict[str, Any]) -> None:
        for k, v in src.items():
            if type(v) is dict and type(dst.get(k)) is dict:
                deep_update(dst[k], v)
            else:
                dst[k] = v

    def deep_reference() -> None:
        # A per-leaf newest-wins merge with no provenance, identity union or explicit keys.
        for records in ordered_records:
            out: dict[str, Any] = {}
            for rec in records:
                deep_update(out, rec)

    deep_secs, _ = best_of_interleaved(args.repeat, deep_reference, reference)

    n = len(profiles)
    print(f"# merge benchmark: {n} profiles, {leaves:.1f} leaves/profile, best of {args.repeat}")
    print(
        f"python {platform.python_version()} on {platform.machine()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print(
        f"second reference, naive recursive deep merge (newest wins, no provenance): {deep_secs / len(profiles) * 1e6:.1f} µs"
    )
    print()
    print("| policy | operation | µs/merge | reference dict.update µs | ratio |")
    print("|---|---|---|---|---|")
    for name, policy in policies.items():

        def run_merge(policy: MergePolicy = policy) -> None:
            for frags in prepared:
                merge(frags, policy)

        def run_build(policy: MergePolicy = policy) -> None:
            for rows in profiles:
                merge([Fragment(ds, ident, rec, ts) for ds, ident, rec, ts in rows], policy)

        for label, fn in (("merge", run_merge), ("build+merge", run_build)):
            secs, ref_secs = best_of_interleaved(args.repeat, fn, reference)
            us, ref_us = secs / n * 1e6, ref_secs / n * 1e6
            print(f"| {name} | {label} | {us:.1f} | {ref_us:.2f} | {us / ref_us:.0f}× |")


if __name__ == "__main__":
    main()
