"""Structured logs: one JSON object per line, each carrying the id of the request it belongs to.

The request id lives in a context variable that the HTTP middleware sets for the duration of a
request; it follows the request into worker threads (Starlette copies the context), so any log
line written while serving it names it. Secrets never reach a log line: API-key tokens and
``Bearer`` credentials are masked in every message and field by :func:`redact`.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import threading
import time
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("tessera_request_id", default=None)

_SECRETS = re.compile(
    r"(tsk_[0-9a-f]{4})[0-9a-f]*_[A-Za-z0-9_-]+"  # Tessera API keys: keep a 4-digit hint of the id
    r"|((?:bearer|basic)\s+)[^\s\"',;]+"  # credentials after an auth scheme
    r"|((?:x-api-key|authorization|api_key|apikey|secret|password)[\"']?\s*[:=]\s*[\"']?"
    r"(?:(?:bearer|basic)\s+)?)[^\s\"',;}]+",
    re.IGNORECASE,
)
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName", "color_message"}
)


def redact(text: str) -> str:
    """Mask API keys and credentials in ``text``.

    >>> redact("key tsk_0123456789abcdef_SECRETsecret and Authorization: Bearer abc.def")
    'key tsk_0123… and Authorization: Bearer ***'
    """

    def mask(match: re.Match[str]) -> str:
        if match.group(1):
            return f"{match.group(1)}…"
        return f"{match.group(2) or match.group(3)}***"

    return _SECRETS.sub(mask, text)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id", ...extra fields, "exc"}`` per line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            doc["request_id"] = request_id
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                doc[name] = _clean(value)
        if record.exc_info:
            doc["exc"] = redact("".join(traceback.format_exception(*record.exc_info)))
        return orjson.dumps(doc, default=str).decode()


class TextFormatter(logging.Formatter):
    """Human-readable lines that still carry the request id and mask secrets."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = redact(super().format(record))
        request_id = REQUEST_ID.get()
        return f"{line} [request_id={request_id}]" if request_id else line


class BufferedLineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes lines in bunches: at most ``delay`` seconds after the first
    line it holds, at ``limit`` bytes, and at once for a warning or worse (with everything before it).

    A server logs one access line per request; written one by one, each line is a write system
    call on the thread serving requests, which gives the interpreter lock away for it and must then
    win it back from the ingestion thread. Lines are formatted when logged (so they carry the
    request id of the moment); only the write waits. Held lines are lost if the process is killed
    (SIGKILL); ``run_server`` turns SIGTERM into an orderly exit, which writes them.
    """

    def __init__(self, stream: Any = None, *, delay: float = 0.2, limit: int = 64 * 1024) -> None:
        super().__init__(stream)
        self.delay = delay
        self.limit = limit
        self._lines: list[str] = []
        self._size = 0
        self._wake = threading.Event()
        self._closed = False
        self._writer: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler's lock held
        try:
            line = self.format(record) + self.terminator
        except Exception:  # noqa: BLE001 - logging's own convention: report, never raise
            self.handleError(record)
            return
        first = not self._lines
        self._lines.append(line)
        self._size += len(line)
        if record.levelno >= logging.WARNING or self._size >= self.limit or self._closed:
            self._write()
            return
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_later, name="tessera-log-writer", daemon=True)
            self._writer.start()
        if first:  # later lines go in the same write: no need to wake the writer again
            self._wake.set()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write()

    def close(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._closed = True
            self._write()
        self._wake.set()
        super().close()

    def _write(self) -> None:
        if self._lines:
            text = "".join(self._lines)
            self._lines.clear()
            self._size = 0
            self.stream.write(text)
        self.stream.flush()

    def _write_later(self) -> None:
        while not self._closed:
            self._wake.wait()
            self._wake.clear()
            time.sleep(self.delay)  # lines logged meanwhile go in the same write
            self.flush()


def configure_logging(fmt: str = "json", level: int = logging.INFO) -> logging.Handler:
    """Send every logger's lines to stderr in ``fmt`` (``json``, ``text`` or ``auto``); returns the
    handler. ``auto`` is text for a person at a terminal (``make demo``) and JSON for a log collector.

    Replaces the root logger's handlers, so calling it twice does not double the lines.
    """
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = BufferedLineHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Neither format prints threads or processes; looking them up was a third of each record's cost.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    return handler
