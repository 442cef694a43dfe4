"""Unified profile: fragments, merge policies and the merge itself (``spec/aep.md`` §d).

The modules here are pure (no I/O): the store and lookup service build on them.
"""

from tessera.profile.fragments import (
    Event,
    Fragment,
    apply_record,
    apply_upsert,
    fragments_as_of,
    version_at,
)
from tessera.profile.merge import MergedView, combine_events, merge, stitched_identities
from tessera.profile.policies import MergePolicy, MergePolicyBook, SandboxRef

__all__ = [
    "Event",
    "Fragment",
    "MergePolicy",
    "MergePolicyBook",
    "MergedView",
    "SandboxRef",
    "apply_record",
    "apply_upsert",
    "combine_events",
    "fragments_as_of",
    "merge",
    "stitched_identities",
    "version_at",
]
