"""A stand-in streaming-ingestion API process: accept messages, publish, answer after the broker acks.

``POST /collection/{inletId}`` takes one message or ``{"messages": [...]}``, publishes each to the
stream keyed by its first identity (so one person's messages stay in order on one partition), and
answers ``200`` with the message ids and offsets only once the broker acknowledged all of them;
``503`` otherwise, so the sender retries (the ids make retries harmless downstream).

This is the distributed half of Tessera's AEP-shaped ``/collection`` route, kept separate so the
stream can be exercised and deployed before the main API grows a ``stream`` backend setting.
Run it with ``python -m tessera.scaleout.gateway --bootstrap HOST:PORT --topic T --port P``.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tessera.scaleout.errors import ServiceError
from tessera.scaleout.stream import EventPublisher


def routing_key(message: Any) -> str | None:
    """The first identity of a streaming message (``namespace:id``), used as the partition key.

    >>> routing_key({"body": {"xdmEntity": {"identityMap": {"Email": [{"id": "a@b.c"}]}}}})
    'Email:a@b.c'
    """
    try:
        identity_map = message["body"]["xdmEntity"]["identityMap"]
        namespace, ids = next(iter(identity_map.items()))
        return f"{namespace}:{ids[0]['id']}"
    except (KeyError, TypeError, StopIteration, IndexError):
        return None


def create_gateway(publisher: EventPublisher) -> FastAPI:
    """The gateway app over one publisher. Routes: ``POST /collection/{inletId}``, ``GET /health``."""
    app = FastAPI(title="Tessera stream gateway")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "topic": publisher.topic}

    @app.post("/collection/{inlet_id}")
    async def collect(inlet_id: str, request: Request) -> JSONResponse:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return JSONResponse({"title": "Invalid JSON", "detail": str(exc)}, status_code=400)
        messages = (
            body["messages"] if isinstance(body, dict) and isinstance(body.get("messages"), list) else [body]
        )
        items = []
        for m in messages:
            header = m.get("header", {}) if isinstance(m, dict) else {}
            msg_id = (
                str(header.get("msgId") or uuid.uuid4().hex) if isinstance(header, dict) else uuid.uuid4().hex
            )
            envelope = orjson.dumps({"inletId": inlet_id, "message": m})
            items.append((routing_key(m), envelope, msg_id))
        try:
            acked = publisher.publish_many(items)
        except ServiceError as exc:
            return JSONResponse(exc.to_json(), status_code=503)
        return JSONResponse(
            {
                "inletId": inlet_id,
                "messages": [{"id": a.id, "partition": a.partition, "offset": a.offset} for a in acked],
            }
        )

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Tessera stream gateway")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args(argv)
    uvicorn.run(
        create_gateway(EventPublisher(args.bootstrap, args.topic)),
        host=args.host,
        port=args.port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
