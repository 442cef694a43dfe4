"""Many clients at once over HTTP writing records and events for the same people: no update is
lost, and the identity graph and merged profiles equal a serial replay of the same messages in a
fresh platform.

Each writer owns one dataset and one attribute (a writer's own messages are sent in order), so the
final state does not depend on how the writers interleave: any difference is a lost or mixed-up
update, not a legitimate race."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import orjson
from faults_harness import COUNTS, JSON, ServerProcess, ecid, event, graph_matches_links, prepare

from tessera.model import Identity
from tessera.platform import Platform, Sandbox
from tessera.settings import Settings

PEOPLE = 12
ROUNDS = 3
FIELDS = ("firstName", "middleName", "lastName", "fullName")
EVENT_WRITERS = 2


def _record(writer: int, person: int, rnd: int) -> dict[str, Any]:
    """Writer ``writer``'s version ``rnd`` of ``person``: its own attribute and its own e-mail,
    linked to the person's CRM id (and the first writer links the ECID the events use)."""
    identity_map: dict[str, Any] = {
        "CRMID": [{"id": f"crm-{person}", "primary": True}],
        "Email": [{"id": f"p{person}-w{writer}@example.com"}],
    }
    if writer == 0:
        identity_map["ECID"] = [{"id": ecid(person)}]
    return {"identityMap": identity_map, "person": {"name": {FIELDS[writer]: f"w{writer}-p{person}-r{rnd}"}}}


def _setup(home: Path) -> tuple[list[str], list[str], str]:
    """Datasets and inlets: one per record writer, plus the events inlet."""
    layout = prepare(home, segment=True)
    datasets, inlets = [layout.crm], [layout.crm_inlet]
    with Platform(Settings(home=str(home))) as platform:
        sb = platform.sandbox()
        for w in range(1, len(FIELDS)):
            ds = sb.datasets.create(f"CRM{w}", layout.schemas["profile"])["id"]
            datasets.append(ds)
            inlets.append(sb.ingest.create_inlet(f"crm{w}", dataset_id=ds)["id"])
    return datasets, inlets, layout.web_inlet


def _writer_messages(writer: int, inlets: list[str], web_inlet: str) -> list[tuple[str, Any]]:
    """``(inlet, messages)`` in the order this writer sends them."""
    out: list[tuple[str, Any]] = []
    if writer < len(FIELDS):
        for rnd in range(ROUNDS):
            for p in range(PEOPLE):
                out.append((inlets[writer], [_record(writer, p, rnd)]))
    else:
        base = (writer - len(FIELDS)) * 10_000
        for chunk in range(ROUNDS):
            out.append((web_inlet, [event(base + chunk * PEOPLE + p, p) for p in range(PEOPLE)]))
    return out


def _snapshot(sb: Sandbox) -> dict[str, Any]:
    """Per person (by CRM id, as profile ids depend on arrival order): merged attributes, the
    identity set and the event ids."""
    out: dict[str, Any] = {}
    for p in range(PEOPLE):
        view = sb.profiles.get(Identity("CRMID", f"crm-{p}"))
        assert view is not None
        events, _ = sb.profiles.events(Identity("CRMID", f"crm-{p}"), limit=10_000)
        out[f"crm-{p}"] = {
            "attributes": view.attributes.get("person"),
            "identities": sorted(
                (i["namespace"]["code"] if isinstance(i["namespace"], dict) else i["namespace"], i["id"])
                for i in view.identities
            ),
            "events": sorted(e["record"]["_id"] for e in events),
        }
    return out


def test_concurrent_writers_equal_a_serial_replay(tmp_path: Path) -> None:
    home = tmp_path / "home"
    datasets, inlets, web_inlet = _setup(home)
    writers = len(FIELDS) + EVENT_WRITERS
    plans = [_writer_messages(w, inlets, web_inlet) for w in range(writers)]
    server = ServerProcess(home).start()
    errors: list[str] = []
    start = threading.Barrier(writers)

    def run(plan: list[tuple[str, Any]], seed: int) -> None:
        rng = random.Random(seed)
        with server.client() as http:
            start.wait()
            for inlet, messages in plan:
                # single and batch endpoints mixed, so both paths race
                if len(messages) == 1 and rng.random() < 0.5:
                    resp = http.post(f"/collection/{inlet}", headers=JSON, content=orjson.dumps(messages[0]))
                    if resp.status_code != 200:
                        errors.append(resp.text)
                else:
                    resp = http.post(
                        f"/collection/batch/{inlet}",
                        headers=JSON,
                        content=orjson.dumps({"messages": messages}),
                    )
                    slots = resp.json()["responses"] if resp.status_code == 207 else [resp.text]
                    errors.extend(str(s) for s in slots if "xactionId" not in s)
                COUNTS["concurrent writes"] += len(messages)

    threads = [threading.Thread(target=run, args=(plan, w)) for w, plan in enumerate(plans)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    server.stop()
    assert errors == []

    with Platform(Settings(home=str(home))) as platform:
        sb = platform.sandbox()
        concurrent = _snapshot(sb)
        graph_matches_links(sb)
    # no lost update: every writer's last version is what the profile shows
    for p in range(PEOPLE):
        name = concurrent[f"crm-{p}"]["attributes"]["name"]
        assert name == {f: f"w{w}-p{p}-r{ROUNDS - 1}" for w, f in enumerate(FIELDS)}
        assert len(concurrent[f"crm-{p}"]["events"]) == EVENT_WRITERS * ROUNDS

    replay_home = tmp_path / "replay"
    _, replay_inlets, replay_web = _setup(replay_home)
    with Platform(Settings(home=str(replay_home))) as platform:
        sb = platform.sandbox()
        by_inlet = {i: sb.ingest.inlet(i)["datasetId"] for i in [*replay_inlets, replay_web]}
        for w in range(writers):
            for inlet, messages in _writer_messages(w, replay_inlets, replay_web):
                for result in sb.ingest.stream(messages, dataset_id=by_inlet[inlet]):
                    assert "xactionId" in result
        serial = _snapshot(sb)
    assert concurrent == serial
