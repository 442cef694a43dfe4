"""Errors specific to the schema registry (subclasses of the shared tree)."""

from __future__ import annotations

from tessera.errors import Conflict


class BreakingSchemaChange(Conflict):
    """A change to a Profile-enabled schema (or a field group it uses) that is not additive.

    Once a schema is enabled for Profile only additive changes are allowed (``spec/aep.md``
    §a10): fields, field groups and identity descriptors may be added, never removed, retyped
    or narrowed.
    """

    code = "TESSERA-1110-409"
    title = "Breaking schema change"


__all__ = ["BreakingSchemaChange"]
