"""Segmentation: definitions, streaming/batch/edge evaluation, memberships, jobs, schedules,
previews and estimates, explanations and computed attributes."""

from __future__ import annotations

from tessera.segments.engine import Compiled, Engine, PqlEngine, Verdict
from tessera.segments.memberships import Change
from tessera.segments.service import SegmentService, estimate_size

__all__ = ["Change", "Compiled", "Engine", "PqlEngine", "SegmentService", "Verdict", "estimate_size"]
