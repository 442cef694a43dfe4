"""API keys: created once, stored hashed, each scoped to a list of sandboxes.

A key looks like ``tsk_<id>_<secret>``. Only ``sha256(salt + secret)`` is stored (table
``api_keys`` of the installation's system store), with a random salt per key; verification looks
the record up by ``id`` and compares digests with :func:`hmac.compare_digest`. The secret has 256
bits of entropy, so a fast salted hash is enough (a password hash like scrypt protects *low*
entropy secrets and would cost milliseconds on every request).

The scope ``["*"]`` means every sandbox, including ones created later, and allows managing
sandboxes. Keys created from another process (``tessera keys create``) are seen by a running
server at once: the server reads the table on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from tessera.catalog.ids import epoch_ms
from tessera.errors import InvalidInput, NotFound
from tessera.store import PointStore, WriteBatch, get_json, scan_json

API_KEYS = "api_keys"
ALL_SANDBOXES = "*"
_TOKEN = re.compile(r"^tsk_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})$")
_DUMMY_SALT = secrets.token_bytes(16)


@dataclass(frozen=True)
class ApiKey:
    """A verified key: who it is and which sandboxes it may use."""

    id: str
    name: str
    sandboxes: tuple[str, ...]

    def allows(self, sandbox: str) -> bool:
        """Whether this key may act on ``sandbox``.

        >>> ApiKey("k", "", ("dev",)).allows("prod")
        False
        >>> ApiKey("k", "", ("*",)).allows("prod")
        True
        """
        return ALL_SANDBOXES in self.sandboxes or sandbox in self.sandboxes

    @property
    def is_admin(self) -> bool:
        return ALL_SANDBOXES in self.sandboxes


def _digest(salt: bytes, secret: str) -> str:
    return hashlib.sha256(salt + secret.encode()).hexdigest()


def create_key(store: PointStore, sandboxes: list[str], name: str = "") -> tuple[str, dict[str, Any]]:
    """Create a key and return ``(token, record)``; the token is shown only this once.

    Args:
        store: the installation's system store (``platform.system``).
        sandboxes: sandbox names the key may use, or ``["*"]`` for all.
        name: a label for people (``"ci"``, ``"alice laptop"``).

    Raises:
        InvalidInput: when ``sandboxes`` is empty.
    """
    scope = sorted({s.strip() for s in sandboxes if s.strip()})
    if not scope:
        raise InvalidInput("A key needs at least one sandbox (or '*' for all)", path="sandboxes")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    record = {"id": key_id, "name": name, "sandboxes": scope, "created": epoch_ms()}
    stored = {**record, "salt": salt.hex(), "hash": _digest(salt, secret)}
    store.write(WriteBatch().put_json(API_KEYS, key_id, stored))
    return f"tsk_{key_id}_{secret}", record


def list_keys(store: PointStore) -> list[dict[str, Any]]:
    """Every key's id, name, sandboxes and creation time (never hashes)."""
    return [
        {k: v for k, v in doc.items() if k not in {"salt", "hash"}} for _, doc in scan_json(store, API_KEYS)
    ]


def revoke_key(store: PointStore, key_id: str) -> None:
    """Delete a key; requests carrying it are refused from now on.

    Raises:
        NotFound: when no key has that id.
    """
    if get_json(store, API_KEYS, key_id) is None:
        raise NotFound(f"No API key with id {key_id!r}", path="id")
    store.write(WriteBatch().delete(API_KEYS, key_id))


def has_keys(store: PointStore) -> bool:
    """Whether any key exists (then every request must carry one)."""
    return store.count(API_KEYS) > 0


def verify_key(store: PointStore, token: str) -> ApiKey | None:
    """The key ``token`` belongs to, or ``None`` when it is malformed, unknown or wrong."""
    match = _TOKEN.match(token)
    doc = get_json(store, API_KEYS, match.group(1)) if match else None
    if doc is None or match is None:
        # Spend the same work as a real check so timing does not reveal which ids exist.
        hmac.compare_digest(_digest(_DUMMY_SALT, token), _digest(_DUMMY_SALT, ""))
        return None
    if not hmac.compare_digest(_digest(bytes.fromhex(doc["salt"]), match.group(2)), doc["hash"]):
        return None
    return ApiKey(doc["id"], doc.get("name", ""), tuple(doc["sandboxes"]))
