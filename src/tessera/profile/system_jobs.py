"""Profile system jobs (``spec/aep.md`` §b9): delete a dataset's Profile data, or one event batch.

A request names either ``dataSetId`` (every fragment and event the dataset brought into Profile)
or ``batchId`` (the events of one batch; record batches overwrite each other, so the reference
refuses them and so does Tessera with a 422 that says to re-ingest instead). The deletion runs
before the answer, so the returned job is already ``COMPLETED``; its ``metrics`` are a JSON
string, as in the reference.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from tessera.catalog.ids import epoch_ms, new_id
from tessera.errors import InvalidInput, NotFound, SemanticError, TesseraError
from tessera.store import WriteBatch, get_json, scan_json

if TYPE_CHECKING:
    from tessera.platform import Sandbox

JOBS = "profile_system_jobs"
STATES = ("NEW", "PROCESSING", "COMPLETED", "ERROR")


class SystemJobs:
    """Create, read, list and forget profile system jobs of one sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def _is_event_dataset(self, dataset: Mapping[str, Any]) -> bool:
        try:
            return bool(self._sandbox.schemas.ingest_plan(dataset["schemaRef"]["id"]).is_event)
        except (KeyError, TypeError, TesseraError):
            return False

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Run a delete job for ``{"dataSetId": …}`` or ``{"batchId": …}`` and return it.

        Raises:
            InvalidInput: neither or both ids, or an id that is not a string.
            NotFound: unknown dataset or batch.
            SemanticError: ``batchId`` of a record (profile) dataset.
        """
        dataset_id, batch_id = body.get("dataSetId"), body.get("batchId")
        if (dataset_id is None) == (batch_id is None):
            raise InvalidInput("Give exactly one of dataSetId and batchId", path="body")
        now = epoch_ms()
        job: dict[str, Any] = {
            "id": new_id(),
            "imsOrgId": "",
            "jobType": "DELETE",
            "status": "PROCESSING",
            "createEpoch": now // 1000,
            "updateEpoch": now // 1000,
            "creationTime": now,
        }
        profiles = self._sandbox.profiles
        if dataset_id is not None:
            if not isinstance(dataset_id, str) or not dataset_id:
                raise InvalidInput("dataSetId must be a non-empty string", path="dataSetId")
            self._sandbox.datasets.get(dataset_id)
            job["dataSetId"] = dataset_id
            removed = profiles.delete_dataset_data(dataset_id)
        else:
            if not isinstance(batch_id, str) or not batch_id:
                raise InvalidInput("batchId must be a non-empty string", path="batchId")
            batch = self._sandbox.batches.get(batch_id)
            related = batch.get("relatedObjects") or [{}]
            try:
                dataset: dict[str, Any] | None = self._sandbox.datasets.get(str(related[0].get("id", "")))
            except NotFound:
                dataset = None
            if dataset is not None and not self._is_event_dataset(dataset):
                raise SemanticError(
                    "Batches of record (profile) datasets cannot be deleted one by one: they "
                    "overwrite each other. Delete the dataset's Profile data or re-ingest instead",
                    path="batchId",
                )
            job["batchId"] = batch_id
            removed = profiles.delete_event_batch(batch_id)
        done = epoch_ms()
        job.update(
            status="COMPLETED",
            updateEpoch=done // 1000,
            metrics=orjson.dumps(
                {"deletedRecordCount": removed, "startTimeInMs": now, "endTimeInMs": done}
            ).decode(),
        )
        self._sandbox.store.write(WriteBatch().put_json(JOBS, job["id"], job))
        return job

    def get(self, job_id: str) -> dict[str, Any]:
        doc = get_json(self._sandbox.store, JOBS, job_id)
        if doc is None:
            raise NotFound(f"Profile system job {job_id!r} does not exist", path="id")
        return dict(doc)

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every job, newest first."""
        docs = [doc for _, doc in scan_json(self._sandbox.store, JOBS)]
        return sorted(docs, key=lambda d: (d["creationTime"], d["id"]), reverse=True)

    def delete(self, job_id: str) -> None:
        """Forget a job (its deletions stay done)."""
        self.get(job_id)
        self._sandbox.store.write(WriteBatch().delete(JOBS, job_id))
