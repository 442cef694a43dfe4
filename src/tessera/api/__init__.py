"""The REST API: the reference platform's paths and shapes over a :class:`~tessera.platform.Platform`."""

from tessera.api.app import create_app
from tessera.api.keys import create_key, list_keys, revoke_key
from tessera.api.server import run_server

__all__ = ["create_app", "create_key", "list_keys", "revoke_key", "run_server"]
