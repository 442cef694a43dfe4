"""The marketer UI in real headless Chromium against a live server over a 300-person demo."""

from __future__ import annotations

import importlib.util
import re
from typing import Any

import pytest

from tessera.platform import Platform

pytestmark = pytest.mark.browser

ENGINE = importlib.util.find_spec("tessera.pql") is not None


def segment_engine_problem(platform: Platform) -> str | None:
    """Why the sandbox cannot estimate a segment yet (``None`` when it can)."""
    try:
        platform.sandbox().segments.preview('homeAddress.country = "Australia"', sample_size=1)
    except Exception as exc:  # noqa: BLE001 - any failure means the flow cannot run end to end
        return f"{type(exc).__name__}: {exc}"
    return None


UNLABELLED = """() => [...document.querySelectorAll('main input, main select, main textarea, main button')]
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
  .map((el) => el.outerHTML.slice(0, 100))"""
"""Controls a screen reader could not name (no <label>, no aria-label, no text)."""
PAGES = ["dashboard", "profile", "segments", "builder", "identity", "datasets", "activation"]


def person_in_two_datasets(platform: Platform) -> tuple[str, dict[str, Any]]:
    """An email of someone whose merged profile takes attributes from CRM and loyalty records."""
    sandbox = platform.sandbox()
    names = {d["id"]: d["name"] for d in sandbox.datasets.list()}
    for _, doc in sandbox.profiles.scan_profiles():
        sources = {names.get(s) for s in doc.get("sources", [])}
        emails = [i["id"] for i in doc.get("identities", []) if i["namespace"]["code"] == "Email"]
        if {"CRM Profiles", "Loyalty Members"} <= sources and emails and len(doc["identities"]) >= 3:
            return emails[0], doc
    raise AssertionError("the demo has nobody in both CRM and loyalty datasets")


def test_dashboard_shows_profiles_graphs_and_ingestion(page: Any, shot: Any) -> None:
    page.goto(page.base + "/#/dashboard")
    page.wait_for_selector("[data-stat=profiles] b")
    assert int(page.inner_text("[data-stat=profiles] b").replace(",", "")) >= 300
    assert "CRM Profiles" in page.inner_text("section[aria-label=Ingestion]")
    assert page.locator(".hist div").count() >= 2
    assert "Email" in page.inner_text("section[aria-label='Identities per namespace']")
    shot(page, "dashboard")


def test_find_profile_by_email_shows_merged_attributes_and_graph(
    page: Any, demo_platform: Platform, shot: Any
) -> None:
    email, doc = person_in_two_datasets(demo_platform)
    page.goto(page.base + "/#/profile")
    page.select_option("select[name=namespace]", "Email")
    page.fill("input[name=id]", email[:3])
    page.wait_for_function("document.querySelectorAll('#identity-suggestions option').length > 0")
    page.fill("input[name=id]", email)
    page.click("button:has-text('Look up')")
    page.wait_for_selector("#profile-title")
    sources = page.locator(".tree .src").all_inner_texts()
    assert "CRM Profiles" in sources and "Loyalty Members" in sources
    first = doc["attributes"]["person"]["name"]["firstName"]
    assert page.locator("li[data-path='person.name.firstName'] .val").inner_text() == first
    nodes = page.locator("svg.graph .node")
    assert nodes.count() == len(doc["identities"])
    # keyboard: select two identities with Enter and read why they are linked
    nodes.nth(0).focus()
    page.keyboard.press("Enter")
    nodes.nth(1).focus()
    page.keyboard.press("Enter")
    page.wait_for_selector(".explain table")
    assert "Why" in page.inner_text(".explain h3")
    assert page.locator("svg.graph line.hl").count() >= 1
    page.wait_for_selector("text=events shown")
    shot(page, "profile")


def test_profile_merge_policy_and_as_of_controls(page: Any, demo_platform: Platform, shot: Any) -> None:
    email, _ = person_in_two_datasets(demo_platform)
    page.goto(page.base + f"/#/profile?namespace=Email&id={email}&asOf=2000-01-01T00:00:00Z")
    page.wait_for_selector("#profile-title, .alert")
    # before any data existed the person has no attributes (or no profile at all)
    assert page.locator(".tree .src").count() == 0
    assert page.locator("select[name=mergePolicyId] option").count() >= 1


def test_build_segment_by_clicking(page: Any, demo_platform: Platform, shot: Any) -> None:
    page.goto(page.base + "/#/builder")
    page.click("button[data-add=attr]")
    page.select_option(".cond select[name=attribute]", "homeAddress.country")
    page.select_option(".cond select[name=operator]", "equals")
    page.fill(".cond input[name=value]", "Australia")
    page.wait_for_function("document.querySelector('#pql-preview').textContent.includes('Australia')")
    assert page.inner_text("#pql-preview") == 'homeAddress.country = "Australia"'
    if not ENGINE:
        page.wait_for_selector("#engine-missing")
        assert "Not available" in page.inner_text("#engine-missing")
        assert page.locator("#estimate-size").count() == 0
        shot(page, "builder")
        pytest.skip("tessera.pql is not in this build: the page says so; estimate/save/evaluate need it")
    problem = segment_engine_problem(demo_platform)
    if problem is not None:
        page.wait_for_selector("#estimate .alert")
        shot(page, "builder")
        pytest.skip(f"the segment service cannot estimate yet ({problem}); the page shows its error")
    page.wait_for_selector("#estimate-size")
    size = int(page.inner_text("#estimate-size").replace(",", ""))
    assert size > 0
    assert "Exact count" in page.inner_text("#estimate-ci") or "confidence interval" in page.inner_text(
        "#estimate-ci"
    )
    page.fill("input[name=name]", "Australians")
    page.click("#save-segment")
    page.wait_for_selector("#evaluate-now")
    page.click("#evaluate-now")
    page.wait_for_selector("#evaluated-size")
    assert int(re.sub(r"\D", "", page.inner_text("#evaluated-size b"))) == size
    shot(page, "builder")
    page.locator("a.member").first.click()
    page.wait_for_selector("#profile-title")
    assert "Australia" in page.inner_text(".tree")


