"""Activation: audiences, export jobs and destinations (webhook with a durable outbox, files).

>>> from tessera.activation import sign
>>> sign("secret-key", b"x").startswith("sha256=")
True
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.activation.audiences import Audiences
from tessera.activation.destinations import SIGNATURE_HEADER, Destinations, backoff, sign
from tessera.activation.exports import Exports, scrub_files

if TYPE_CHECKING:
    from tessera.platform import Sandbox
    from tessera.segments.service import SegmentService


class Activation:
    """Audiences, exports and destinations of one sandbox, wired to the segment service's changes."""

    def __init__(self, sandbox: Sandbox, segments: SegmentService) -> None:
        root = Path(getattr(sandbox, "folder", ".")) / "exports"
        self.audiences = Audiences(sandbox, segments)
        self.exports = Exports(sandbox, root)
        self.destinations = Destinations(sandbox, root / "destinations")
        segments.add_listener(self.destinations.enqueue, wants=self.destinations.activated_segments)
        segments.add_periodic(lambda now: self.destinations.deliver(now))

    def forget(self, profile_ids: set[str], identity_values: list[str]) -> dict[str, int]:
        """Privacy delete: remove these people from every export and destination file of the
        sandbox and from pending webhook deliveries."""
        return {
            "exportedRows": scrub_files(self.exports.root, profile_ids, identity_values),
            "pendingDeliveries": self.destinations.forget(profile_ids, identity_values),
        }

    def uses_segment(self, seg_id: str) -> bool:
        return self.destinations.uses_segment(seg_id)

    def run_scheduled_export(self, schedule: dict[str, Any], now: datetime) -> list[str]:
        """Run an ``export`` schedule: a file destination (``properties.destinationId``) or an export job."""
        props = schedule.get("properties") or {}
        if props.get("destinationId"):
            return [self.destinations.run_file(str(props["destinationId"]), now)["path"]]
        if props.get("exportJob"):
            return [self.exports.create(props["exportJob"])["id"]]
        return []

    def close(self) -> None:
        self.destinations.close()


__all__ = ["SIGNATURE_HEADER", "Activation", "Audiences", "Destinations", "Exports", "backoff", "sign"]
