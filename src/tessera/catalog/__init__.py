"""The catalog: sandboxes, datasets and batches (schemas live in ``tessera.xdm``)."""

from tessera.catalog.datasets import Batches, Datasets, identity_enabled, profile_enabled, upsert_enabled
from tessera.catalog.ids import new_id
from tessera.catalog.sandboxes import DEFAULT_SANDBOX, SandboxRegistry

__all__ = [
    "DEFAULT_SANDBOX",
    "Batches",
    "Datasets",
    "SandboxRegistry",
    "identity_enabled",
    "new_id",
    "profile_enabled",
    "upsert_enabled",
]
