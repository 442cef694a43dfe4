"""Python clients for the Tessera REST API: :class:`TesseraClient` and :class:`AsyncTesseraClient`.

Both cover the same operations (one method per endpoint, named after what it does), send the
API key as ``x-api-key`` and ``Authorization: Bearer``, pick the sandbox with ``x-sandbox-name``,
retry 429 and 5xx answers with exponential backoff (honouring ``Retry-After``) and raise the
matching :class:`~tessera.errors.TesseraError` subclass for error answers.

>>> client = TesseraClient("http://127.0.0.1:8000", sandbox="prod")  # doctest: +SKIP
>>> client.get_profile("alice@acme.com", "Email")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, TypeVar, cast

import httpx

from tessera.client import _calls as calls
from tessera.client._calls import Call
from tessera.client._transport import backoff, decode, default_headers, should_retry
from tessera.client.types import (
    AudienceDoc,
    BatchDoc,
    ConnectionDoc,
    ConversionDoc,
    DatasetDoc,
    EdgeResult,
    EntityDoc,
    EstimateDoc,
    ExportJobDoc,
    Health,
    MergePolicyDoc,
    NamespaceDoc,
    Paged,
    PreviewDoc,
    SandboxDoc,
    SandboxList,
    SegmentDoc,
    SegmentJobDoc,
    SegmentList,
    StreamBatchResult,
    StreamResult,
    SystemJobDoc,
)

T = TypeVar("T")


class TesseraClient:
    """Synchronous client.

    Args:
        base_url: server address, e.g. ``http://127.0.0.1:8000``.
        api_key: a key from ``tessera keys create`` (omit on an open server).
        sandbox: sandbox for every call (default: the server's ``prod``).
        retries: how many times to retry 429/5xx answers.
        backoff_s: first retry delay; doubles each time.
        timeout: seconds per request.
        transport: an ``httpx`` transport (tests pass ``httpx.MockTransport``/``WSGITransport``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        sandbox: str | None = None,
        retries: int = 3,
        backoff_s: float = 0.1,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retries = retries
        self.backoff_s = backoff_s
        self._http = httpx.Client(
            base_url=base_url, headers=default_headers(api_key, sandbox), timeout=timeout, transport=transport
        )

    def send(self, call: Call[T]) -> T:
        """Send one call, retrying per :func:`~tessera.client._transport.should_retry`."""
        attempt = 0
        while True:
            response = self._http.request(
                call.method,
                call.path,
                params=call.params,
                json=call.json,
                content=call.content,
                headers=dict(call.headers),
            )
            if attempt < self.retries and should_retry(call.method, response.status_code):
                time.sleep(backoff(attempt, self.backoff_s, response.headers.get("retry-after")))
                attempt += 1
                continue
            return call.parse(decode(response))

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any endpoint not wrapped by a method: ``params``, ``json``, ``content``, ``headers``."""
        return self.send(Call(method, path, **kwargs))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TesseraClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- operations (generated from one table; keep both classes in step) --
    def health(self) -> Health:
        return cast("Health", self.send(calls.health()))

    def ready(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.ready()))

    def settings(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.settings()))

    def stats(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.stats()))

    def simulate(
        self,
        text: str,
        unique: list[str] | None = None,
        priority: list[str] | None = None,
        limit: int | None = 50,
        validate: bool = False,
    ) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.simulate(text, unique, priority, limit, validate)))

    def list_sandboxes(self) -> SandboxList:
        return cast("SandboxList", self.send(calls.list_sandboxes()))

    def create_sandbox(self, name: str, title: str | None = None, kind: str = "development") -> SandboxDoc:
        return cast("SandboxDoc", self.send(calls.create_sandbox(name, title, kind)))

    def get_sandbox(self, name: str) -> SandboxDoc:
        return cast("SandboxDoc", self.send(calls.get_sandbox(name)))

    def delete_sandbox(self, name: str) -> SandboxDoc:
        return cast("SandboxDoc", self.send(calls.delete_sandbox(name)))

    def create_dataset(
        self, name: str, schema_id: str, *, profile: bool = True, identity: bool = True, upsert: bool = False
    ) -> str:
        return self.send(
            calls.create_dataset(name, schema_id, profile=profile, identity=identity, upsert=upsert)
        )

    def list_datasets(
        self, limit: int = 50, start: int = 0, name: str | None = None
    ) -> dict[str, DatasetDoc]:
        return cast("dict[str, DatasetDoc]", self.send(calls.list_datasets(limit, start, name)))

    def get_dataset(self, dataset_id: str) -> DatasetDoc:
        return cast("DatasetDoc", self.send(calls.get_dataset(dataset_id)))

    def patch_dataset(self, dataset_id: str, changes: Mapping[str, Any]) -> list[str]:
        return cast("list[str]", self.send(calls.patch_dataset(dataset_id, changes)))

    def delete_dataset(self, dataset_id: str) -> list[str]:
        return cast("list[str]", self.send(calls.delete_dataset(dataset_id)))

    def list_batches(
        self, dataset_id: str | None = None, status: str | None = None, limit: int = 50
    ) -> dict[str, BatchDoc]:
        return cast("dict[str, BatchDoc]", self.send(calls.list_batches(dataset_id, status, limit)))

    def get_batch(self, batch_id: str) -> BatchDoc:
        return cast("BatchDoc", self.send(calls.get_batch(batch_id)))

    def create_batch(self, dataset_id: str, fmt: str = "json") -> BatchDoc:
        return cast("BatchDoc", self.send(calls.create_batch(dataset_id, fmt)))

    def upload_file(self, batch_id: str, dataset_id: str, file_name: str, data: bytes) -> None:
        return cast("None", self.send(calls.upload_file(batch_id, dataset_id, file_name, data)))

    def initialize_file(self, batch_id: str, dataset_id: str, file_name: str) -> None:
        return cast("None", self.send(calls.initialize_file(batch_id, dataset_id, file_name)))

    def upload_chunk(self, batch_id: str, dataset_id: str, file_name: str, offset: int, data: bytes) -> None:
        return cast("None", self.send(calls.upload_chunk(batch_id, dataset_id, file_name, offset, data)))

    def complete_file(self, batch_id: str, dataset_id: str, file_name: str) -> None:
        return cast("None", self.send(calls.complete_file(batch_id, dataset_id, file_name)))

    def complete_batch(self, batch_id: str) -> None:
        return cast("None", self.send(calls.batch_action(batch_id, "COMPLETE")))

    def abort_batch(self, batch_id: str) -> None:
        return cast("None", self.send(calls.batch_action(batch_id, "ABORT")))

    def revert_batch(self, batch_id: str) -> None:
        return cast("None", self.send(calls.batch_action(batch_id, "REVERT")))

    def create_connection(
        self, name: str, *, data_type: str = "xdm", dataset_id: str | None = None
    ) -> ConnectionDoc:
        return cast(
            "ConnectionDoc",
            self.send(calls.create_connection(name, data_type=data_type, dataset_id=dataset_id)),
        )

    def get_connection(self, connection_id: str) -> ConnectionDoc:
        return cast("ConnectionDoc", self.send(calls.get_connection(connection_id)))

    def send_message(
        self, inlet_id: str, message: Mapping[str, Any], sync_validation: bool = False
    ) -> StreamResult:
        return cast("StreamResult", self.send(calls.send_message(inlet_id, message, sync_validation)))

    def send_messages(self, inlet_id: str, messages: list[Mapping[str, Any]]) -> StreamBatchResult:
        return cast("StreamBatchResult", self.send(calls.send_messages(inlet_id, messages)))

    def list_merge_policies(self, limit: int = 20, **filters: Any) -> Paged:
        return cast("Paged", self.send(calls.list_merge_policies(limit, **filters)))

    def get_merge_policy(self, policy_id: str) -> MergePolicyDoc:
        return cast("MergePolicyDoc", self.send(calls.get_merge_policy(policy_id)))

    def create_merge_policy(self, body: Mapping[str, Any]) -> MergePolicyDoc:
        return cast("MergePolicyDoc", self.send(calls.create_merge_policy(body)))

    def replace_merge_policy(self, policy_id: str, body: Mapping[str, Any]) -> MergePolicyDoc:
        return cast("MergePolicyDoc", self.send(calls.replace_merge_policy(policy_id, body)))

    def patch_merge_policy(
        self, policy_id: str, op: Mapping[str, Any] | list[Mapping[str, Any]]
    ) -> MergePolicyDoc:
        return cast("MergePolicyDoc", self.send(calls.patch_merge_policy(policy_id, op)))

    def delete_merge_policy(self, policy_id: str) -> None:
        return cast("None", self.send(calls.delete_merge_policy(policy_id)))

    def bulk_get_merge_policies(self, ids: list[str]) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.bulk_get_merge_policies(ids)))

    def get_profile(
        self,
        entity_id: str,
        namespace: str | None = None,
        *,
        fields: list[str] | None = None,
        merge_policy_id: str | None = None,
    ) -> dict[str, EntityDoc]:
        return cast(
            "dict[str, EntityDoc]",
            self.send(
                calls.get_profile(entity_id, namespace, fields=fields, merge_policy_id=merge_policy_id)
            ),
        )

    def get_events(
        self,
        entity_id: str,
        namespace: str | None = None,
        *,
        limit: int = 1000,
        orderby: str = "timestamp",
        start_time: int | None = None,
        end_time: int | None = None,
        start: str | None = None,
    ) -> Paged:
        return cast(
            "Paged",
            self.send(
                calls.get_events(
                    entity_id,
                    namespace,
                    limit=limit,
                    orderby=orderby,
                    start_time=start_time,
                    end_time=end_time,
                    start=start,
                )
            ),
        )

    def get_profiles(
        self, identities: list[tuple[str, str]], fields: list[str] | None = None
    ) -> dict[str, EntityDoc]:
        return cast("dict[str, EntityDoc]", self.send(calls.get_profiles(identities, fields)))

    def delete_profile(self, entity_id: str, namespace: str) -> None:
        return cast("None", self.send(calls.delete_profile(entity_id, namespace)))

    def get_xid(self, namespace: str, value: str) -> str:
        return self.send(calls.get_xid(namespace, value))

    def cluster_members(
        self, *, xid: str | None = None, namespace: str | None = None, value: str | None = None
    ) -> dict[str, Any]:
        return cast(
            "dict[str, Any]", self.send(calls.cluster_members(xid=xid, namespace=namespace, value=value))
        )

    def clusters_members(
        self, xids: list[str] | None = None, composite: list[Mapping[str, Any]] | None = None
    ) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.clusters_members(xids, composite)))

    def cluster_history(
        self, *, xid: str | None = None, namespace: str | None = None, value: str | None = None
    ) -> dict[str, Any]:
        return cast(
            "dict[str, Any]", self.send(calls.cluster_history(xid=xid, namespace=namespace, value=value))
        )

    def mapping(self, namespace: str, value: str, target_namespace: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.mapping(namespace, value, target_namespace)))

    def list_namespaces(self) -> list[NamespaceDoc]:
        return cast("list[NamespaceDoc]", self.send(calls.list_namespaces()))

    def get_namespace(self, code_or_id: str | int) -> NamespaceDoc:
        return cast("NamespaceDoc", self.send(calls.get_namespace(code_or_id)))

    def create_namespace(self, code: str, name: str, id_type: str, description: str = "") -> NamespaceDoc:
        return cast("NamespaceDoc", self.send(calls.create_namespace(code, name, id_type, description)))

    def explain_link(self, from_identity: str, to_identity: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.explain_link(from_identity, to_identity)))

    def list_classes(self, container: str = "global") -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.list_classes(container)))

    def list_field_groups(self, container: str = "tenant") -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.list_field_groups(container)))

    def create_field_group(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.create_field_group(body)))

    def list_schemas(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.list_schemas()))

    def get_schema(self, schema_id: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.get_schema(schema_id)))

    def create_schema(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.create_schema(body)))

    def get_union(self, union_id: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.get_union(union_id)))

    def list_segments(self, limit: int = 100, start: int = 0, **filters: Any) -> SegmentList:
        return cast("SegmentList", self.send(calls.list_segments(limit, start, **filters)))

    def get_segment(self, segment_id: str) -> SegmentDoc:
        return cast("SegmentDoc", self.send(calls.get_segment(segment_id)))

    def create_segment(self, body: Mapping[str, Any]) -> SegmentDoc:
        return cast("SegmentDoc", self.send(calls.create_segment(body)))

    def patch_segment(self, segment_id: str, ops: list[Mapping[str, Any]]) -> SegmentDoc:
        return cast("SegmentDoc", self.send(calls.patch_segment(segment_id, ops)))

    def delete_segment(self, segment_id: str) -> None:
        self.send(calls.delete_segment(segment_id))

    def bulk_get_segments(self, ids: list[str]) -> dict[str, SegmentDoc]:
        return cast("dict[str, SegmentDoc]", self.send(calls.bulk_get_segments(ids)))

    def convert_expression(
        self, value: str | Mapping[str, Any], fmt: str = "pql/text", **body: Any
    ) -> ConversionDoc:
        return cast("ConversionDoc", self.send(calls.convert_expression(value, fmt, **body)))

    def run_segment_job(self, segment_ids: list[str]) -> SegmentJobDoc:
        return cast("SegmentJobDoc", self.send(calls.run_segment_job(segment_ids)))

    def get_segment_job(self, job_id: str) -> SegmentJobDoc:
        return cast("SegmentJobDoc", self.send(calls.get_segment_job(job_id)))

    def list_segment_jobs(self, limit: int = 100, start: int = 0, status: str | None = None) -> Paged:
        return cast("Paged", self.send(calls.list_segment_jobs(limit, start, status)))

    def cancel_segment_job(self, job_id: str) -> SegmentJobDoc:
        return cast("SegmentJobDoc", self.send(calls.cancel_segment_job(job_id)))

    def create_preview(self, expression: str, fmt: str = "pql/text", graph_type: str = "pdg") -> PreviewDoc:
        return cast("PreviewDoc", self.send(calls.create_preview(expression, fmt, graph_type)))

    def get_preview(self, preview_id: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.get_preview(preview_id, limit, offset)))

    def get_estimate(self, preview_id: str) -> EstimateDoc:
        return cast("EstimateDoc", self.send(calls.get_estimate(preview_id)))

    def delete_preview(self, preview_id: str) -> None:
        self.send(calls.delete_preview(preview_id))

    def explain_segment(
        self, segment_id: str, entity_id: str, namespace: str | None = None
    ) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.explain_segment(segment_id, entity_id, namespace)))

    def edge_evaluate(
        self,
        event: Mapping[str, Any] | None = None,
        *,
        identity: Mapping[str, str] | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> EdgeResult:
        return cast("EdgeResult", self.send(calls.edge_evaluate(event, identity=identity, profile=profile)))

    def list_schedules(self) -> Paged:
        return cast("Paged", self.send(calls.list_schedules()))

    def create_schedule(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.create_schedule(body)))

    def get_schedule(self, schedule_id: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.get_schedule(schedule_id)))

    def patch_schedule(self, schedule_id: str, ops: list[Mapping[str, Any]]) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.patch_schedule(schedule_id, ops)))

    def delete_schedule(self, schedule_id: str) -> None:
        self.send(calls.delete_schedule(schedule_id))

    def create_export(self, body: Mapping[str, Any]) -> ExportJobDoc:
        return cast("ExportJobDoc", self.send(calls.create_export(body)))

    def get_export(self, export_id: str) -> ExportJobDoc:
        return cast("ExportJobDoc", self.send(calls.get_export(export_id)))

    def list_exports(self, limit: int = 100, offset: int = 0, status: str | None = None) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.list_exports(limit, offset, status)))

    def delete_export(self, export_id: str) -> None:
        self.send(calls.delete_export(export_id))

    def list_audiences(self, limit: int = 100, start: int = 0, name: str | None = None) -> Paged:
        return cast("Paged", self.send(calls.list_audiences(limit, start, name)))

    def get_audience(self, audience_id: str) -> AudienceDoc:
        return cast("AudienceDoc", self.send(calls.get_audience(audience_id)))

    def create_audience(self, body: Mapping[str, Any]) -> AudienceDoc:
        return cast("AudienceDoc", self.send(calls.create_audience(body)))

    def replace_audience(self, audience_id: str, body: Mapping[str, Any]) -> AudienceDoc:
        return cast("AudienceDoc", self.send(calls.replace_audience(audience_id, body)))

    def set_audience_state(self, audience_id: str, state: str) -> AudienceDoc:
        return cast("AudienceDoc", self.send(calls.set_audience_state(audience_id, state)))

    def delete_audience(self, audience_id: str) -> None:
        self.send(calls.delete_audience(audience_id))

    def bulk_get_audiences(self, ids: list[str]) -> dict[str, AudienceDoc]:
        return cast("dict[str, AudienceDoc]", self.send(calls.bulk_get_audiences(ids)))

    def list_computed_attributes(self, limit: int = 20, offset: int = 0) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.list_computed_attributes(limit, offset)))

    def get_computed_attribute(self, attribute_id: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.get_computed_attribute(attribute_id)))

    def create_computed_attribute(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.create_computed_attribute(body)))

    def set_computed_attribute_status(self, attribute_id: str, status: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.set_computed_attribute_status(attribute_id, status)))

    def delete_computed_attribute(self, attribute_id: str) -> None:
        self.send(calls.delete_computed_attribute(attribute_id))

    def delete_dataset_profile_data(self, dataset_id: str) -> SystemJobDoc:
        return cast("SystemJobDoc", self.send(calls.delete_dataset_profile_data(dataset_id)))

    def delete_event_batch(self, batch_id: str) -> SystemJobDoc:
        return cast("SystemJobDoc", self.send(calls.delete_event_batch(batch_id)))

    def list_system_jobs(self, limit: int = 100, start: int = 0) -> Paged:
        return cast("Paged", self.send(calls.list_system_jobs(limit, start)))

    def get_system_job(self, job_id: str) -> SystemJobDoc:
        return cast("SystemJobDoc", self.send(calls.get_system_job(job_id)))

    def delete_system_job(self, job_id: str) -> None:
        self.send(calls.delete_system_job(job_id))

    def create_privacy_jobs(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.create_privacy_jobs(body)))

    def list_privacy_jobs(self, regulation: str | None = None, status: str | None = None) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.list_privacy_jobs(regulation, status)))

    def get_privacy_job(self, job_id: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self.send(calls.get_privacy_job(job_id)))


class AsyncTesseraClient:
    """Asynchronous client; same arguments and methods as :class:`TesseraClient`, awaited."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        sandbox: str | None = None,
        retries: int = 3,
        backoff_s: float = 0.1,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retries = retries
        self.backoff_s = backoff_s
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=default_headers(api_key, sandbox), timeout=timeout, transport=transport
        )

    async def send(self, call: Call[T]) -> T:
        """Send one call, retrying per :func:`~tessera.client._transport.should_retry`."""
        attempt = 0
        while True:
            response = await self._http.request(
                call.method,
                call.path,
                params=call.params,
                json=call.json,
                content=call.content,
                headers=dict(call.headers),
            )
            if attempt < self.retries and should_retry(call.method, response.status_code):
                await asyncio.sleep(backoff(attempt, self.backoff_s, response.headers.get("retry-after")))
                attempt += 1
                continue
            return call.parse(decode(response))

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any endpoint not wrapped by a method: ``params``, ``json``, ``content``, ``headers``."""
        return await self.send(Call(method, path, **kwargs))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncTesseraClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- operations --
    async def health(self) -> Health:
        return cast("Health", await self.send(calls.health()))

    async def ready(self) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.ready()))

    async def settings(self) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.settings()))

    async def stats(self) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.stats()))

    async def simulate(
        self,
        text: str,
        unique: list[str] | None = None,
        priority: list[str] | None = None,
        limit: int | None = 50,
        validate: bool = False,
    ) -> dict[str, Any]:
        return cast(
            "dict[str, Any]", await self.send(calls.simulate(text, unique, priority, limit, validate))
        )

    async def list_sandboxes(self) -> SandboxList:
        return cast("SandboxList", await self.send(calls.list_sandboxes()))

    async def create_sandbox(
        self, name: str, title: str | None = None, kind: str = "development"
    ) -> SandboxDoc:
        return cast("SandboxDoc", await self.send(calls.create_sandbox(name, title, kind)))

    async def get_sandbox(self, name: str) -> SandboxDoc:
        return cast("SandboxDoc", await self.send(calls.get_sandbox(name)))

    async def delete_sandbox(self, name: str) -> SandboxDoc:
        return cast("SandboxDoc", await self.send(calls.delete_sandbox(name)))

    async def create_dataset(
        self, name: str, schema_id: str, *, profile: bool = True, identity: bool = True, upsert: bool = False
    ) -> str:
        return cast(
            "str",
            await self.send(
                calls.create_dataset(name, schema_id, profile=profile, identity=identity, upsert=upsert)
            ),
        )

    async def list_datasets(
        self, limit: int = 50, start: int = 0, name: str | None = None
    ) -> dict[str, DatasetDoc]:
        return cast("dict[str, DatasetDoc]", await self.send(calls.list_datasets(limit, start, name)))

    async def get_dataset(self, dataset_id: str) -> DatasetDoc:
        return cast("DatasetDoc", await self.send(calls.get_dataset(dataset_id)))

    async def patch_dataset(self, dataset_id: str, changes: Mapping[str, Any]) -> list[str]:
        return cast("list[str]", await self.send(calls.patch_dataset(dataset_id, changes)))

    async def delete_dataset(self, dataset_id: str) -> list[str]:
        return cast("list[str]", await self.send(calls.delete_dataset(dataset_id)))

    async def list_batches(
        self, dataset_id: str | None = None, status: str | None = None, limit: int = 50
    ) -> dict[str, BatchDoc]:
        return cast("dict[str, BatchDoc]", await self.send(calls.list_batches(dataset_id, status, limit)))

    async def get_batch(self, batch_id: str) -> BatchDoc:
        return cast("BatchDoc", await self.send(calls.get_batch(batch_id)))

    async def create_batch(self, dataset_id: str, fmt: str = "json") -> BatchDoc:
        return cast("BatchDoc", await self.send(calls.create_batch(dataset_id, fmt)))

    async def upload_file(self, batch_id: str, dataset_id: str, file_name: str, data: bytes) -> None:
        return cast("None", await self.send(calls.upload_file(batch_id, dataset_id, file_name, data)))

    async def initialize_file(self, batch_id: str, dataset_id: str, file_name: str) -> None:
        return cast("None", await self.send(calls.initialize_file(batch_id, dataset_id, file_name)))

    async def upload_chunk(
        self, batch_id: str, dataset_id: str, file_name: str, offset: int, data: bytes
    ) -> None:
        return cast(
            "None", await self.send(calls.upload_chunk(batch_id, dataset_id, file_name, offset, data))
        )

    async def complete_file(self, batch_id: str, dataset_id: str, file_name: str) -> None:
        return cast("None", await self.send(calls.complete_file(batch_id, dataset_id, file_name)))

    async def complete_batch(self, batch_id: str) -> None:
        return cast("None", await self.send(calls.batch_action(batch_id, "COMPLETE")))

    async def abort_batch(self, batch_id: str) -> None:
        return cast("None", await self.send(calls.batch_action(batch_id, "ABORT")))

    async def revert_batch(self, batch_id: str) -> None:
        return cast("None", await self.send(calls.batch_action(batch_id, "REVERT")))

    async def create_connection(
        self, name: str, *, data_type: str = "xdm", dataset_id: str | None = None
    ) -> ConnectionDoc:
        return cast(
            "ConnectionDoc",
            await self.send(calls.create_connection(name, data_type=data_type, dataset_id=dataset_id)),
        )

    async def get_connection(self, connection_id: str) -> ConnectionDoc:
        return cast("ConnectionDoc", await self.send(calls.get_connection(connection_id)))

    async def send_message(
        self, inlet_id: str, message: Mapping[str, Any], sync_validation: bool = False
    ) -> StreamResult:
        return cast("StreamResult", await self.send(calls.send_message(inlet_id, message, sync_validation)))

    async def send_messages(self, inlet_id: str, messages: list[Mapping[str, Any]]) -> StreamBatchResult:
        return cast("StreamBatchResult", await self.send(calls.send_messages(inlet_id, messages)))

    async def list_merge_policies(self, limit: int = 20, **filters: Any) -> Paged:
        return cast("Paged", await self.send(calls.list_merge_policies(limit, **filters)))

    async def get_merge_policy(self, policy_id: str) -> MergePolicyDoc:
        return cast("MergePolicyDoc", await self.send(calls.get_merge_policy(policy_id)))

    async def create_merge_policy(self, body: Mapping[str, Any]) -> MergePolicyDoc:
        return cast("MergePolicyDoc", await self.send(calls.create_merge_policy(body)))

    async def replace_merge_policy(self, policy_id: str, body: Mapping[str, Any]) -> MergePolicyDoc:
        return cast("MergePolicyDoc", await self.send(calls.replace_merge_policy(policy_id, body)))

    async def patch_merge_policy(
        self, policy_id: str, op: Mapping[str, Any] | list[Mapping[str, Any]]
    ) -> MergePolicyDoc:
        return cast("MergePolicyDoc", await self.send(calls.patch_merge_policy(policy_id, op)))

    async def delete_merge_policy(self, policy_id: str) -> None:
        return cast("None", await self.send(calls.delete_merge_policy(policy_id)))

    async def bulk_get_merge_policies(self, ids: list[str]) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.bulk_get_merge_policies(ids)))

    async def get_profile(
        self,
        entity_id: str,
        namespace: str | None = None,
        *,
        fields: list[str] | None = None,
        merge_policy_id: str | None = None,
    ) -> dict[str, EntityDoc]:
        return cast(
            "dict[str, EntityDoc]",
            await self.send(
                calls.get_profile(entity_id, namespace, fields=fields, merge_policy_id=merge_policy_id)
            ),
        )

    async def get_events(
        self,
        entity_id: str,
        namespace: str | None = None,
        *,
        limit: int = 1000,
        orderby: str = "timestamp",
        start_time: int | None = None,
        end_time: int | None = None,
        start: str | None = None,
    ) -> Paged:
        return cast(
            "Paged",
            await self.send(
                calls.get_events(
                    entity_id,
                    namespace,
                    limit=limit,
                    orderby=orderby,
                    start_time=start_time,
                    end_time=end_time,
                    start=start,
                )
            ),
        )

    async def get_profiles(
        self, identities: list[tuple[str, str]], fields: list[str] | None = None
    ) -> dict[str, EntityDoc]:
        return cast("dict[str, EntityDoc]", await self.send(calls.get_profiles(identities, fields)))

    async def delete_profile(self, entity_id: str, namespace: str) -> None:
        return cast("None", await self.send(calls.delete_profile(entity_id, namespace)))

    async def get_xid(self, namespace: str, value: str) -> str:
        return await self.send(calls.get_xid(namespace, value))

    async def cluster_members(
        self, *, xid: str | None = None, namespace: str | None = None, value: str | None = None
    ) -> dict[str, Any]:
        return cast(
            "dict[str, Any]",
            await self.send(calls.cluster_members(xid=xid, namespace=namespace, value=value)),
        )

    async def clusters_members(
        self, xids: list[str] | None = None, composite: list[Mapping[str, Any]] | None = None
    ) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.clusters_members(xids, composite)))

    async def cluster_history(
        self, *, xid: str | None = None, namespace: str | None = None, value: str | None = None
    ) -> dict[str, Any]:
        return cast(
            "dict[str, Any]",
            await self.send(calls.cluster_history(xid=xid, namespace=namespace, value=value)),
        )

    async def mapping(self, namespace: str, value: str, target_namespace: str) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.mapping(namespace, value, target_namespace)))

    async def list_namespaces(self) -> list[NamespaceDoc]:
        return cast("list[NamespaceDoc]", await self.send(calls.list_namespaces()))

    async def get_namespace(self, code_or_id: str | int) -> NamespaceDoc:
        return cast("NamespaceDoc", await self.send(calls.get_namespace(code_or_id)))

    async def create_namespace(
        self, code: str, name: str, id_type: str, description: str = ""
    ) -> NamespaceDoc:
        return cast("NamespaceDoc", await self.send(calls.create_namespace(code, name, id_type, description)))

    async def explain_link(self, from_identity: str, to_identity: str) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.explain_link(from_identity, to_identity)))

    async def list_classes(self, container: str = "global") -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.list_classes(container)))

    async def list_field_groups(self, container: str = "tenant") -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.list_field_groups(container)))

    async def create_field_group(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.create_field_group(body)))

    async def list_schemas(self) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.list_schemas()))

    async def get_schema(self, schema_id: str) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.get_schema(schema_id)))

    async def create_schema(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.create_schema(body)))

    async def get_union(self, union_id: str) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.get_union(union_id)))

    async def list_segments(self, limit: int = 100, start: int = 0, **filters: Any) -> SegmentList:
        return cast("SegmentList", await self.send(calls.list_segments(limit, start, **filters)))

    async def get_segment(self, segment_id: str) -> SegmentDoc:
        return cast("SegmentDoc", await self.send(calls.get_segment(segment_id)))

    async def create_segment(self, body: Mapping[str, Any]) -> SegmentDoc:
        return cast("SegmentDoc", await self.send(calls.create_segment(body)))

    async def patch_segment(self, segment_id: str, ops: list[Mapping[str, Any]]) -> SegmentDoc:
        return cast("SegmentDoc", await self.send(calls.patch_segment(segment_id, ops)))

    async def delete_segment(self, segment_id: str) -> None:
        await self.send(calls.delete_segment(segment_id))

    async def bulk_get_segments(self, ids: list[str]) -> dict[str, SegmentDoc]:
        return cast("dict[str, SegmentDoc]", await self.send(calls.bulk_get_segments(ids)))

    async def convert_expression(
        self, value: str | Mapping[str, Any], fmt: str = "pql/text", **body: Any
    ) -> ConversionDoc:
        return cast("ConversionDoc", await self.send(calls.convert_expression(value, fmt, **body)))

    async def run_segment_job(self, segment_ids: list[str]) -> SegmentJobDoc:
        return cast("SegmentJobDoc", await self.send(calls.run_segment_job(segment_ids)))

    async def get_segment_job(self, job_id: str) -> SegmentJobDoc:
        return cast("SegmentJobDoc", await self.send(calls.get_segment_job(job_id)))

    async def list_segment_jobs(self, limit: int = 100, start: int = 0, status: str | None = None) -> Paged:
        return cast("Paged", await self.send(calls.list_segment_jobs(limit, start, status)))

    async def cancel_segment_job(self, job_id: str) -> SegmentJobDoc:
        return cast("SegmentJobDoc", await self.send(calls.cancel_segment_job(job_id)))

    async def create_preview(
        self, expression: str, fmt: str = "pql/text", graph_type: str = "pdg"
    ) -> PreviewDoc:
        return cast("PreviewDoc", await self.send(calls.create_preview(expression, fmt, graph_type)))

    async def get_preview(self, preview_id: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.get_preview(preview_id, limit, offset)))

    async def get_estimate(self, preview_id: str) -> EstimateDoc:
        return cast("EstimateDoc", await self.send(calls.get_estimate(preview_id)))

    async def delete_preview(self, preview_id: str) -> None:
        await self.send(calls.delete_preview(preview_id))

    async def explain_segment(
        self, segment_id: str, entity_id: str, namespace: str | None = None
    ) -> dict[str, Any]:
        return cast(
            "dict[str, Any]", await self.send(calls.explain_segment(segment_id, entity_id, namespace))
        )

    async def edge_evaluate(
        self,
        event: Mapping[str, Any] | None = None,
        *,
        identity: Mapping[str, str] | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> EdgeResult:
        return cast(
            "EdgeResult", await self.send(calls.edge_evaluate(event, identity=identity, profile=profile))
        )

    async def list_schedules(self) -> Paged:
        return cast("Paged", await self.send(calls.list_schedules()))

    async def create_schedule(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.create_schedule(body)))

    async def get_schedule(self, schedule_id: str) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.get_schedule(schedule_id)))

    async def patch_schedule(self, schedule_id: str, ops: list[Mapping[str, Any]]) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.patch_schedule(schedule_id, ops)))

    async def delete_schedule(self, schedule_id: str) -> None:
        await self.send(calls.delete_schedule(schedule_id))

    async def create_export(self, body: Mapping[str, Any]) -> ExportJobDoc:
        return cast("ExportJobDoc", await self.send(calls.create_export(body)))

    async def get_export(self, export_id: str) -> ExportJobDoc:
        return cast("ExportJobDoc", await self.send(calls.get_export(export_id)))

    async def list_exports(
        self, limit: int = 100, offset: int = 0, status: str | None = None
    ) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.list_exports(limit, offset, status)))

    async def delete_export(self, export_id: str) -> None:
        await self.send(calls.delete_export(export_id))

    async def list_audiences(self, limit: int = 100, start: int = 0, name: str | None = None) -> Paged:
        return cast("Paged", await self.send(calls.list_audiences(limit, start, name)))

    async def get_audience(self, audience_id: str) -> AudienceDoc:
        return cast("AudienceDoc", await self.send(calls.get_audience(audience_id)))

    async def create_audience(self, body: Mapping[str, Any]) -> AudienceDoc:
        return cast("AudienceDoc", await self.send(calls.create_audience(body)))

    async def replace_audience(self, audience_id: str, body: Mapping[str, Any]) -> AudienceDoc:
        return cast("AudienceDoc", await self.send(calls.replace_audience(audience_id, body)))

    async def set_audience_state(self, audience_id: str, state: str) -> AudienceDoc:
        return cast("AudienceDoc", await self.send(calls.set_audience_state(audience_id, state)))

    async def delete_audience(self, audience_id: str) -> None:
        await self.send(calls.delete_audience(audience_id))

    async def bulk_get_audiences(self, ids: list[str]) -> dict[str, AudienceDoc]:
        return cast("dict[str, AudienceDoc]", await self.send(calls.bulk_get_audiences(ids)))

    async def list_computed_attributes(self, limit: int = 20, offset: int = 0) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.list_computed_attributes(limit, offset)))

    async def get_computed_attribute(self, attribute_id: str) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.get_computed_attribute(attribute_id)))

    async def create_computed_attribute(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.create_computed_attribute(body)))

    async def set_computed_attribute_status(self, attribute_id: str, status: str) -> dict[str, Any]:
        return cast(
            "dict[str, Any]", await self.send(calls.set_computed_attribute_status(attribute_id, status))
        )

    async def delete_computed_attribute(self, attribute_id: str) -> None:
        await self.send(calls.delete_computed_attribute(attribute_id))

    async def delete_dataset_profile_data(self, dataset_id: str) -> SystemJobDoc:
        return cast("SystemJobDoc", await self.send(calls.delete_dataset_profile_data(dataset_id)))

    async def delete_event_batch(self, batch_id: str) -> SystemJobDoc:
        return cast("SystemJobDoc", await self.send(calls.delete_event_batch(batch_id)))

    async def list_system_jobs(self, limit: int = 100, start: int = 0) -> Paged:
        return cast("Paged", await self.send(calls.list_system_jobs(limit, start)))

    async def get_system_job(self, job_id: str) -> SystemJobDoc:
        return cast("SystemJobDoc", await self.send(calls.get_system_job(job_id)))

    async def delete_system_job(self, job_id: str) -> None:
        await self.send(calls.delete_system_job(job_id))

    async def create_privacy_jobs(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.create_privacy_jobs(body)))

    async def list_privacy_jobs(
        self, regulation: str | None = None, status: str | None = None
    ) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.list_privacy_jobs(regulation, status)))

    async def get_privacy_job(self, job_id: str) -> dict[str, Any]:
        return cast("dict[str, Any]", await self.send(calls.get_privacy_job(job_id)))
