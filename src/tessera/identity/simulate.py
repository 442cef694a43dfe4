"""The graph simulator: the production engine with no store, fed by ``NS: value, NS: value`` lines.

Doubles as the test harness for the documented scenarios and as a tool users script
(``tessera identity simulate``); the UI's simulator page calls :func:`simulate` too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tessera.errors import InvalidInput
from tessera.identity.graph import IdentityGraph
from tessera.identity.rules import DEFAULT_GRAPH_LIMIT, LinkingRules
from tessera.identity.validation import validate_row
from tessera.model import Identity


@dataclass(frozen=True, slots=True)
class SimulatedRow:
    """One input row's outcome: its primary identity, or why it was rejected."""

    primary: Identity | None
    rejected: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "primary": None if self.primary is None else self.primary.to_json(),
            "rejected": self.rejected,
        }


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """The graphs (two or more identities each, sorted) and one outcome per input row."""

    graphs: list[tuple[Identity, ...]]
    rows: list[SimulatedRow]
    graph: IdentityGraph

    def to_json(self) -> dict[str, Any]:
        """``{"graphs": [{"identities": [...]}, ...], "rows": [{"primary": ..., "rejected": ...}]}``."""
        return {
            "graphs": [{"identities": [i.to_json() for i in g]} for g in self.graphs],
            "rows": [r.to_json() for r in self.rows],
        }


def parse_line(line: str, *, lineno: int = 1) -> list[Identity]:
    """Parse one simulator line ``CRMID: Tom, ECID: 111`` into identities.

    >>> [str(i) for i in parse_line("CRMID: Tom, ECID: 111")]
    ['CRMID:Tom', 'ECID:111']

    Raises:
        InvalidInput: a part without ``namespace: value`` (``path`` is ``line:column``).
    """
    out: list[Identity] = []
    col = 1
    for part in line.split(","):
        if part.strip():
            ns, sep, value = part.partition(":")
            if not sep or not ns.strip() or not value.strip():
                raise InvalidInput(
                    f"Expected 'Namespace: value' but found {part.strip()!r}.",
                    path=f"{lineno}:{col + len(part) - len(part.lstrip())}",
                )
            out.append(Identity(ns.strip(), value.strip()))
        col += len(part) + 1
    return out


def parse_rows(text: str) -> list[list[Identity]]:
    """Parse simulator text: one row per line; blank lines and ``#`` comments are skipped.

    >>> len(parse_rows("CRMID: Tom, ECID: 1\\n\\n# note\\nECID: 1"))
    2
    """
    rows: list[list[Identity]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            rows.append(parse_line(line, lineno=lineno))
    return rows


def simulate(
    rows: str | Iterable[Sequence[Identity]],
    *,
    unique: Iterable[str] = (),
    priority: Iterable[str] = (),
    limit: int | None = DEFAULT_GRAPH_LIMIT,
    validate: bool = False,
) -> SimulationResult:
    """Run rows (in time order; row ``i`` is asserted at time ``i``) through a fresh engine.

    Args:
        rows: simulator text, or rows of identities.
        unique: unique namespaces.
        priority: namespaces, highest priority first (unlisted ones rank below).
        limit: graph size limit (``None`` for none).
        validate: also apply the identity value rules (ECID 38 digits, junk values, ...).
            Off by default so documentation examples such as ``ECID: 111`` run as written.

    >>> r = simulate("CRMID: Jane, ECID: 111\\nCRMID: John, ECID: 111", unique=["CRMID"], priority=["CRMID", "ECID"])
    >>> [[str(i) for i in g] for g in r.graphs]
    [['CRMID:John', 'ECID:111']]
    """
    parsed = parse_rows(rows) if isinstance(rows, str) else [list(r) for r in rows]
    graph = IdentityGraph(LinkingRules.of(unique, priority, limit))
    outcomes: list[SimulatedRow] = []
    for i, row in enumerate(parsed, start=1):
        identities: Sequence[Identity] = row
        if validate:
            checked = validate_row(row)
            if checked.row_refused is not None:
                outcomes.append(SimulatedRow(None, checked.row_refused))
                continue
            identities = checked.identities
            if not identities:
                reasons = " ".join(r.reason for r in checked.refused) or "The row carries no identity."
                outcomes.append(SimulatedRow(None, reasons))
                continue
        result = graph.add_row(identities, ts=i)
        outcomes.append(SimulatedRow(result.primary, result.rejected))
    graphs = sorted(g for g in graph.components().values() if len(g) >= 2)
    return SimulationResult(graphs, outcomes, graph)
