"""The bulk batch path stores exactly what one-message-at-a-time streaming stores.

The same generated multi-dataset data (CRM, an upsert loyalty dataset, a dataset without
identity linking, five event datasets) with bad records mixed in — schema errors, junk and
malformed identities, too many identities, two CRM ids in one row (a unique-namespace rule),
oversized events, replayed and moved event ids, a graph limit low enough to split graphs — goes
into three sandboxes: as batches through the bulk path (``ingest_records``, small chunks so that
state carries across chunk boundaries), as the same batches through the row-at-a-time path, and
as streaming messages sent one by one. Every stored table that does not carry the wall clock
must be equal (streaming differs only in ``exited`` memberships, see :func:`_settled`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tessera import Platform
from tessera.demo import generate
from tessera.demo.load import LINKING_RULES
from tessera.flow import PreparedChunk, prepare_batch, process_chunk
from tessera.platform import Sandbox
from tessera.profile.service import EVENT_IDS, EVENTS, FRAGMENTS, VERSIONS
from tessera.segments.memberships import scan_all

SEGMENT_ID = "seg-us"
GRAPH_LIMIT = 8


def _bad_rows(name: str, sample: dict[str, Any], is_event: bool) -> list[tuple[int, Any]]:
    """(position, record) pairs to insert into a dataset's rows."""
    bad: list[tuple[int, Any]] = []
    junk = copy.deepcopy(sample)
    junk["identityMap"] = {"ECID": [{"id": "anonymous"}], "Email": [{"id": "null"}]}
    bad.append((5, junk))
    too_many = copy.deepcopy(sample)
    too_many["identityMap"] = {"Email": [{"id": f"x{i}@example.com"} for i in range(21)]}
    bad.append((7, too_many))
    short_ecid = copy.deepcopy(sample)
    short_ecid["identityMap"] = {"ECID": [{"id": "12345", "primary": True}]}
    bad.append((9, short_ecid))
    if is_event:
        no_time = copy.deepcopy(sample)
        no_time.pop("timestamp")
        no_time["_id"] = f"{name}-no-time"
        bad.append((11, no_time))
        huge = copy.deepcopy(sample)
        huge["_id"] = f"{name}-huge"
        huge["web"] = {"webPageDetails": {"name": "x" * 12_000}}
        bad.append((13, huge))
    else:
        bad_date = copy.deepcopy(sample)
        bad_date["person"] = {"birthDate": "not-a-date"}
        bad.append((11, bad_date))
        two_crm = copy.deepcopy(sample)
        two_crm["identityMap"] = {"CRMID": [{"id": "dup-a", "primary": True}, {"id": "dup-b"}]}
        bad.append((13, two_crm))
    return bad


def _rows(name: str, records: list[dict[str, Any]], is_event: bool) -> list[Any]:
    rows: list[Any] = list(records)
    if is_event and len(records) > 20:
        rows.append(copy.deepcopy(records[0]))  # identical replay: idempotent
        moved = copy.deepcopy(records[1])
        moved["timestamp"] = "2026-01-01T00:00:00.000Z"  # same _id, new time: the event moves
        rows.append(moved)
        rows.insert(15, copy.deepcopy(records[2]))  # replay inside the same chunk
    if not is_event and len(records) > 20:
        changed = copy.deepcopy(records[0])  # the same person again: the fragment is replaced/updated
        changed.setdefault("person", {})["gender"] = "not_specified"
        rows.append(changed)
        partial = {
            "identityMap": copy.deepcopy(records[1]["identityMap"]),
            "_tessera": {"loyalty": {"points": 7}},
        }
        rows.append(partial)
    for pos, bad in _bad_rows(name, records[0], is_event):
        rows.insert(min(pos, len(rows)), bad)
    return rows


def _datasets() -> list[tuple[str, str, dict[str, Any], list[Any]]]:
    """(dataset id, schema kind, create options, rows) in ingestion order."""
    demo = generate(90, seed=11)
    out: list[tuple[str, str, dict[str, Any], list[Any]]] = []
    for ds in demo.datasets:
        is_event = ds.xdm_class != "profile"
        options: dict[str, Any] = {"upsert": ds.name == "loyalty_members"}
        records = list(ds.records())
        out.append((ds.name, "event" if is_event else "profile", options, _rows(ds.name, records, is_event)))
        if ds.name == "crm_profiles":  # a Profile dataset that does not link identities
            out.append(
                ("crm_unlinked", "profile", {"identity": False}, _rows("crm_unlinked", records[:30], False))
            )
    return out


def _provision(sb: Sandbox, datasets: list[tuple[str, str, dict[str, Any], list[Any]]]) -> None:
    schemas = sb.schemas.ensure_standard_schemas()
    sb.identity.set_rules(
        unique=LINKING_RULES["unique"], priority=["CRMID", "Email", "Phone", "ECID"], limit=GRAPH_LIMIT
    )
    for ds_id, kind, options, _ in datasets:
        sb.datasets.create(ds_id, schemas[kind], dataset_id=ds_id, **options)
    sb.segments.create(
        {
            "name": "US",
            "expression": {"type": "PQL", "format": "pql/text", "value": 'homeAddress.countryCode = "US"'},
            "evaluationInfo": {"batch": {"enabled": False}, "continuous": {"enabled": True}},
        },
        seg_id=SEGMENT_ID,
    )


