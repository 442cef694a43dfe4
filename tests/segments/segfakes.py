"""Test doubles: a small sandbox surface over a MemoryStore and a PQL engine of named expressions.

The fake engine evaluates each named expression twice, independently: a Python predicate for
streaming/edge and hand-written DuckDB SQL for batch, so parity tests compare two real paths.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from tessera.errors import PqlError
from tessera.model import Identity, format_time, parse_time
from tessera.profile import sample
from tessera.segments.engine import Compiled, Verdict, in_segment_ids, time_dependence
from tessera.store import MemoryStore, PointStore, WriteBatch, key
from tessera.store.base import KEY_SEP
from tessera.store.staged import StagedStore

Py = Callable[[dict[str, Any], list[dict[str, Any]], datetime, Mapping[str, bool]], Any]


def ts(e: Mapping[str, Any]) -> datetime:
    return parse_time(e["timestamp"])


@dataclass
class FakeSeg:
    py: Py
    sql: str  # boolean SQL over tables p(profile_id, country, vip) and e(profile_id, ts, type, value), param $now
    text: str = ""
    streaming: bool = True
    parts: dict[str, Py] = field(default_factory=dict)


def _in(member: Mapping[str, bool], sid: str) -> bool:
    return bool(member.get(sid))


def standard_segments() -> dict[str, FakeSeg]:
    """Named expressions; ``text`` is the PQL they stand for (its windows drive the due queue)."""
    h3 = timedelta(hours=3)
    d1 = timedelta(days=1)
    return {
        "us": FakeSeg(
            lambda p, ev, now, m: (p.get("homeAddress") or {}).get("countryCode") == "US",
            "p.country = 'US'",
            'homeAddress.countryCode = "US"',
            parts={
                'homeAddress.countryCode = "US"': lambda p, ev, now, m: (
                    (p.get("homeAddress") or {}).get("countryCode") == "US"
                )
            },
        ),
        "bought_3h": FakeSeg(
            lambda p, ev, now, m: any(e["eventType"] == "purchase" and now - h3 < ts(e) <= now for e in ev),
            "EXISTS (SELECT 1 FROM e WHERE e.profile_id = p.profile_id AND e.type = 'purchase' "
            "AND e.ts > $now - INTERVAL 3 HOUR AND e.ts <= $now)",
            'xEvent[eventType = "purchase" and timestamp occurs < 3 hours before now].count() > 0',
        ),
        "cart_then_buy_1d": FakeSeg(
            lambda p, ev, now, m: _chain(ev, now, d1),
            "EXISTS (SELECT 1 FROM e a JOIN e b ON a.profile_id = b.profile_id WHERE a.profile_id = p.profile_id "
            "AND a.type = 'addToCart' AND b.type = 'purchase' AND a.ts < b.ts AND a.ts > $now - INTERVAL 1 DAY "
            "AND b.ts <= $now)",
            'chain(xEvent, timestamp, [A: WHAT(eventType = "addToCart") WHEN(< 1 days before now), '
            'B: WHAT(eventType = "purchase")])',
        ),
        "spend_100_1d": FakeSeg(
            lambda p, ev, now, m: sum(e.get("value", 0) for e in ev if now - d1 < ts(e) <= now) >= 100,
            "(SELECT coalesce(sum(e.value), 0) FROM e WHERE e.profile_id = p.profile_id AND e.ts > $now - "
            "INTERVAL 1 DAY AND e.ts <= $now) >= 100",
            "xEvent[timestamp occurs < 1 days before now].sum(value) >= 100",
        ),
        "us_buyer": FakeSeg(
            lambda p, ev, now, m: _in(m, "us") and _in(m, "bought_3h"),
            "p.profile_id IN (SELECT profile_id FROM m WHERE segment_id = 'us') AND "
            "p.profile_id IN (SELECT profile_id FROM m WHERE segment_id = 'bought_3h')",
            'inSegment("us") and inSegment("bought_3h")',
        ),
        "vip": FakeSeg(
            lambda p, ev, now, m: bool(p.get("vip")), "coalesce(p.vip, false)", "vip = true", streaming=False
        ),
        "big_spender": FakeSeg(
            lambda p, ev, now, m: ((p.get("computedAttributes") or {}).get("spend7d") or 0) > 50,
            "false",
            "computedAttributes.spend7d > 50",
        ),
        "spend7d": FakeSeg(
            lambda p, ev, now, m: sum(e.get("value", 0) for e in ev), "0", "xEvent.sum(value)"
        ),
    }


def _chain(ev: list[dict[str, Any]], now: datetime, window: timedelta) -> bool:
    carts = [ts(e) for e in ev if e["eventType"] == "addToCart" and now - window < ts(e) <= now]
    buys = [ts(e) for e in ev if e["eventType"] == "purchase" and ts(e) <= now]
    return any(c < b for c in carts for b in buys)


class FakeEngine:
    def __init__(self, segs: dict[str, FakeSeg] | None = None) -> None:
        self.segs = segs or standard_segments()

    def compile(self, fmt: str, value: str, *, boolean: bool = True) -> Compiled:
        name = value.strip()
        seg = self.segs.get(name)
        if seg is None:
            raise PqlError(f"unknown expression {name!r}", line=1, column=1, snippet=name + "\n^")
        windows, calendar = time_dependence(seg.text)
        parts = seg.parts

        def explain(
            p: dict[str, Any], ev: list[dict[str, Any]], now: datetime, m: Mapping[str, bool]
        ) -> dict[str, Any]:
            return {
                "conditions": [{"condition": t, "held": bool(f(p, ev, now, m))} for t, f in parts.items()]
            }

        deps = in_segment_ids(seg.text)
        return Compiled(
            text=seg.text or name,
            predicate=seg.py,
            checked=seg.sql,
            dependencies=deps,
            windows=windows,
            calendar=calendar,
            continuous=Verdict(
                seg.streaming, "" if seg.streaming else "profile attribute from batch data only"
            ),
            synchronous=Verdict(seg.streaming, "" if seg.streaming else "not edge eligible"),
            explain=explain if parts else None,
        )

    def batch_query(
        self,
        con: Any,
        table: str,
        rows: Sequence[tuple[str, dict[str, Any], list[dict[str, Any]]]],
        segments: Mapping[str, Compiled],
        now: datetime,
        memberships: Mapping[str, set[str]],
    ) -> Iterable[tuple[str, dict[str, bool]]]:
        con.execute("CREATE OR REPLACE TABLE p (profile_id VARCHAR, country VARCHAR, vip BOOLEAN)")
        con.execute(
            "CREATE OR REPLACE TABLE e (profile_id VARCHAR, ts TIMESTAMPTZ, type VARCHAR, value DOUBLE)"
        )
        con.execute("CREATE OR REPLACE TABLE m (profile_id VARCHAR, segment_id VARCHAR)")
        con.executemany(
            "INSERT INTO p VALUES (?, ?, ?)",
            [(pid, (a.get("homeAddress") or {}).get("countryCode"), a.get("vip")) for pid, a, _ in rows]
            or [],
        )
        ev_rows = [(pid, ts(e), e["eventType"], e.get("value")) for pid, _, evs in rows for e in evs]
        if ev_rows:
            con.executemany("INSERT INTO e VALUES (?, ?, ?, ?)", ev_rows)
        m_rows = [(pid, sid) for sid, pids in memberships.items() for pid in pids]
        if m_rows:
            con.executemany("INSERT INTO m VALUES (?, ?)", m_rows)
        cols = ", ".join(f'({c.checked}) AS "{sid}"' for sid, c in segments.items())
        if not rows:
            return []
        sql = f"SELECT profile_id, {cols} FROM p"
        cur = con.execute(sql, {"now": now}) if "$now" in sql else con.execute(sql)
        return [
            (r[0], {sid: bool(v) for sid, v in zip(segments, r[1:], strict=True)}) for r in cur.fetchall()
        ]


class FakeIdentity:
    """A graph as a dict: profile id → member identities."""

    def __init__(self) -> None:
        self.graph: dict[str, list[Identity]] = {}

    def members(self, pid: str, store: PointStore | None = None) -> list[Identity]:
        return list(self.graph.get(pid, []))

    def member_columns(self, profile_ids: Iterable[str] = ()) -> tuple[list[str], list[str], list[str]]:
        rows = [(pid, m.namespace, m.id) for pid, members in self.graph.items() for m in members]
        return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]

    def profile_id_of(self, identity: Identity, store: PointStore | None = None) -> str:
        for pid, members in self.graph.items():
            if identity in members:
                return pid
        return f"{identity.namespace}:{identity.id}"


class FakeProfiles:
    def __init__(self, sandbox: FakeSandbox) -> None:
        self.sb = sandbox

    def prefetch_events(self, store: Any, members: Any) -> None:
        """Nothing to read ahead: the fake keeps events in memory."""

    def events_for_members(
        self,
        members: Sequence[Identity],
        store: PointStore | None = None,
        *,
        limit: int | None = None,
        since: datetime | None = None,
    ) -> list[dict[str, Any]]:
        store = store or self.sb.store
        rows = []
        for ident in members:
            for k, raw in store.scan("events", key(ident.namespace, ident.id, "")):
                rows.append((k.split(KEY_SEP)[2], orjson.loads(raw)))
        found = [r for _, r in sorted(rows, key=lambda x: x[0])]
        if since is not None:  # the fake's keys hold the timestamp text: compare parsed times
            found = [r for r in found if parse_time(r["timestamp"]) >= since]
        return found[:limit]

    PROFILE_ATTRIBUTES_PATH = "$.attributes"
    EVENT_RECORD_PATH = "$"  # the fake stores the record itself

    def profile_documents(self, chunk: int = 100_000) -> Iterator[pa.Table]:
        rows = list(self.sb.store.scan("profiles"))
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            yield pa.table({"profile_id": [k for k, _ in part], "doc": [raw.decode() for _, raw in part]})

    def event_documents(self, store: PointStore | None = None, chunk: int = 100_000) -> Iterator[pa.Table]:
        # key: namespace, id, ISO time, event id; ordered like events_for_members (time, then id)
        rows = list((store or self.sb.store).scan("events"))
        for start in range(0, len(rows), chunk):
            part = [(k.split(KEY_SEP), raw) for k, raw in rows[start : start + chunk]]
            yield pa.table(
                {
                    "owner": [key(p[0], p[1]) for p, _ in part],
                    "ts": pa.array(
                        [
                            int(datetime.fromisoformat(p[2].replace("Z", "+00:00")).timestamp() * 1000)
                            for p, _ in part
                        ],
                        pa.int64(),
                    ),
                    "tiebreak": [p[3] for p, _ in part],
                    "doc": [raw.decode() for _, raw in part],
                }
            )

    def scan_profiles(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for k, raw in self.sb.store.scan("profiles"):
            yield k, orjson.loads(raw)

    def refresh(self, store: PointStore, profile_ids: Iterable[str], now: datetime) -> None:
        """Nothing to re-merge: the fake's profile documents are written by the tests."""

    def stored_document(self, pid: str, store: PointStore | None = None) -> dict[str, Any] | None:
        store = store or self.sb.store
        raw = store.get("profiles", pid)
        if raw is None:
            return None
        doc: dict[str, Any] = orjson.loads(raw)
        doc["segmentMembership"] = self.sb.segments.memberships_of(pid, store)
        return doc

    def count(self) -> int:
        return self.sb.store.count("profiles")