def test_pql_editor_round_trip_and_syntax_error(page: Any, shot: Any) -> None:
    page.goto(page.base + "/#/builder")
    page.click("button[data-add=event]")
    page.click("#tab-pql")
    text = page.input_value("#pql-editor")
    assert text.startswith("chain(xEvent, timestamp, [C0: WHAT(eventType = ")
    page.fill("#pql-editor", 'homeAddress.country = "Australia" and person.birthYear > 1980')
    page.click("#tab-rules")
    assert page.locator(".cond[data-kind=attr]").count() == 2
    page.click("#tab-pql")
    page.fill("#pql-editor", 'homeAddress.country = "Australia"\nand person.birthYear >> 1980')
    if not ENGINE:
        page.wait_for_selector("#engine-missing")
        pytest.skip("tessera.pql is not in this build: syntax errors come from its parser")
    page.wait_for_selector(".pql-error-mark .err")
    mark = page.locator(".pql-error-mark")
    assert mark.get_attribute("data-line") == "2"
    assert page.get_attribute("#pql-editor", "aria-invalid") == "true"
    shot(page, "builder-pql-error")


def test_upload_file_with_bad_records_shows_diagnostics(page: Any, tmp_path: Any, shot: Any) -> None:
    lines = [
        '{"identityMap":{"CRMID":[{"id":"up-1","primary":true}]},"person":{"name":{"firstName":"Uma"}}}',
        '{"identityMap":{"CRMID":[{"id":"up-2","primary":true}]},"person":{"birthYear":"nineteen"}}',
        '{"person":{"name":{"firstName":"NoId"}}}',
        "not json",
    ]
    file = tmp_path / "people.jsonl"
    file.write_text("\n".join(lines) + "\n")
    page.goto(page.base + "/#/datasets")
    page.wait_for_selector("select[name=dataset]")
    page.select_option("select[name=dataset]", label="CRM Profiles")
    page.set_input_files("input[type=file]", str(file))
    page.click("button:has-text('Upload and ingest')")
    page.wait_for_selector("#batch-result")
    assert "4 records read, 1 ingested, 3 rejected" in page.inner_text("#batch-result")
    diag = page.inner_text("#upload-status table")
    assert "person.birthYear" in diag and "no identity" in diag and "not valid JSON" in diag
    assert page.get_attribute("#upload-progress", "value") == "100"
    shot(page, "datasets-upload")


def test_identity_settings_and_graph_simulation(page: Any, shot: Any) -> None:
    page.goto(page.base + "/#/identity")
    page.wait_for_selector("#unique-CRMID")
    assert page.is_checked("#unique-CRMID")
    page.click("#simulate")
    page.wait_for_selector("#sim-out svg.graph")
    outcomes = page.inner_text("#sim-out table")
    assert "CRMID:Jerry" in outcomes  # the unique-CRMID rule moved ECID 111 to Jerry's graph
    shot(page, "identity")


@pytest.mark.parametrize("width", [1280, 768])
def test_every_page_renders_at_laptop_and_tablet_width(page: Any, width: int, shot: Any) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    for name in PAGES:
        page.goto(page.base + f"/#/{name}")
        page.wait_for_selector(f".page[data-page={name}] h1")
        page.wait_for_load_state("networkidle")
        # nothing wider than the viewport except scrollable tables
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{name} overflows by {overflow}px at {width}px"
        unlabelled = page.evaluate(UNLABELLED)
        assert not unlabelled, f"{name}: controls without a label: {unlabelled}"
        shot(page, f"{name}-{width}")
    if width == 768:
        assert page.is_visible("#nav-toggle")
        page.click("#nav-toggle")
        page.click("nav a[data-page=dashboard]")
        page.wait_for_selector(".page[data-page=dashboard]")


def test_builder_conditions_are_labelled_and_keyboard_reachable(page: Any, shot: Any) -> None:
    page.goto(page.base + "/#/builder")
    for kind in ("attr", "event", "sequence", "segment", "group"):
        page.click(f"button[data-add={kind}]")
    assert page.locator(".cond").count() == 4 and page.locator(".group").count() == 2
    assert page.evaluate(UNLABELLED) == []
    # the new condition's first control takes the focus, so keyboard users land on it
    page.locator(".group .group button[data-add=attr]").click()
    assert page.evaluate("document.activeElement.name") == "attribute"
    page.locator(".group .group button[data-add=segment]").click()
    last_line = page.inner_text("#pql-preview").splitlines()[-1]
    assert re.match(r"^and \(\S+ = \"[^\"]*\" or (not\()?inSegment\(", last_line), last_line
    shot(page, "builder-all-conditions")


def test_create_namespace_from_identity_settings(page: Any) -> None:
    page.goto(page.base + "/#/identity")
    page.fill("input[name=code]", "ShopUser")
    page.fill("input[name=nsName]", "Shop user id")
    page.select_option("select[name=idType]", "CROSS_DEVICE")
    page.click("button:has-text('Create namespace')")
    page.wait_for_selector("text=Created ShopUser")
    page.click("button:has-text('Create namespace')")  # the same code again is a conflict, shown as such
    page.wait_for_selector(".alert:has-text('already exists')")
    page.reload()
    page.wait_for_selector("#unique-ShopUser")
