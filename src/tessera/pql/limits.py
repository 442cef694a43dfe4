"""Size and time limits of PQL: how long and how deeply nested an expression may be, how long a
regular expression may be, which regular expressions are refused up front, and how long one
regular-expression match may run.

The limits are settings (``max_pql_length``, ``max_pql_depth``, ``max_regex_length``,
``regex_timeout_ms``); :func:`configure` applies an installation's settings.

Streaming evaluation matches with the ``regex`` package and a timeout (a match that runs out of
time counts as no match, logged); batch evaluation runs in DuckDB, whose RE2 engine is linear. To
keep both engines' answers equal, patterns RE2 would refuse or that are slow by construction are
refused when the expression is checked: nested quantifiers (``(a+)+``) and backreferences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

try:  # Python 3.11+: the parser moved under ``re``
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]


@dataclass
class Limits:
    max_length: int = 100_000
    max_depth: int = 200
    max_regex: int = 1_000
    regex_timeout_s: float = 0.05


LIMITS = Limits()


def configure(settings: Any) -> None:
    """Apply an installation's settings (one installation per process)."""
    LIMITS.max_length = int(settings.max_pql_length)
    LIMITS.max_depth = int(settings.max_pql_depth)
    LIMITS.max_regex = int(settings.max_regex_length)
    LIMITS.regex_timeout_s = max(0.001, float(settings.regex_timeout_ms) / 1000.0)


_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}


def _walk(items: Any, inside_repeat: bool) -> str | None:
    for op, arg in items:
        name = str(op)
        if name in {"GROUPREF", "GROUPREF_EXISTS"}:
            return "backreferences are not supported"
        if name in _REPEATS:
            low, high, sub = arg
            unbounded = high is sre_parse.MAXREPEAT or high > 1
            if unbounded and inside_repeat:
                return "a quantifier inside a quantified group (like (a+)+) can take exponential time"
            found = _walk(sub, inside_repeat or unbounded)
            if found:
                return found
        elif name == "SUBPATTERN":
            found = _walk(arg[-1], inside_repeat)
            if found:
                return found
        elif name == "BRANCH":
            for alternative in arg[1]:
                found = _walk(alternative, inside_repeat)
                if found:
                    return found
        elif name in {"ASSERT", "ASSERT_NOT"}:
            found = _walk(arg[1], inside_repeat)
            if found:
                return found
    return None


def unsafe_regex(pattern: str) -> str | None:
    """Why ``pattern`` is refused, or ``None`` when it may be used.

    >>> unsafe_regex("^[a-z]+@acme\\\\.com$") is None
    True
    >>> unsafe_regex("(a+)+$")
    'a quantifier inside a quantified group (like (a+)+) can take exponential time'
    """
    if len(pattern) > LIMITS.max_regex:
        return f"it is longer than {LIMITS.max_regex} characters"
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        return f"it is not a valid regular expression ({exc})"
    return _walk(parsed, False)
