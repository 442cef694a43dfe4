"""Operations endpoints: Prometheus metrics and graph-health alerts.

``GET /metrics`` follows the gateway's rules like every data route: open on a server without
keys (loopback only), and on a keyed server it needs a key scoped to all sandboxes (``*``),
because the exposition carries every sandbox's labels (dataset ids, destination ids).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from tessera.api.deps import PlatformDep, SandboxDep, ok, op
from tessera.api.errors import JsonResponse
from tessera.ops import alerts, metrics
from tessera.platform import Sandbox

router = APIRouter(tags=["Tessera"])
METRICS_EXAMPLE = (
    "# HELP tessera_ingested_records_total Records and events stored, by sandbox, dataset and kind.\n"
    "# TYPE tessera_ingested_records_total counter\n"
    'tessera_ingested_records_total{dataset="5c8c3c555033b814b69f947f",kind="streaming",sandbox="prod"} 42.0\n'
)


@router.get(
    "/metrics",
    summary="Prometheus metrics (needs an all-sandbox key on a keyed server)",
    responses={
        200: {
            "description": "Prometheus text exposition",
            "content": {"text/plain": {"example": METRICS_EXAMPLE}},
        },
        **{code: doc for code, doc in op(None, errors=())["responses"].items() if code in (401, 403, 429)},
    },
    response_class=Response,
)
async def prometheus(platform: PlatformDep) -> Response:
    """Ingestion and rejects, graph sizes, segment job durations, destination lag, HTTP latencies."""
    body = await run_in_threadpool(metrics.render, platform)
    return Response(body, media_type=metrics.CONTENT_TYPE)


ALERT_EXAMPLE = {
    "alerts": [
        {
            "kind": "junk_identity",
            "subject": "Email:unknown@example.com",
            "identity": {"namespace": "Email", "id": "unknown@example.com"},
            "profileId": "p-1",
            "links": 25,
            "threshold": 20,
            "firstSeen": 1700000000000,
            "lastSeen": 1700000000000,
            "count": 1,
        }
    ],
    "thresholds": {"graphSize": 40, "junkLinks": 20},
}


@router.get("/tessera/alerts", **op(ALERT_EXAMPLE, errors=(400, 404)), summary="Graph-health alerts")
def list_alerts(
    sandbox: SandboxDep,
    kind: Annotated[str | None, Query(description="graph_size or junk_identity")] = None,
) -> JsonResponse:
    """Identity graphs past ``alert_graph_size`` and identities linked to ``alert_junk_links`` others."""
    return ok({"alerts": alerts.list_alerts(sandbox.store, kind), "thresholds": thresholds(sandbox)})


def thresholds(sandbox: Sandbox) -> dict[str, int]:
    return {"graphSize": sandbox.settings.alert_graph_size, "junkLinks": sandbox.settings.alert_junk_links}