def _without_clock(doc: Any) -> Any:
    """The document minus what comes from the clock (ingestion, qualification, expiry times), batch and policy ids."""
    if isinstance(doc, dict):
        return {
            k: _without_clock(v)
            for k, v in doc.items()
            if k
            not in {
                "lastModifiedAt",
                "ingestedAt",
                "lastQualificationTime",
                "validUntil",
                "batch",
                "mergePolicyId",
            }
        }
    if isinstance(doc, list):
        return [_without_clock(v) for v in doc]
    return doc


def _table(sb: Sandbox, table: str) -> dict[str, Any]:
    return {k: _without_clock(orjson.loads(v)) if v else v for k, v in sb.store.scan(table)}


def _versions(sb: Sandbox) -> dict[str, Any]:
    # the key holds the ingestion time: keep the fragment key and the sequence number
    out = {}
    for k, v in sb.store.scan(VERSIONS):
        parts = k.split("\x1f")
        out["\x1f".join([*parts[:-2], parts[-1]])] = _without_clock(orjson.loads(v))
    return out


def _state(sb: Sandbox) -> dict[str, Any]:
    graph = sb.identity.graph
    links = sorted((str(li.a), str(li.b), li.seq, li.dataset) for li in graph.links())
    event_links = sorted(
        (str(li.a), str(li.b), li.first_seen, li.last_seen)
        for li in graph.links()
        if li.dataset and "events" in li.dataset
    )
    return {
        "components": {pid: sorted(map(str, members)) for pid, members in graph.components().items()},
        "links": links,
        "event_link_times": event_links,
        "refused": graph.refused_counts(),
        "profiles": {pid: _without_clock(doc) for pid, doc in sb.profiles.scan_profiles()},
        "fragments": _table(sb, FRAGMENTS),
        "versions": _versions(sb),
        "events": _table(sb, EVENTS),
        "event_ids": {k: v.decode() for k, v in sb.store.scan(EVENT_IDS)},
        "memberships": sorted((pid, sid, rec["status"]) for pid, sid, rec in scan_all(sb.store)),
    }


def _batch_rejections(sb: Sandbox, batch: dict[str, Any]) -> Iterator[tuple[int, str, str | None]]:
    for err in sb.batches.errors(batch["id"]):
        yield err["row"], err["message"], err.get("path")


def _ingest_batches(home: Path, datasets: list[tuple[str, str, dict[str, Any], list[Any]]]) -> dict[str, Any]:
    rejected = {}
    with Platform.open(home) as platform:
        sb = platform.sandbox()
        _provision(sb, datasets)
        for ds_id, _, _, rows in datasets:
            batch = sb.ingest.ingest_records(ds_id, rows)
            assert batch["metrics"]["inputRecordCount"] == len(rows)
            rejected[ds_id] = sorted(_batch_rejections(sb, batch))
        return {"state": _state(sb), "rejected": rejected}


_RAW_ROWS: dict[int, list[tuple[int, Any]]] = {}
"""The raw rows of each prepared chunk (by ``id`` of its PreparedChunk), for the reference path."""


def _remembering_rows(sandbox: Any, dataset: dict[str, Any], rows: Any, **kwargs: Any) -> PreparedChunk:
    """``prepare_batch``, keeping the chunk's raw rows for :func:`_row_at_a_time`."""
    rows = list(rows)
    prepared = prepare_batch(sandbox, dataset, rows, **kwargs)
    _RAW_ROWS[id(prepared)] = rows
    return prepared


