"""The one loader for golden merge cases in ``tests/data/merge/`` (format: that folder's README)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tessera.model import Identity, parse_time
from tessera.profile import (
    Event,
    Fragment,
    MergedView,
    MergePolicy,
    MergePolicyBook,
    apply_record,
    combine_events,
    fragments_as_of,
    merge,
    stitched_identities,
)

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "data" / "merge"
END_OF_TIME = datetime(9999, 1, 1, tzinfo=UTC)


def identity(text: str) -> Identity:
    namespace, _, value = text.partition(":")
    return Identity(namespace, value)


@dataclass(frozen=True)
class GoldenCase:
    name: str
    title: str
    policy: MergePolicy
    versions: list[Fragment]
    events: list[Event]
    checks: list[dict[str, Any]]


def _fragment_versions(spec: dict[str, Any], first_sequence: int) -> list[Fragment]:
    ident = identity(spec["identity"])
    if "ingests" not in spec:
        return [
            Fragment(
                spec["dataset"],
                ident,
                spec["record"],
                parse_time(spec["ingestedAt"]),
                sequence=spec.get("sequence", first_sequence),
                deleted=spec.get("deleted", False),
            )
        ]
    # Fold the ingests into stored versions, exactly as the store will.
    out: list[Fragment] = []
    doc: dict[str, Any] | None = None
    for i, ingest in enumerate(spec["ingests"]):
        doc = apply_record(doc, ingest["record"], upsert=spec["upsert"], deletes=ingest.get("deletes", ()))
        out.append(
            Fragment(
                spec["dataset"], ident, doc, parse_time(ingest["ingestedAt"]), sequence=first_sequence + i
            )
        )
    return out


def load_case(path: Path) -> GoldenCase:
    raw = json.loads(path.read_text())
    book = MergePolicyBook(new_id=lambda: f"golden-{path.stem}")
    policy = book.create(raw["policy"], sandbox="prod")
    versions: list[Fragment] = []
    for i, spec in enumerate(raw["fragments"]):
        versions.extend(_fragment_versions(spec, first_sequence=100 * (i + 1)))
    events = [Event.from_record(e["dataset"], identity(e["identity"]), e["record"]) for e in raw["events"]]
    return GoldenCase(path.stem, raw["title"], policy, versions, events, raw["checks"])


def load_cases() -> list[GoldenCase]:
    return [load_case(p) for p in sorted(GOLDEN_DIR.glob("*.json"))]


def run_check(case: GoldenCase, check: dict[str, Any]) -> tuple[MergedView, list[Event]]:
    """Do what a lookup does: pick the identities, the current fragments and events, then merge."""
    graph = [identity(i) for i in check["graph"]]
    wanted = stitched_identities(case.policy, identity(check["lookup"]), graph)
    at = parse_time(check["asOf"]) if "asOf" in check else END_OF_TIME
    current = fragments_as_of((v for v in case.versions if v.identity in wanted), at)
    events = [e for e in case.events if e.identity in wanted and e.timestamp <= at]
    return merge(current, case.policy), combine_events(events, case.policy)