class FakeSandbox:
    """The parts of ``tessera.platform.Sandbox`` the segment service uses."""

    def __init__(
        self, folder: Path, engine: Any = None, store: PointStore | None = None, schemas: Any = None
    ) -> None:
        from tessera.segments import SegmentService

        if schemas is not None:
            self.schemas = schemas  # the real schema service: PQL is checked and compiled to SQL

        self.name = "prod"
        self.folder = folder
        self.store: PointStore = store or MemoryStore()
        self.write_lock = threading.RLock()
        self.identity = FakeIdentity()
        self.profiles = FakeProfiles(self)
        self.ingested: list[tuple[str, list[dict[str, Any]]]] = []
        self.ingest = self
        if engine == "pql":  # the service's own engine: tessera.pql checked against ``schemas``
            self.segments = SegmentService(self)  # type: ignore[arg-type]
        else:
            self.segments = SegmentService(self, engine or FakeEngine())  # type: ignore[arg-type]

    def begin(self) -> StagedStore:
        return StagedStore(self.store)

    def ingest_records(self, dataset: str, records: Iterable[dict[str, Any]]) -> dict[str, Any]:
        self.ingested.append((dataset, list(records)))
        return {}

    # -- what the ingestion flow does, in one chunk --------------------------------------------------
    def put(
        self,
        pid: str,
        *,
        identities: Sequence[Identity] | None = None,
        attributes: dict[str, Any] | None = None,
        events: Sequence[dict[str, Any]] = (),
        now: datetime,
        primary: Identity | None = None,
    ) -> Any:
        idents = list(identities or self.identity.graph.get(pid) or [Identity("CRMID", pid)])
        self.identity.graph[pid] = idents
        with self.write_lock:
            staged = self.begin()
            raw = staged.get("profiles", pid)
            doc = (
                orjson.loads(raw)
                if raw
                else {
                    "profileId": pid,
                    "attributes": {},
                    "primary": (primary or idents[0]).to_json(),
                    "identities": [i.to_json() for i in idents],
                }
            )
            if attributes:
                doc["attributes"].update(attributes)
            wb = WriteBatch().put_json("profiles", pid, doc)
            sample.put(wb, pid)
            for n, e in enumerate(events):
                anchor = idents[0]
                wb.put_json(
                    "events", key(anchor.namespace, anchor.id, e["timestamp"], e.get("_id", str(n))), e
                )
            staged.write(wb)
            changes = self.segments.on_change(staged, {pid}, now)
            staged.commit()
        return changes

    def relink(
        self,
        graph: dict[str, list[Identity]],
        touched: set[str],
        now: datetime,
        attributes: Mapping[str, dict[str, Any]] | None = None,
    ) -> Any:
        """Replace the identity graph (a merge or a split) and re-evaluate the touched profiles."""
        with self.write_lock:
            staged = self.begin()
            for pid in touched:
                if pid not in graph:
                    self.identity.graph.pop(pid, None)
                    wb = WriteBatch().delete("profiles", pid)
                    sample.delete(wb, pid)
                    staged.write(wb)
            for pid, members in graph.items():
                self.identity.graph[pid] = members
                doc = {
                    "profileId": pid,
                    "attributes": dict((attributes or {}).get(pid, {})),
                    "primary": members[0].to_json(),
                    "identities": [i.to_json() for i in members],
                }
                wb = WriteBatch().put_json("profiles", pid, doc)
                sample.put(wb, pid)
                staged.write(wb)
            changes = self.segments.on_change(staged, touched, now)
            staged.commit()
        return changes


