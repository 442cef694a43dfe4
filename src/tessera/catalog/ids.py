"""Identifier minting. Reference-platform ids are 24 lowercase hex characters."""

from __future__ import annotations

import secrets
import time


def new_id() -> str:
    """A 24-hex-character id whose first 8 characters sort by creation second.

    >>> len(new_id())
    24
    """
    return f"{int(time.time()) & 0xFFFFFFFF:08x}{secrets.token_hex(8)}"


def epoch_ms() -> int:
    return int(time.time() * 1000)
