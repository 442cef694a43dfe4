"""Every error Tessera raises on purpose, as one tree.

Each class knows its HTTP status and an AEP-style error code, and serialises to the
reference platform's error body (``spec/aep.md`` §b18), so the API, CLI and UI render
the same error the same way.

    TesseraError                      500  generic, never raised for bad input
    ├── InvalidInput                  400  malformed or wrong-typed input (has ``path``)
    │   ├── SchemaValidationError     400  a record does not match its XDM schema
    │   ├── IdentityRejected          400  an identity value or row breaks the identity rules
    │   └── PqlError                  400  PQL that does not parse or check (line, col, snippet)
    ├── NotFound                      404
    ├── Conflict                      409  duplicate names, wrong state for the operation
    ├── PayloadTooLarge               413
    ├── UnsupportedMediaType          415
    ├── SemanticError                 422  well-formed but not allowed (graph too large,
    │                                      no default merge policy, ineligible streaming segment)
    ├── Unauthorized / Forbidden      401 / 403
    ├── RateLimited                   429
    └── StorageError                  503  the store failed; Transient
        └── StorageFull               507  no space left to write (disk full, size limit)
"""

from __future__ import annotations

from typing import Any, ClassVar


class TesseraError(Exception):
    """Root of every error Tessera raises deliberately.

    Args:
        message: one sentence a user can act on.
        path: where the problem is (a field path, a line:column, a parameter name).
        details: extra structured facts for machines (serialised into the body).
    """

    status: ClassVar[int] = 500
    code: ClassVar[str] = "TESSERA-5000-500"
    title: ClassVar[str] = "Internal error"

    def __init__(self, message: str, *, path: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.details = details

    def to_json(self) -> dict[str, Any]:
        """The reference error body: ``type``, ``status``, ``title``, ``detail`` and report."""
        body: dict[str, Any] = {
            "type": f"https://tessera.dev/errors/{type(self).__name__}",
            "status": self.status,
            "title": self.title,
            "detail": self.message,
            "error_code": self.code,
        }
        report: dict[str, Any] = {}
        if self.path is not None:
            report["path"] = self.path
        if self.details:
            report.update(self.details)
        if report:
            body["report"] = report
        return body

    def __str__(self) -> str:
        return f"{self.message} (at {self.path})" if self.path else self.message


class Transient:
    """Marker mixin: retrying the same operation later may succeed."""


class InvalidInput(TesseraError):
    status = 400
    code = "TESSERA-1000-400"
    title = "Bad request"


class SchemaValidationError(InvalidInput):
    code = "TESSERA-1101-400"
    title = "Record does not match its schema"


class IdentityRejected(InvalidInput):
    code = "TESSERA-1201-400"
    title = "Identity rejected"


class PqlError(InvalidInput):
    """PQL that does not parse or does not type-check.

    Args:
        message: what is wrong, in words a marketer can act on.
        line: 1-based line of the problem.
        column: 1-based column of the problem.
        snippet: the offending line with a caret under the column.
    """

    code = "TESSERA-1301-400"
    title = "Invalid PQL"

    def __init__(
        self, message: str, *, line: int = 1, column: int = 1, snippet: str = "", **details: Any
    ) -> None:
        super().__init__(
            message, path=f"{line}:{column}", line=line, column=column, snippet=snippet, **details
        )
        self.line = line
        self.column = column
        self.snippet = snippet


class NotFound(TesseraError):
    status = 404
    code = "TESSERA-1404-404"
    title = "Not found"


class Conflict(TesseraError):
    status = 409
    code = "TESSERA-1409-409"
    title = "Conflict"


class PayloadTooLarge(TesseraError):
    status = 413
    code = "TESSERA-1413-413"
    title = "Payload too large"


class UnsupportedMediaType(TesseraError):
    status = 415
    code = "TESSERA-1415-415"
    title = "Unsupported media type"


class SemanticError(TesseraError):
    status = 422
    code = "TESSERA-1422-422"
    title = "Unprocessable request"


class Unauthorized(TesseraError):
    status = 401
    code = "TESSERA-1401-401"
    title = "Unauthorized"


class Forbidden(TesseraError):
    status = 403
    code = "TESSERA-1403-403"
    title = "Forbidden"


class RateLimited(TesseraError, Transient):
    status = 429
    code = "TESSERA-1429-429"
    title = "Too many requests"


class StorageError(TesseraError, Transient):
    status = 503
    code = "TESSERA-1503-503"
    title = "Storage unavailable"


class StorageFull(StorageError):
    """A write found no space (disk full, quota, file-size limit); reads still work."""

    status = 507
    code = "TESSERA-1507-507"
    title = "Insufficient storage"


FULL_ERRNOS = frozenset({28, 27, 122})
"""ENOSPC, EFBIG, EDQUOT: the operating system's ways of saying there is no room to write."""


def storage_error_of(exc: OSError) -> StorageError | None:
    """The API error for a failed file write: :class:`StorageFull` when it ran out of space."""
    if exc.errno in FULL_ERRNOS:
        return StorageFull(f"No space left to store this: {exc.strerror or exc}")
    return None


__all__ = [
    "Conflict",
    "Forbidden",
    "IdentityRejected",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "PqlError",
    "RateLimited",
    "StorageFull",
    "SchemaValidationError",
    "SemanticError",
    "StorageError",
    "TesseraError",
    "Transient",
    "Unauthorized",
    "UnsupportedMediaType",
]
