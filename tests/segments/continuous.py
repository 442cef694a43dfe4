"""Helpers for streaming tests on a real sandbox: continuous segments and a profile's status."""

from __future__ import annotations

from tessera.platform import Sandbox


def create_continuous(sb: Sandbox, name: str, expr: str) -> str:
    """Create a continuous (streaming) segment; returns its id."""
    doc = sb.segments.create(
        {
            "name": name,
            "expression": {"type": "PQL", "format": "pql/text", "value": expr},
            "evaluationInfo": {"continuous": {"enabled": True}},
        }
    )
    return str(doc["id"])


def status(sb: Sandbox, pid: str, sid: str) -> str | None:
    """The profile's membership status in the segment, or None when it has no record."""
    rec = sb.segments.memberships_of(pid).get(sid)
    return None if rec is None else str(rec["status"])
