"""Serving the app with uvicorn, refusing an open server on a public address."""

from __future__ import annotations

import gc
import ipaddress
import logging
import signal
import threading
from types import FrameType

import uvicorn

from tessera.api.app import create_app
from tessera.api.errors import UnsafeBind
from tessera.api.keys import has_keys
from tessera.ops.logs import configure_logging
from tessera.platform import Platform

log = logging.getLogger("tessera.api")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(platform: Platform, host: str) -> bool:
    """Whether the server will run open (no keys); raise when that would be unsafe.

    Raises:
        UnsafeBind: on a non-loopback ``host`` while no API key exists.
    """
    if has_keys(platform.system):
        return False
    if not is_loopback(host):
        raise UnsafeBind(
            f"Refusing to serve on {host} without API keys: create one with "
            "`tessera keys create --sandbox '*'` or bind to 127.0.0.1",
            path="host",
        )
    return True


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _unwind_on_terminate() -> None:
    """Let SIGTERM end the process the way Ctrl+C does: by unwinding it.

    uvicorn shuts down gracefully on SIGTERM, then raises the signal again under the handler it
    found at start. With the default one the process died on the spot: the platform was never
    closed, and log lines still held by the log handler (written in bunches) were lost. With this
    one the signal raises ``SystemExit``: the platform closes and the held lines are written.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)


def run_server(
    platform: Platform, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info"
) -> None:
    """Serve the REST API (and the UI when installed) until interrupted, then close the platform.

    Raises:
        UnsafeBind: on a non-loopback ``host`` while no API key exists.
    """
    configure_logging(platform.settings.log_format)
    if check_bind(platform, host):
        log.warning(
            "Tessera API is running OPEN on http://%s:%s (demo mode): no API keys exist, so anyone "
            "on this machine can call it. Create one with `tessera keys create --sandbox '*'`.",
            host,
            port,
        )
    app = create_app(platform)
    platform.start_background()
    # What opening the sandboxes built (schemas, validators, identity graphs) lives as long as the
    # server: leave it out of the collector's full passes, which otherwise walked all of it every
    # few hundred requests (15% of the server's time under streaming load).
    gc.collect()
    gc.freeze()
    _unwind_on_terminate()
    try:
        # log_config=None: uvicorn's lines go through our (JSON) handler instead of its own
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, log_config=None)
    finally:
        platform.close()
