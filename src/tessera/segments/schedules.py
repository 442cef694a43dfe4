"""Schedules (``spec/aep.md`` §b5): Quartz cron expressions that run segment jobs or exports."""

from __future__ import annotations

import builtins
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from croniter import croniter

from tessera.errors import Conflict, InvalidInput, NotFound
from tessera.model import format_time, parse_time
from tessera.store import WriteBatch, get_json, scan_json

if TYPE_CHECKING:
    from tessera.segments.service import SegmentService

SCHEDULES = "schedules"
TYPES = ("batch_segmentation", "export")


def to_croniter(expression: str) -> str:
    """A Quartz cron (6 or 7 fields, seconds first, ``?``, 1-7 = SUN-SAT) as a croniter expression.

    Five-field Unix cron is accepted as is (seconds 0).

    >>> to_croniter("0 0 1 * * ?")
    '0 1 * * * 0'
    >>> to_croniter("0 30 2 ? * 2 2030")
    '30 2 * * 1 0'
    >>> to_croniter("15 4 * * *")
    '15 4 * * * 0'
    """
    fields = expression.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) == 7:
        fields = fields[:6]
    if len(fields) != 6:
        raise InvalidInput("schedule must be a cron expression with 5, 6 or 7 fields", path="schedule")
    sec, minute, hour, dom, month, dow = (f.replace("?", "*") for f in fields)
    if len(expression.split()) >= 6:
        dow = _quartz_dow(dow)
    out = f"{minute} {hour} {dom} {month} {dow} {sec}"
    if not croniter.is_valid(out):
        raise InvalidInput(f"schedule {expression!r} is not a valid cron expression", path="schedule")
    return out


def _quartz_dow(dow: str) -> str:
    def one(part: str) -> str:
        return str(int(part) - 1) if part.isdigit() else part

    out = []
    for item in dow.split(","):
        step = ""
        if "/" in item:
            item, step = item.split("/", 1)
            step = "/" + step
        if "-" in item:
            a, b = item.split("-", 1)
            out.append(f"{one(a)}-{one(b)}{step}")
        else:
            out.append(one(item) + step)
    return ",".join(out)


def next_run(expression: str, after: datetime) -> datetime:
    """The first time ``expression`` fires strictly after ``after`` (UTC)."""
    it = croniter(to_croniter(expression), after, ret_type=datetime)
    value: datetime = it.get_next(datetime)
    return parse_time(value)


class Schedules:
    """CRUD of schedules, run by the service's scheduler thread through :meth:`run_due`."""

    def __init__(self, service: SegmentService) -> None:
        self._service = service

    def create(self, body: Mapping[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
        kind = body.get("type")
        if kind not in TYPES:
            raise InvalidInput(f"type must be one of {', '.join(TYPES)}", path="type")
        expression = body.get("schedule")
        if not isinstance(expression, str):
            raise InvalidInput("schedule must be a Quartz cron string such as '0 0 1 * * ?'", path="schedule")
        to_croniter(expression)
        if kind == "batch_segmentation" and any(d["type"] == kind for d in self.list()):
            raise Conflict(
                "This sandbox already has a batch_segmentation schedule; change that one instead", path="type"
            )
        state = body.get("state", "inactive")
        if state not in {"active", "inactive"}:
            raise InvalidInput("state must be active or inactive", path="state")
        ms = int(time.time() * 1000)
        doc = {
            "id": str(uuid.uuid4()),
            "name": str(body.get("name", "")),
            "type": kind,
            "properties": dict(body.get("properties") or {"segments": ["*"]}),
            "schedule": expression,
            "state": state,
            "createEpoch": ms // 1000,
            "updateEpoch": ms // 1000,
        }
        self._set_next(doc, now)
        self._service.store.write(WriteBatch().put_json(SCHEDULES, doc["id"], doc))
        return doc

    def _set_next(self, doc: dict[str, Any], now: datetime | None) -> None:
        from tessera.model import utcnow

        doc["nextRunTime"] = format_time(next_run(doc["schedule"], now or utcnow()))

    def get(self, schedule_id: str) -> dict[str, Any]:
        doc = get_json(self._service.store, SCHEDULES, schedule_id)
        if doc is None:
            raise NotFound(f"Schedule {schedule_id} does not exist", path="id")
        result: dict[str, Any] = doc
        return result

    def list(self) -> builtins.list[dict[str, Any]]:
        return [doc for _, doc in scan_json(self._service.store, SCHEDULES)]

    def update(
        self, schedule_id: str, changes: Mapping[str, Any], *, now: datetime | None = None
    ) -> dict[str, Any]:
        doc = self.get(schedule_id)
        for field, value in changes.items():
            if field == "state" and value not in {"active", "inactive"}:
                raise InvalidInput("state must be active or inactive", path="state")
            if field == "schedule":
                to_croniter(str(value))
            if field not in {"state", "schedule", "name", "properties"}:
                raise InvalidInput(f"Cannot change {field}", path=field)
            doc[field] = value
        self._set_next(doc, now)
        doc["updateEpoch"] = int(time.time())
        self._service.store.write(WriteBatch().put_json(SCHEDULES, schedule_id, doc))
        return doc

    def delete(self, schedule_id: str) -> None:
        self.get(schedule_id)
        self._service.store.write(WriteBatch().delete(SCHEDULES, schedule_id))

    def run_due(self, now: datetime) -> builtins.list[str]:
        """Run every active schedule whose next run time has come; returns the job/export ids."""
        started = []
        due = [d for d in self.list() if d["state"] == "active" and parse_time(d["nextRunTime"]) <= now]
        if due:
            # a job reads every profile outside the write lock: first catch up on what other
            # processes wrote (only when something is due: the catch-up can be a full re-open)
            self._service.catch_up()
        for doc in due:
            run_id = str(uuid.uuid4())
            doc["lastRunTime"] = format_time(now)
            doc["nextRunTime"] = format_time(next_run(doc["schedule"], now))
            self._service.store.write(WriteBatch().put_json(SCHEDULES, doc["id"], doc))
            props = {"scheduleId": doc["id"], "runId": run_id}
            if doc["type"] == "batch_segmentation":
                segments = [{"segmentId": s} for s in doc["properties"].get("segments", ["*"])]
                started.append(
                    self._service.run_job(segments, now=now, source="scheduler", properties=props)["id"]
                )
            else:
                started.extend(self._service.activation.run_scheduled_export(doc, now))
        return started


__all__ = ["SCHEDULES", "Schedules", "next_run", "to_croniter"]
