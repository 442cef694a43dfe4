"""Batch jobs build the PQL relation straight from the stored documents: the same relation, value
for value, as converting every profile to Python rows — identities stitched across datasets,
events stored under different identities of one person, ties in time, people with no events."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from tessera import Platform, pql
from tessera.segments.stored_profiles import StoredProfiles

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def _person(n: int) -> dict[str, Any]:
    return {
        "identityMap": {
            "CRMID": [{"id": f"crm-{n}", "primary": True}],
            "Email": [{"id": f"p{n}@example.com"}],
        },
        "person": {"name": {"firstName": f"P{n}"}},
        "homeAddress": {"countryCode": "US" if n % 2 else "FR"},
    }


def _event(n: int, k: int, ident: str, ts: str) -> dict[str, Any]:
    ns, value = ident.split(":", 1)
    return {
        "_id": f"ev-{n}-{k}",
        "timestamp": ts,
        "eventType": "commerce.purchases" if k % 2 else "web.webpagedetails.pageViews",
        "commerce": {"order": {"priceTotal": float(k)}},
        "identityMap": {ns: [{"id": value, "primary": True}]},
    }


def _relation(con: Any, table: str) -> list[tuple[Any, ...]]:
    return con.execute(f'SELECT * FROM "{table}" ORDER BY profile_id').fetchall()


def test_relation_from_documents_equals_relation_from_rows(tmp_path: Path) -> None:
    with Platform.open(tmp_path / "home") as platform:
        sb = platform.sandbox()
        schemas = sb.schemas.ensure_standard_schemas()
        crm = sb.datasets.create("CRM", schemas["profile"])
        web = sb.datasets.create("Web", schemas["event"])
        app = sb.datasets.create("App", schemas["event"])
        sb.ingest.stream([_person(n) for n in range(12)], dataset_id=crm["id"])
        events = []
        for n in range(10):  # persons 10 and 11 have no events
            for k in range(n % 4):
                ident = f"Email:p{n}@example.com" if k % 2 else f"CRMID:crm-{n}"
                events.append(_event(n, k, ident, f"2024-05-{10 + k:02d}T10:00:00Z"))
        sb.ingest.stream(events, dataset_id=web["id"])
        # same instant, another dataset: the tie is broken the same way by both builds
        sb.ingest.stream([_event(3, 9, "CRMID:crm-3", "2024-05-10T10:00:00Z")], dataset_id=app["id"])
        # an anonymous visitor, a profile of its own
        sb.ingest.stream([_event(99, 1, "ECID:" + "7" * 38, "2024-05-20T08:00:00Z")], dataset_id=web["id"])

        service = sb.segments
        profile_schema, event_schema = service._union_schemas()
        assert profile_schema is not None and event_schema is not None
        profile_schema = dict(profile_schema)
        profile_schema["properties"] = {
            k: v for k, v in profile_schema["properties"].items() if k != "segmentMembership"
        }
        stored = service.batch_input(NOW)
        assert isinstance(stored, StoredProfiles)
        con = duckdb.connect()
        loaded = stored.load_relation(con, "from_docs", profile_schema, event_schema)
        pql.load_relation(con, "from_rows", profile_schema, event_schema, service.rows(NOW))
        from_docs, from_rows = _relation(con, "from_docs"), _relation(con, "from_rows")
        assert loaded == len(from_rows) == 13
        assert from_docs == from_rows
        by_id = {r[0]: r for r in from_docs}
        assert sum(len(r[2]) for r in from_docs) == len(events) + 2
        assert any(len(r[2]) == 0 for r in from_docs)  # no events: an empty list, not null
        assert set(stored.namespaces().values()) == {"CRMID", "ECID"}
        assert len(by_id) == 13


NEW_FORMS = {
    "by_type": 'xEvent.groupBy(eventType).map((K, G) => mapEntry(K, G.count())).get("commerce.purchases") >= 1',
    "pairs": "(sum X.commerce.order.priceTotal + Y.commerce.order.priceTotal over X from xEvent, "
    "Y from xEvent where Y.timestamp occurs < 2 days after X.timestamp) > 2",
    "next_day": "exists X from xEvent, Y from xEvent where Y.timestamp occurs = 1 days after X.timestamp",
    "home": 'homeAddress[countryCode = "US"]',
    "lambda": '(P) => P.person.name.firstName.startsWith("P1")',
}


def test_batch_job_over_stored_documents_agrees_with_the_evaluator(tmp_path: Path) -> None:
    """Segments using the forms the SQL compiler renders itself (grouped maps, several variables,
    occurs relative to another event, object filters, lambdas) give the same members through a
    real batch job as the streaming evaluator gives profile by profile."""
    with Platform.open(tmp_path / "home") as platform:
        sb = platform.sandbox()
        schemas = sb.schemas.ensure_standard_schemas()
        crm = sb.datasets.create("CRM", schemas["profile"])
        web = sb.datasets.create("Web", schemas["event"])
        sb.ingest.stream([_person(n) for n in range(12)], dataset_id=crm["id"])
        events = [
            _event(n, k, f"CRMID:crm-{n}", f"2024-05-{10 + k + n % 2:02d}T10:00:00Z")
            for n in range(12)
            for k in range(n % 4)
        ]
        sb.ingest.stream(events, dataset_id=web["id"])
        service = sb.segments
        docs = {
            name: service.create(
                {
                    "name": name,
                    "expression": {"type": "PQL", "format": "pql/text", "value": text},
                    "evaluationInfo": {"batch": {"enabled": True}, "continuous": {"enabled": False}},
                }
            )
            for name, text in NEW_FORMS.items()
        }
        job = service.run_job(None, now=NOW)
        assert job["status"] == "SUCCEEDED"
        counts = job["metrics"]["segmentedProfileCounter"]
        for name, doc in docs.items():
            compiled = service.definitions.compile(doc)
            expected = {
                pid for pid, attrs, evs in service.rows(NOW) if compiled.predicate(attrs, evs, NOW, {})
            }
            members = {
                pid for pid in expected if service.memberships_of(pid).get(doc["id"], {}).get("status")
            }
            assert counts[doc["id"]] == len(expected), name
            assert members == expected, name
        assert all(counts[d["id"]] > 0 for d in docs.values())  # each form selects someone
