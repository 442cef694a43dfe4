"""The shared vocabulary passed between stages: identities and timestamps.

Stage-private types stay in their stage; only what crosses a package boundary lives here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True, order=True)
class Identity:
    """One identity: a namespace code (case-sensitive, e.g. ``"Email"``) and a value.

    >>> Identity("Email", "tom@example.com")
    Identity(namespace='Email', id='tom@example.com')
    """

    namespace: str
    id: str

    def to_json(self) -> dict[str, str]:
        return {"namespace": self.namespace, "id": self.id}

    def __str__(self) -> str:
        return f"{self.namespace}:{self.id}"


def utcnow() -> datetime:
    """Now, timezone-aware UTC. All Tessera times are UTC."""
    return datetime.now(UTC)


def parse_time(value: str | datetime | int | float) -> datetime:
    """Parse an ISO-8601 string (``Z`` allowed) or epoch milliseconds into aware UTC.

    Naive times are taken to be UTC.

    >>> parse_time("2024-01-02T03:04:05Z").isoformat()
    '2024-01-02T03:04:05+00:00'
    >>> parse_time(0).year
    1970
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, int | float):
        dt = datetime.fromtimestamp(value / 1000.0, UTC)
    else:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


@functools.lru_cache(maxsize=1024)  # a job stamps thousands of records with the same time
def format_time(dt: datetime) -> str:
    """Aware datetime → ISO-8601 UTC with ``Z`` and milliseconds.

    >>> format_time(parse_time("2024-01-02T03:04:05.123456+01:00"))
    '2024-01-02T02:04:05.123Z'
    """
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
