"""Privacy jobs: access and delete requests for a person, by one or more identities.

Shaped like the reference Privacy Service (``spec/aep.md`` §a7, §b15): a request lists users,
each with ``action`` (``access``, ``delete``) and ``userIDs``; ``include`` names the products
(``ProfileService`` removes fragments and events, ``identity`` removes identities and links);
``expandIds`` widens each user to every identity of their graph, so a whole person is handled
even when the request names only one of their identifiers.

A delete leaves nothing of the person in the sandbox's tables: fragments and all their
versions, events and their indexes, graph components, materialised profiles and memberships.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from tessera.catalog.ids import epoch_ms, new_id
from tessera.errors import InvalidInput, NotFound
from tessera.model import Identity, utcnow
from tessera.profile.service import EVENTS, FRAGMENTS, id_key
from tessera.store import WriteBatch, get_json, key, scan_json

if TYPE_CHECKING:
    from tessera.platform import Sandbox

JOBS = "privacy_jobs"
PRODUCTS = ("ProfileService", "identity", "aepDataLake")


def parse_users(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Validate the ``users`` of a privacy request; returns them with parsed identities."""
    users = body.get("users")
    if not isinstance(users, list) or not users:
        raise InvalidInput("A privacy request needs a non-empty 'users' array", path="users")
    parsed = []
    for i, user in enumerate(users):
        where = f"users[{i}]"
        if not isinstance(user, dict):
            raise InvalidInput("each user must be an object", path=where)
        actions = user.get("action", user.get("actions"))
        if isinstance(actions, str):
            actions = [actions]
        if (
            not isinstance(actions, list)
            or not actions
            or any(a not in ("access", "delete") for a in actions)
        ):
            raise InvalidInput("action must list 'access' and/or 'delete'", path=f"{where}.action")
        ids = user.get("userIDs")
        if not isinstance(ids, list) or not ids:
            raise InvalidInput("userIDs must be a non-empty array", path=f"{where}.userIDs")
        identities = []
        for j, uid in enumerate(ids):
            if (
                not isinstance(uid, dict)
                or not isinstance(uid.get("namespace"), str)
                or not isinstance(uid.get("value"), str)
            ):
                raise InvalidInput(
                    "each user id needs a string namespace and value", path=f"{where}.userIDs[{j}]"
                )
            identities.append(Identity(uid["namespace"], uid["value"]))
        parsed.append(
            {"key": str(user.get("key", f"user-{i + 1}")), "action": actions, "identities": identities}
        )
    return parsed


