"""The server refuses an open public bind and says when it runs open."""

from __future__ import annotations

import pytest

from tessera.api import create_key
from tessera.api.errors import UnsafeBind
from tessera.api.server import check_bind
from tessera.platform import Platform


def test_public_host_without_keys_is_refused(platform: Platform) -> None:
    with pytest.raises(UnsafeBind) as raised:
        check_bind(platform, "0.0.0.0")
    assert raised.value.status == 422 and "keys create" in raised.value.message


def test_loopback_without_keys_runs_open(platform: Platform) -> None:
    assert check_bind(platform, "127.0.0.1") is True
    assert check_bind(platform, "::1") is True


def test_public_host_with_keys_is_allowed(platform: Platform) -> None:
    create_key(platform.system, ["*"])
    assert check_bind(platform, "0.0.0.0") is False
