"""Explain from the expression text: conditions that held and the events each filter matched."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from segfakes import FakeSandbox, definition, event

from tessera.errors import PqlError
from tessera.segments.engine import Compiled, split_top_level

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class MiniEngine:
    """Just enough PQL for the test: ``a.b = "x"``, ``xEvent[eventType = "x"]`` (+ ``.count() > 0``),
    joined with ``and``/``or``."""

    def compile(self, fmt: str, text: str, *, boolean: bool = True) -> Compiled:
        op, parts = split_top_level(text)
        if op:
            subs = [self.compile(fmt, p).predicate for p in parts]
            combine = all if op == "and" else any

            def both(
                p: dict[str, Any], ev: list[dict[str, Any]], now: datetime, m: Mapping[str, bool]
            ) -> bool:
                return combine(bool(f(p, ev, now, m)) for f in subs)

            return Compiled(text=text, predicate=both)
        if m := re.fullmatch(r'xEvent\[eventType = "(\w+)"\](\.count\(\) > 0)?', text):
            kind, counted = m.group(1), m.group(2)

            def events(
                p: dict[str, Any], ev: list[dict[str, Any]], now: datetime, mm: Mapping[str, bool]
            ) -> Any:
                found = [e for e in ev if e["eventType"] == kind]
                return len(found) > 0 if counted else found

            return Compiled(text=text, predicate=events)
        if m := re.fullmatch(r'([\w.]+) = "(\w+)"', text):
            path, want = m.group(1).split("."), m.group(2)

            def attr(
                p: dict[str, Any], ev: list[dict[str, Any]], now: datetime, mm: Mapping[str, bool]
            ) -> bool:
                node: Any = p
                for part in path:
                    node = node.get(part) if isinstance(node, dict) else None
                return bool(node == want)

            return Compiled(text=text, predicate=attr)
        raise PqlError(f"mini engine cannot read {text!r}")

    def batch_query(self, *args: Any) -> Any:
        raise NotImplementedError("not needed here")


def test_explain_names_conditions_and_matching_events(tmp_path: Path) -> None:
    sb = FakeSandbox(tmp_path, MiniEngine())  # type: ignore[arg-type]
    expr = 'homeAddress.countryCode = "US" and (xEvent[eventType = "purchase"].count() > 0 or vip = "yes")'
    sb.segments.create(definition("US buyers", expr), seg_id="s")
    sb.put(
        "p1",
        attributes={"homeAddress": {"countryCode": "FR"}},
        events=[event("e1", T0, "purchase"), event("e2", T0, "view"), event("e3", T0, "purchase")],
        now=T0,
    )
    out = sb.segments.explain("s", "p1", now=T0)
    assert out["qualifies"] is False and out["membership"] is None
    tree = out["explanation"]
    assert tree["operator"] == "and" and tree["held"] is False
    country, either = tree["conditions"]
    assert country == {"condition": 'homeAddress.countryCode = "US"', "held": False}
    assert either["operator"] == "or" and either["held"] is True
    bought = either["conditions"][0]
    assert bought["held"] is True
    assert bought["matchedEvents"] == {'xEvent[eventType = "purchase"]': ["e1", "e3"]}