class PrivacyService:
    """Run privacy jobs against one sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def _resolve_namespace(self, code: str) -> str:
        for ns in self._sandbox.identity.namespaces():
            if ns.code.lower() == code.lower() or (ns.id is not None and str(ns.id) == code):
                return ns.code
        return code

    def run(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Process a privacy request synchronously; one job document per user."""
        include = body.get("include", ["ProfileService", "identity"])
        if not isinstance(include, list) or any(p not in PRODUCTS for p in include):
            raise InvalidInput(f"include must list products among {', '.join(PRODUCTS)}", path="include")
        expand = bool(body.get("expandIds", False))
        jobs = []
        for user in parse_users(body):
            identities = [Identity(self._resolve_namespace(i.namespace), i.id) for i in user["identities"]]
            job: dict[str, Any] = {
                "jobId": new_id(),
                "customer": {"user": {"key": user["key"], "action": user["action"]}},
                "regulation": body.get("regulation", "gdpr"),
                "include": include,
                "expandIds": expand,
                "status": "processing",
                "createdAt": epoch_ms(),
                "sandbox": self._sandbox.name,
            }
            targets = self._expand(identities) if expand else identities
            if "access" in user["action"]:
                job["access"] = self.access(targets)
            if "delete" in user["action"]:
                job["deleted"] = self.delete(
                    targets, profile="ProfileService" in include, graph="identity" in include
                )
                self._redact_access_results(targets, job["jobId"])
            job["status"] = "complete"
            job["completedAt"] = epoch_ms()
            self._sandbox.store.write(WriteBatch().put_json(JOBS, job["jobId"], job))
            jobs.append(job)
        if any("deleted" in job for job in jobs):
            # deleted rows must not live on in a store's write-ahead log either
            purge = getattr(self._sandbox.store, "purge_log", None)
            if purge is not None:
                purge()
        return jobs

    def get(self, job_id: str) -> dict[str, Any]:
        doc = get_json(self._sandbox.store, JOBS, job_id)
        if doc is None:
            raise NotFound(f"Privacy job {job_id!r} does not exist", path="jobId")
        return dict(doc)

    def _redact_access_results(self, identities: list[Identity], by_job: str) -> None:
        """Earlier access jobs hold copies of the person's data: a delete removes those too."""
        wanted = [orjson.dumps(i.to_json()) for i in identities]
        wb = WriteBatch()
        for job_id, raw in self._sandbox.store.scan(JOBS):
            if b'"access"' in raw and any(w in raw for w in wanted):
                doc = orjson.loads(raw)
                doc["access"] = {"redacted": f"removed by privacy delete job {by_job}"}
                wb.put_json(JOBS, job_id, doc)
        self._sandbox.store.write(wb)

    def _expand(self, identities: Iterable[Identity]) -> list[Identity]:
        out: dict[Identity, None] = {}
        for ident in identities:
            for member in self._sandbox.identity.cluster(ident):
                out[member] = None
        return list(out)

    def access(self, identities: Iterable[Identity]) -> dict[str, Any]:
        """Everything stored under these identities: fragments, events, graph, memberships."""
        store = self._sandbox.store
        result: dict[str, Any] = {"fragments": [], "events": [], "identities": [], "profiles": []}
        pids: set[str] = set()
        for ident in identities:
            prefix = key(id_key(ident), "")
            result["fragments"].extend(orjson.loads(raw) for _, raw in store.scan(FRAGMENTS, prefix))
            result["events"].extend(orjson.loads(raw)["record"] for _, raw in store.scan(EVENTS, prefix))
            result["identities"].append(
                {
                    "identity": ident.to_json(),
                    "graph": [m.to_json() for m in self._sandbox.identity.cluster(ident)],
                }
            )
            pids.add(self._sandbox.identity.profile_id_of(ident))
        for pid in sorted(pids):
            doc = self._sandbox.profiles.stored_document(pid, store)
            if doc is not None:
                result["profiles"].append(doc)
        return result

    def delete(
        self, identities: Iterable[Identity], *, profile: bool = True, graph: bool = True
    ) -> dict[str, int]:
        """Delete the data stored under each identity and (with ``graph``) the identity itself."""
        sb = self._sandbox
        targets = list(identities)
        counts = {"records": 0, "identities": 0}
        with sb.write_lock:
            staged = sb.begin()
            person = {sb.identity.profile_id_of(ident) for ident in targets}
            touched: set[str] = set(person)
            for ident in targets:
                if profile:
                    counts["records"] += sb.profiles.delete_identity_data(staged, ident)
                if graph and sb.identity.graph.profile_id(ident) is not None:
                    touched |= sb.identity.delete(ident)
                    counts["identities"] += 1
            sb.identity.flush(staged)
            sb.profiles.refresh(staged, touched, utcnow())
            if sb.segments is not None and hasattr(sb.segments, "forget_profiles"):
                sb.segments.forget_profiles(staged, touched)
            staged.commit()
            activation = getattr(sb.segments, "activation", None)
            if profile and activation is not None:
                # exported files and pending webhook deliveries hold copies of the person too
                counts.update(activation.forget(person, [ident.id for ident in targets]))
        return counts

    # Defined last: inside the class body the name ``list`` would shadow the builtin in annotations.
    def list(self) -> builtins.list[dict[str, Any]]:
        """Every privacy job of this sandbox, oldest first."""
        return sorted((doc for _, doc in scan_json(self._sandbox.store, JOBS)), key=lambda d: d["createdAt"])
