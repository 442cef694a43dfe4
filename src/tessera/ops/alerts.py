"""Graph-health alerts: identity graphs that grow too large, identities that link too many others.

Both are signs of bad identity data (a shared device, a placeholder e-mail such as
``unknown@example.com``, a test CRM id) collapsing many people into one profile. The identity
service hands every graph it rewrites to :func:`check_components`, in the same commit, so
checking costs only the graphs that changed. An alert is recorded once per (kind, subject)
and updated when it is seen again: ``alerts`` table, one document per alert, plus a warning
log line and the ``tessera_graph_alerts_total`` counter the first time.

Settings: ``alert_graph_size`` (identities per graph) and ``alert_junk_links`` (distinct
identities one identity is linked to); 0 turns a check off.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from tessera.catalog.ids import epoch_ms
from tessera.ops import metrics
from tessera.store import PointStore, WriteBatch, get_json, key, scan_json

if TYPE_CHECKING:
    from tessera.identity.graph import IdentityRow, LinkRow
    from tessera.platform import Sandbox

ALERTS = "alerts"
GRAPH_SIZE = "graph_size"
JUNK_IDENTITY = "junk_identity"
log = logging.getLogger("tessera.alerts")


def _degrees(links: Iterable[LinkRow]) -> Counter[tuple[str, str]]:
    seen: set[tuple[tuple[str, str], tuple[str, str]]] = set()
    degree: Counter[tuple[str, str]] = Counter()
    for link in links:
        a, b = (link.ns_a, link.id_a), (link.ns_b, link.id_b)
        pair = (a, b) if a <= b else (b, a)
        if pair in seen or a == b:
            continue
        seen.add(pair)
        degree[a] += 1
        degree[b] += 1
    return degree


def check_components(
    sandbox: Sandbox,
    store: PointStore,
    wb: WriteBatch,
    components: Sequence[tuple[str, Sequence[IdentityRow], Sequence[LinkRow]]],
) -> list[dict[str, Any]]:
    """Record alerts for the changed ``components`` ``(profile id, members, links)`` into ``wb``.

    Returns the alerts raised for the first time by this call.
    """
    size_limit = sandbox.settings.alert_graph_size
    junk_limit = sandbox.settings.alert_junk_links
    if size_limit <= 0 and junk_limit <= 0:
        return []
    found: list[tuple[str, str, dict[str, Any]]] = []
    for pid, members, links in components:
        if 0 < size_limit <= len(members):
            found.append((GRAPH_SIZE, pid, {"profileId": pid, "size": len(members), "threshold": size_limit}))
        if junk_limit > 0 and len(links) >= junk_limit:
            for (ns, value), degree in _degrees(links).items():
                if degree >= junk_limit:
                    found.append(
                        (
                            JUNK_IDENTITY,
                            f"{ns}:{value}",
                            {
                                "identity": {"namespace": ns, "id": value},
                                "profileId": pid,
                                "links": degree,
                                "threshold": junk_limit,
                            },
                        )
                    )
    raised: list[dict[str, Any]] = []
    now = epoch_ms()
    for kind, subject, detail in found:
        alert_key = key(kind, subject)
        old = get_json(store, ALERTS, alert_key)
        doc = {
            "kind": kind,
            "subject": subject,
            **detail,
            "firstSeen": old["firstSeen"] if old else now,
            "lastSeen": now,
            "count": (old["count"] + 1) if old else 1,
        }
        wb.put_json(ALERTS, alert_key, doc)
        if old is None:
            raised.append(doc)
            metrics.record_alert(sandbox.name, kind)
            log.warning(
                "graph-health alert %s on %s in sandbox %s",
                kind,
                subject,
                sandbox.name,
                extra={"alert": doc, "sandbox": sandbox.name},
            )
    return raised


def list_alerts(store: PointStore, kind: str | None = None) -> list[dict[str, Any]]:
    """Every recorded alert (of ``kind`` when given), most recently seen first."""
    prefix = key(kind, "") if kind else ""
    rows = [doc for _, doc in scan_json(store, ALERTS, prefix)]
    rows.sort(key=lambda d: (-int(d["lastSeen"]), d["kind"], d["subject"]))
    return rows


def clear_alert(store: PointStore, kind: str, subject: str) -> bool:
    """Forget one alert (after the data was fixed); whether it existed."""
    alert_key = key(kind, subject)
    if store.get(ALERTS, alert_key) is None:
        return False
    store.write(WriteBatch().delete(ALERTS, alert_key))
    return True


def alert_counts(store: PointStore) -> dict[str, int]:
    """How many alerts of each kind are recorded (``/tessera/stats``)."""
    return {kind: store.count(ALERTS, key(kind, "")) for kind in (GRAPH_SIZE, JUNK_IDENTITY)}
