"""The builder's whole flow (estimate, save, evaluate, open a member, explain) in Chromium, over a
segment service whose engine knows one rule shape, so the UI is tested whatever the state of the
PQL engine (``test_pages.py::test_build_segment_by_clicking`` runs the same clicks on the real one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import pytest

from tessera.demo.load import load_demo
from tessera.errors import PqlError
from tessera.platform import Platform
from tessera.segments import SegmentService
from tessera.segments.engine import Compiled, Verdict

pytestmark = pytest.mark.browser

RULE = re.compile(r'^homeAddress\.country = "([^"]*)"$')


class CountryEngine:
    """Compiles only ``homeAddress.country = "<value>"``; anything else is a PqlError at 1:1."""

    def compile(self, fmt: str, value: str) -> Compiled:
        m = RULE.match(value.strip())
        if m is None:
            raise PqlError('only homeAddress.country = "..." in this test', line=1, column=1)
        country = m.group(1)

        def predicate(
            p: dict[str, Any], ev: list[dict[str, Any]], now: datetime, mem: Mapping[str, bool]
        ) -> bool:
            return (p.get("homeAddress") or {}).get("country") == country

        def explain(
            p: dict[str, Any], ev: list[dict[str, Any]], now: datetime, mem: Mapping[str, bool]
        ) -> dict[str, Any]:
            return {"conditions": [{"condition": value, "held": predicate(p, ev, now, mem)}]}

        return Compiled(
            text=value.strip(),
            predicate=predicate,
            checked=country,
            continuous=Verdict(True),
            synchronous=Verdict(False, "edge needs the active-on-edge merge policy in this test"),
            explain=explain,
        )

    def batch_query(
        self,
        con: Any,
        table: str,
        rows: Sequence[tuple[str, dict[str, Any], list[dict[str, Any]]]],
        segments: Mapping[str, Compiled],
        now: datetime,
        memberships: Mapping[str, set[str]],
    ) -> Iterable[tuple[str, dict[str, bool]]]:
        for pid, attrs, events in rows:
            yield pid, {sid: bool(c.predicate(attrs, events, now, {})) for sid, c in segments.items()}


@pytest.fixture(scope="module")
def country_server(tmp_path_factory: pytest.TempPathFactory, server_for: Any) -> Iterator[Any]:
    platform = Platform.open(tmp_path_factory.mktemp("builder"))
    sandbox = platform.sandbox()
    load_demo(sandbox, people=120, real_data=False)
    if sandbox.segments is not None:
        sandbox.segments.close()
    sandbox.segments = SegmentService(sandbox, engine=CountryEngine())
    server = server_for(platform)
    yield server
    server.stop()
    platform.close()


def test_build_estimate_save_evaluate_open_member_and_explain(
    browser: Any, country_server: Any, shot: Any
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(15_000)
    page.goto(country_server.url + "/#/builder")
    page.click("button[data-add=attr]")
    page.select_option(".cond select[name=attribute]", "homeAddress.country")
    page.select_option(".cond select[name=operator]", "equals")
    page.fill(".cond input[name=value]", "Australia")
    page.wait_for_selector("#estimate-size")
    size = int(page.inner_text("#estimate-size").replace(",", ""))
    assert size > 0
    assert "Exact count" in page.inner_text("#estimate-ci")
    assert page.locator("#preview-sample tbody tr").count() == min(size, 10)
    # eligibility: streaming allowed, edge refused with its reason
    assert page.is_enabled("#method-continuous") and page.is_disabled("#method-synchronous")
    assert "active-on-edge" in page.inner_text("#methods")
    page.check("#method-continuous")
    page.fill("input[name=name]", "Australians")
    page.click("#save-segment")
    page.wait_for_selector("#evaluate-now")
    page.click("#evaluate-now")
    page.wait_for_selector("#evaluated-size")
    assert int(re.sub(r"\D", "", page.inner_text("#evaluated-size b"))) == size
    page.locator("#evaluation button:has-text('Why?')").first.click()
    page.wait_for_selector(".explain-member h3")
    assert page.inner_text(".explain-member h3").startswith("Qualifies")
    shot(page, "builder-evaluated")
    page.locator("a.member").first.click()
    page.wait_for_selector("#profile-title")
    assert "Australia" in page.inner_text(".tree")
    assert "Australians" in page.inner_text("section[aria-label='Segment memberships']")
    # the segments list shows the new segment with its size
    page.goto(country_server.url + "/#/segments")
    page.wait_for_selector("text=Australians")
    assert str(size) in page.inner_text("section[aria-label='All segments']")
    shot(page, "segments-list")
    page.close()
    assert not errors, errors