def event(eid: str, when: datetime, etype: str = "purchase", value: float = 0.0) -> dict[str, Any]:
    return {"_id": eid, "timestamp": format_time(when), "eventType": etype, "value": value}


def standard_schemas(folder: Path) -> Any:
    """The schema service of a real sandbox with the standard Tessera schemas (for PQL checks)."""
    from tessera.platform import Platform

    platform = Platform.open(folder)
    sandbox = platform.sandbox()
    sandbox.schemas.ensure_standard_schemas()
    return sandbox.schemas


def definition(
    name: str, expr: str, *, continuous: bool = True, batch: bool = True, synchronous: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "expression": {"type": "PQL", "format": "pql/text", "value": expr},
        "evaluationInfo": {
            "batch": {"enabled": batch},
            "continuous": {"enabled": continuous},
            "synchronous": {"enabled": synchronous},
        },
    }


def ecid(n: int) -> str:
    """A valid 38-digit ECID for test number ``n``."""
    return f"{n:038d}"


def crm_record(crm_id: str, email: str, first: str = "Jane", **extra: Any) -> dict[str, Any]:
    """A CRM profile record with CRMID (primary) and Email identities."""
    record: dict[str, Any] = {
        "identityMap": {"CRMID": [{"id": crm_id, "primary": True}], "Email": [{"id": email}]},
        "person": {"name": {"firstName": first, "lastName": "Doe"}},
        "personalEmail": {"address": email},
    }
    record.update(extra)
    return record


def web_event(
    event_id: str, ecid_value: str, stamp: str, event_type: str = "web.webpagedetails.pageViews", **ids: str
) -> dict[str, Any]:
    """A web ExperienceEvent keyed by ECID, with extra identities as ``namespace=value``."""
    identity_map: dict[str, Any] = {"ECID": [{"id": ecid_value, "primary": True}]}
    for ns, value in ids.items():
        identity_map[ns] = [{"id": value}]
    return {"_id": event_id, "timestamp": stamp, "eventType": event_type, "identityMap": identity_map}
