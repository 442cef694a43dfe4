"""Errors of the scale-out package."""

from __future__ import annotations

from tessera.errors import SemanticError, StorageError


class ServiceError(StorageError):
    """A backing service (Redis, the broker, Spark) is missing, down or refused an operation."""

    code = "TESSERA-1504-503"
    title = "Backing service unavailable"


class MissingExtra(SemanticError):
    """An optional dependency is not installed; the message names the ``pip install`` line."""

    code = "TESSERA-1423-422"
    title = "Optional dependency missing"


__all__ = ["MissingExtra", "ServiceError"]