def _row_at_a_time(sandbox: Any, dataset: dict[str, Any], prepared: PreparedChunk, *, batch_id: str) -> Any:
    """The batch's chunk through the streaming path: every stage row by row, from the raw rows."""
    rows = _RAW_ROWS.pop(id(prepared))
    return process_chunk(sandbox, dataset, rows, batch_id=batch_id, ingested_at=prepared.now)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same data three ways: bulk batches, row-at-a-time batches, one streaming message at a time."""
    import tessera.ingest.service as ingest_service

    datasets = _datasets()
    home: Path = tmp_path_factory.mktemp("equivalence")
    out: dict[str, Any] = {}
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(ingest_service, "CHUNK_ROWS", 250)  # several chunks per dataset
        out["bulk"] = _ingest_batches(home / "bulk", datasets)
        mp.setattr(ingest_service, "prepare_batch", _remembering_rows)
        mp.setattr(ingest_service, "apply_batch", _row_at_a_time)  # the reference path, same chunks
        out["rows"] = _ingest_batches(home / "rows", datasets)
    finally:
        mp.undo()
    with Platform.open(home / "stream") as platform:
        sb = platform.sandbox()
        _provision(sb, datasets)
        rejected = {}
        for ds_id, _, _, rows in datasets:
            refused = []
            for row_no, row in enumerate(rows):
                (result,) = sb.ingest.stream([row], dataset_id=ds_id)
                if "xactionId" not in result:
                    refused.append((row_no, result["message"], result.get("path")))
            rejected[ds_id] = refused
        out["stream"] = {"state": _state(sb), "rejected": rejected}
    with Platform.open(home / "stream-grouped") as platform, pytest.MonkeyPatch.context() as small:
        # every call of 40 messages (or the last, shorter one) takes the bulk path, on every dataset
        small.setattr(ingest_service, "BULK_STREAM_ROWS", 10)
        sb = platform.sandbox()
        _provision(sb, datasets)
        rejected = {}
        for ds_id, _, _, rows in datasets:
            refused = []
            step = 40
            for start in range(0, len(rows), step):
                results = sb.ingest.stream(rows[start : start + step], dataset_id=ds_id)
                refused += [
                    (start + n, result["message"], result.get("path"))
                    for n, result in enumerate(results)
                    if "xactionId" not in result
                ]
            rejected[ds_id] = refused
        out["stream_grouped"] = {"state": _state(sb), "rejected": rejected}
    return out


def _settled(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` without ``exited`` memberships.

    A batch evaluates streaming segments on each chunk's final state, so a profile that qualified
    and stopped qualifying inside one chunk has no ``exited`` record there, while one message at a
    time leaves one. Everything else must match.
    """
    out = dict(state)
    out["memberships"] = [m for m in state["memberships"] if m[2] != "exited"]
    profiles = {}
    for pid, doc in state["profiles"].items():
        doc = copy.deepcopy(doc)
        live = {k: v for k, v in doc.get("segmentMembership", {}).items() if v.get("status") != "exited"}
        doc["segmentMembership"] = live
        attributes = doc["attributes"]
        attributes.pop("segmentMembership", None)
        if live:
            attributes["segmentMembership"] = {"ups": live}
        profiles[pid] = doc
    out["profiles"] = profiles
    return out


def test_bulk_batches_store_exactly_what_row_at_a_time_batches_store(runs: dict[str, Any]) -> None:
    bulk, rows = runs["bulk"], runs["rows"]
    assert bulk["rejected"] == rows["rejected"]
    for part in bulk["state"]:
        assert bulk["state"][part] == rows["state"][part], part


def test_every_bad_record_is_rejected_the_same_way(runs: dict[str, Any]) -> None:
    assert runs["bulk"]["rejected"] == runs["stream"]["rejected"]
    for ds_id, refused in runs["bulk"]["rejected"].items():
        assert len(refused) >= 4, ds_id  # the inserted bad rows were all seen
    crm = {row: message for row, message, _ in runs["bulk"]["rejected"]["crm_profiles"]}
    assert any("CRMID" in m for m in crm.values())  # the unique-namespace rule refused a row


def test_identity_graph_is_the_same(runs: dict[str, Any]) -> None:
    batch, stream = _settled(runs["bulk"]["state"]), _settled(runs["stream"]["state"])
    assert batch["components"] == stream["components"]
    assert batch["links"] == stream["links"]
    assert batch["event_link_times"] == stream["event_link_times"]
    assert batch["refused"] == stream["refused"]
    assert any(len(m) > 3 for m in batch["components"].values())
    assert max(len(m) for m in batch["components"].values()) <= GRAPH_LIMIT


def test_fragments_and_events_are_the_same(runs: dict[str, Any]) -> None:
    batch, stream = _settled(runs["bulk"]["state"]), _settled(runs["stream"]["state"])
    assert batch["fragments"] == stream["fragments"]
    assert batch["versions"] == stream["versions"]
    assert batch["event_ids"] == stream["event_ids"]
    assert batch["events"] == stream["events"]
    assert len(batch["events"]) > 1000


def test_materialised_profiles_and_live_memberships_are_the_same(runs: dict[str, Any]) -> None:
    batch, stream = _settled(runs["bulk"]["state"]), _settled(runs["stream"]["state"])
    assert batch["profiles"].keys() == stream["profiles"].keys()
    for pid, doc in batch["profiles"].items():
        assert doc == stream["profiles"][pid], pid
    assert batch["memberships"] == stream["memberships"]
    assert any(status == "realized" for _, _, status in batch["memberships"])


def test_streaming_many_messages_at_once_stores_what_one_at_a_time_stores(runs: dict[str, Any]) -> None:
    # large streaming calls (and requests grouped by the API) take the bulk path
    grouped, single = runs["stream_grouped"], runs["stream"]
    assert grouped["rejected"] == single["rejected"]
    grouped_state, single_state = _settled(grouped["state"]), _settled(single["state"])
    for part in single_state:
        assert grouped_state[part] == single_state[part], part
