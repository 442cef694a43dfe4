"""What the identity service keeps in the store: its counters are written only when they change,
and a reopened sandbox continues the graph exactly where the committed one left off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import crm_record, ecid, web_event

from tessera.identity.service import META
from tessera.model import Identity
from tessera.platform import Platform, Sandbox
from tessera.store import WriteBatch


def _standard(sb: Sandbox) -> dict[str, Any]:
    schemas = sb.schemas.ensure_standard_schemas()
    return {
        "crm": sb.datasets.create("CRM", schemas["profile"])["id"],
        "web": sb.datasets.create("Web", schemas["event"])["id"],
    }


def _count_meta_writes(sb: Sandbox) -> list[int]:
    """Wrap the sandbox store's write so each write reports how many identity-counter rows it held."""
    seen: list[int] = []
    write = sb.store.write

    def counting(batch: WriteBatch) -> None:
        seen.append(sum(1 for table, _, _ in batch.ops if table == META))
        write(batch)

    sb.store.write = counting  # type: ignore[method-assign]
    return seen


def test_events_that_link_nothing_do_not_rewrite_the_identity_counters(retail: dict[str, Any]) -> None:
    sb: Sandbox = retail["sandbox"]
    sb.ingest.stream(
        [web_event("e0", ecid(1), "2024-01-01T00:00:00Z", Email="a@example.com")],
        dataset_id=retail["web"]["id"],
    )
    seen = _count_meta_writes(sb)
    for i in range(5):  # one identity each: nothing to link
        sb.ingest.stream(
            [web_event(f"e{i + 1}", ecid(2 + i), "2024-01-01T00:00:00Z")], dataset_id=retail["web"]["id"]
        )
    assert seen == [0] * 5
    sb.ingest.stream(
        [web_event("e9", ecid(9), "2024-01-01T00:00:00Z", Email="b@example.com")],
        dataset_id=retail["web"]["id"],
    )
    assert seen[-1] == 1  # a row that links moves the sequence: the counters are written with it
    assert sb.profiles.resolve(Identity("ECID", ecid(3))) is not None


def test_a_reopened_sandbox_continues_the_graph_as_an_uninterrupted_one(tmp_path: Path) -> None:
    """Profile ids are derived from sequence numbers: the sequence a reopened sandbox reads back
    must be the one the committed rows reached, so that it names new profiles as a sandbox that
    never stopped does."""

    def first_half(sb: Sandbox, ids: dict[str, Any]) -> None:
        sb.ingest.ingest_records(
            ids["crm"], [crm_record("c1", "one@example.com"), crm_record("c2", "two@example.com")]
        )
        sb.ingest.stream([web_event("e1", ecid(1), "2024-01-01T00:00:00Z")], dataset_id=ids["web"])
        sb.ingest.stream([web_event("e2", ecid(2), "2024-01-01T00:00:00Z")], dataset_id=ids["web"])

    def second_half(sb: Sandbox, ids: dict[str, Any]) -> str | None:
        sb.ingest.stream(
            [web_event("e3", ecid(3), "2024-01-01T00:00:00Z", Phone="+15550003")], dataset_id=ids["web"]
        )
        return sb.identity.profile_id_of(Identity("ECID", ecid(3)), sb.store)

    with Platform.open(tmp_path / "straight") as p:
        sb = p.sandbox()
        ids = _standard(sb)
        first_half(sb, ids)
        straight = second_half(sb, ids), sb.identity.graph.seq
    with Platform.open(tmp_path / "reopened") as p:
        sb = p.sandbox()
        ids = _standard(sb)
        first_half(sb, ids)
    with Platform.open(tmp_path / "reopened") as p:
        sb = p.sandbox()
        reopened = second_half(sb, ids), sb.identity.graph.seq
    assert reopened == straight
    assert straight[1] == 3  # two CRM records and one event linked something


def test_identity_version_follows_new_visitors(retail: dict[str, Any]) -> None:
    """The UI's cached profile count is keyed by ``identity.version``: a visitor with a single
    identity links nothing, yet adds a profile, so the version must move."""
    sb: Sandbox = retail["sandbox"]
    before = sb.identity.version
    sb.ingest.stream([web_event("v1", ecid(77), "2024-01-01T00:00:00Z")], dataset_id=retail["web"]["id"])
    assert sb.identity.version != before
    assert sb.identity.graph.seq == 0
