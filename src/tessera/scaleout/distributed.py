"""The platform as one of several processes on shared backends (Redis point store, Kafka stream).

:class:`DistributedPlatform` is the :class:`~tessera.platform.Platform` every ``tessera serve``
API process and ``tessera worker`` process opens when the settings select the Redis point store:

* each sandbox it opens gets a :class:`~tessera.scaleout.coordination.SandboxCoordinator`
  (per-sandbox Redis write lock, write epochs, re-open when another process wrote);
* in an API process with ``kafka_bootstrap`` set, streaming collection goes through
  :class:`PublishingIngest`: a message is checked (envelope, dataset, schema, size, identities),
  published to the topic, and acknowledged only after the broker acknowledged it. The workers
  apply it through the platform's streaming flow (:mod:`tessera.scaleout.platform_worker`).

:func:`api_app` is the uvicorn factory ``tessera serve --workers N`` runs in each API process.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

from tessera.catalog import DEFAULT_SANDBOX
from tessera.catalog.ids import epoch_ms
from tessera.errors import InvalidInput, NotFound
from tessera.flow import RowRejected
from tessera.ingest.service import IngestService
from tessera.platform import Platform
from tessera.scaleout.coordination import SandboxCoordinator, coordinate
from tessera.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from tessera.platform import Sandbox
    from tessera.scaleout.stream import EventPublisher

Role = Literal["api", "worker"]


def require_distributed(settings: Settings, what: str) -> None:
    """Refuse to run several processes on the embedded SQLite point store.

    Raises:
        InvalidInput: ``point_store`` is ``sqlite``.
    """
    if not settings.distributed:
        raise InvalidInput(
            f"{what} needs the distributed backends: processes cannot share the embedded SQLite "
            'point store. Set point_store = "redis" (and redis_url, kafka_bootstrap) in a settings '
            "file (--settings FILE or TESSERA_SETTINGS); see docs/scaling.md",
            path="point_store",
        )


def encode_message(sandbox: str, dataset_id: str, record: dict[str, Any], msg_id: str) -> bytes:
    """The topic payload of one accepted streaming message."""
    return orjson.dumps({"sandbox": sandbox, "datasetId": dataset_id, "record": record, "id": msg_id})


class PublishingIngest(IngestService):
    """Streaming ingestion of an API process: check, publish, answer after the broker's ack.

    Batch ingestion and inlets behave as in :class:`IngestService` (they write the shared store).
    """

    def __init__(self, sandbox: Sandbox, publisher: EventPublisher) -> None:
        super().__init__(sandbox)
        self._publisher = publisher

    def stream(self, messages: list[Any], *, dataset_id: str | None = None) -> list[dict[str, Any]]:
        """Same answers as :meth:`IngestService.stream`, but an accepted message is *published*
        (durable in the topic) rather than applied; ``xactionId`` is its message id.

        Raises:
            ServiceError: the broker did not acknowledge (the API answers 503; the client retries).
        """
        from tessera.ingest.envelope import MessageError, parse_request

        sandbox = self._sandbox
        parsed = parse_request(messages, dataset_id=dataset_id).messages
        results: list[dict[str, Any]] = [{} for _ in parsed]
        items: list[tuple[str | bytes | None, bytes, str | None]] = []
        slots: list[int] = []
        datasets: dict[str, dict[str, Any] | NotFound] = {}
        for i, item in enumerate(parsed):
            if isinstance(item, MessageError):
                results[i] = item.to_json()
                continue
            dataset = datasets.get(item.dataset_id)
            if dataset is None:
                try:
                    dataset = datasets[item.dataset_id] = sandbox.datasets.get(item.dataset_id)
                except NotFound as err:
                    dataset = datasets[item.dataset_id] = err
            if isinstance(dataset, NotFound):
                results[i] = {"statusCode": 404, "message": dataset.message}
                continue
            try:
                key = precheck(sandbox, dataset, item.record)
            except RowRejected as rej:
                results[i] = {"statusCode": 400, "message": rej.message, "path": rej.path}
                continue
            msg_id = f"{item.dataset_id}-{epoch_ms()}-{uuid.uuid4().hex[:12]}"
            items.append((key, encode_message(sandbox.name, item.dataset_id, item.record, msg_id), msg_id))
            slots.append(i)
        if items:
            for slot, acked in zip(slots, self._publisher.publish_many(items), strict=True):
                results[slot] = {"xactionId": acked.id}
        return results


def precheck(sandbox: Sandbox, dataset: dict[str, Any], record: Any) -> str:
    """The stateless checks of the streaming flow, so an API process refuses a bad message at once.

    Returns the routing key (the record's first identity). The worker runs the full flow again;
    only what cannot change between now and then (shape, schema, size, identity syntax) is checked.

    Raises:
        RowRejected: what :func:`tessera.flow.process_chunk` would refuse the record for.
    """
    if not isinstance(record, dict):
        raise RowRejected("TYPE", f"a record must be a JSON object, got {type(record).__name__}")
    plan = sandbox.schemas.ingest_plan(dataset["schemaRef"]["id"])
    settings = sandbox.settings
    limit = settings.max_event_bytes if plan.is_event else settings.max_profile_record_bytes
    normalised = plan.normalize(record)
    size = len(orjson.dumps(normalised))
    if size > limit:
        kind = "ExperienceEvent" if plan.is_event else "profile record"
        raise RowRejected("SIZE", f"{kind} is {size} bytes; the limit is {limit} bytes")
    problems = plan.validate(normalised)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise RowRejected("SCHEMA", problems[0].message + more, problems[0].path)
    identities, primary = plan.identities(normalised, dataset.get("identitySource"))
    if not identities:
        raise RowRejected("IDENTITY", "the record carries no identity (identityMap or identity field)")
    first = primary or identities[0]
    return str(first)


class DistributedPlatform(Platform):
    """A platform process sharing Redis (and, for streaming, a Kafka topic) with other processes.

    Args:
        settings: must select ``point_store = "redis"``.
        role: ``api`` publishes streaming collection (when ``kafka_bootstrap`` is set);
            ``worker`` applies it.

    Raises:
        InvalidInput: the settings select the embedded SQLite point store.
    """

    def __init__(self, settings: Settings, *, role: Role = "api") -> None:
        require_distributed(settings, "a multi-process deployment")
        super().__init__(settings)
        self.role: Role = role
        self.coordinators: dict[str, SandboxCoordinator] = {}
        self._publisher: EventPublisher | None = None

    def publisher(self) -> EventPublisher:
        """The (lazily connected) producer of this process."""
        from tessera.scaleout.stream import EventPublisher, ensure_topic

        if self._publisher is None:
            s = self.settings
            ensure_topic(s.kafka_bootstrap, s.stream_topic, s.stream_partitions)
            self._publisher = EventPublisher(s.kafka_bootstrap, s.stream_topic)
        return self._publisher

    def _new_sandbox(self, name: str) -> Sandbox:
        # Coordinated before anything runs on it, its timers included.
        sandbox = super()._new_sandbox(name)
        try:
            self.coordinators[name] = coordinate(sandbox, ttl_s=self.settings.sandbox_lock_ttl_s)
            if self.role == "api" and self.settings.kafka_bootstrap:
                sandbox.ingest = PublishingIngest(sandbox, self.publisher())
        except BaseException:
            sandbox.close()
            raise
        return sandbox

    def _start_sandbox(self, sandbox: Sandbox) -> None:
        """Start the sandbox's timers, which run under its cross-process timer lease.

        Unlike the embedded platform, interrupted work is not settled here: a batch still
        ``processing`` or a job still running may belong to another live process, and resuming or
        failing it from this one would apply it twice or fail it under its runner.
        """
        sandbox.start_timers()

    def refresh_if_stale(self, name: str, *, config_only: bool = False) -> None:
        """Before serving a request: re-open the sandbox if another process wrote to it
        (``config_only``: only if its configuration changed)."""
        coordinator = self.coordinators.get(name)
        if coordinator is not None:
            coordinator.refresh_if_stale(config_only=config_only)

    def delete_sandbox(self, name: str) -> None:
        self.coordinators.pop(name, None)
        super().delete_sandbox(name)

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None
        super().close()


def create_distributed_app(platform: DistributedPlatform) -> FastAPI:
    """The REST API over a distributed platform: every request first catches up on other
    processes' writes to its sandbox (one Redis round trip when there were none)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response

    from tessera.api.app import create_app

    app = create_app(platform)

    @app.middleware("http")
    async def catch_up(request: Request, call_next: Any) -> Response:
        name = request.headers.get("x-sandbox-name") or DEFAULT_SANDBOX
        if name in platform.coordinators:
            # Collection only publishes: it needs current schemas and datasets, not the graph.
            collect = request.url.path.startswith("/collection/")
            await run_in_threadpool(platform.refresh_if_stale, name, config_only=collect)
        response: Response = await call_next(request)
        return response

    return app


def api_app() -> FastAPI:
    """uvicorn factory of one API process (settings from ``TESSERA_SETTINGS`` / environment)."""
    platform = DistributedPlatform(Settings.from_env(), role="api")
    app = create_distributed_app(platform)
    if not platform.settings.kafka_bootstrap:
        # No topic, so no workers: API processes apply writes themselves and run the timers too
        # (each round by one process, under the sandbox's timer lease).
        app.router.on_startup.append(platform.start_background)
    app.router.on_shutdown.append(platform.close)
    return app


def serve_api(settings: Settings, *, workers: int, settings_file: str | Path | None = None) -> None:
    """Run ``workers`` API processes on ``settings.host:settings.port`` (uvicorn's supervisor).

    Each process opens its own :class:`DistributedPlatform` from the same settings; the kernel
    spreads connections over them. Timers (segment windows, schedules, webhook deliveries) run in
    the ``tessera worker`` processes; without ``kafka_bootstrap`` (no workers) the API processes
    run them. Either way each round runs in one process, under the sandbox's timer lease.

    Raises:
        InvalidInput: the settings select the embedded SQLite point store.
        UnsafeBind: a non-loopback host while no API key exists.
    """
    import os

    import uvicorn

    from tessera.api.server import check_bind

    require_distributed(settings, f"tessera serve --workers {workers}")
    probe = Platform(settings)  # the system store (API keys) is per installation home
    try:
        check_bind(probe, settings.host)
    finally:
        probe.close()
    if settings_file is not None:
        os.environ["TESSERA_SETTINGS"] = str(Path(settings_file).resolve())
    os.environ["TESSERA_HOME"] = str(Path(settings.home).resolve())
    uvicorn.run(
        "tessera.scaleout.distributed:api_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )
