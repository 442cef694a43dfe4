"""The tutorial's clicks (sections 4 and 6) in headless Chromium; run by test_tutorial.py in a
child process after the tutorial's commands, against the same server.

    python tests/e2e/tutorial_clicks.py BASE_URL '#/link' ...   (exit status 0 when all held)
"""

from __future__ import annotations

import re
import sys

from playwright.sync_api import Page, sync_playwright

FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]


def links(page: Page, base: str, hashes: list[str]) -> None:
    """Every UI link of the tutorial renders without an error."""
    for link in hashes:
        page.goto(f"{base}/{link}")
        page.wait_for_selector(".page h1")
        page.wait_for_load_state("networkidle")
        alerts = page.locator(".page .alert").all_inner_texts()
        assert not alerts, f"{link}: {alerts}"


def section_4(page: Page, base: str) -> None:
    """Profiles, Email, type 'ada', pick the suggestion; sources per value; two nodes explained."""
    page.goto(f"{base}/#/profile")
    page.select_option("select[name=namespace]", "Email")
    page.fill("input[name=id]", "ada")
    page.wait_for_function(
        "[...document.querySelectorAll('#identity-suggestions option')].some(o => o.value === 'ada@example.com')"
    )
    page.fill("input[name=id]", "ada@example.com")
    page.click("button:has-text('Look up')")
    page.wait_for_selector("#profile-title")
    assert page.inner_text("li[data-path='person.name.firstName'] .src") == "CRM Profiles"
    assert page.inner_text("li[data-path='_tessera.loyalty.tier'] .src") == "Loyalty Members"
    page.click("svg.graph .node[data-identity='Email:ada@example.com']")
    page.click("svg.graph .node[data-identity='LOYALTYID:L-TUTORIAL-1']")
    page.wait_for_selector(".explain table")
    assert "Loyalty Members" in page.inner_text(".explain table")


def section_6(page: Page, base: str) -> None:
    """Build 'UK visitors' by clicking, read the estimate, round-trip PQL, save, evaluate, Why?."""
    page.goto(f"{base}/#/builder")
    page.click("button[data-add=attr]")
    page.select_option(".cond[data-kind=attr] select[name=attribute]", "homeAddress.country")
    page.select_option(".cond[data-kind=attr] select[name=operator]", "equals")
    page.fill(".cond[data-kind=attr] input[name=value]", "United Kingdom")
    page.click("button[data-add=event]")
    page.fill(".cond[data-kind=event] input[name=eventType]", "web.webpagedetails.pageViews")
    page.fill(".cond[data-kind=event] input[name=windowDays]", "30")
    page.wait_for_function("document.querySelector('#pql-preview').textContent.includes('pageViews')")
    page.wait_for_selector("#estimate-size")
    assert int(page.inner_text("#estimate-size").replace(",", "")) >= 1
    assert (
        "tutorial-0001" in page.inner_text("#preview-sample")
        or page.locator("#preview-sample tbody tr").count() == 10
    )
    page.wait_for_selector("#methods input[name=method-batch]")
    page.click("#tab-pql")
    assert "United Kingdom" in page.input_value("#pql-editor")
    page.click("#tab-rules")
    assert page.locator(".cond").count() == 2
    page.fill("input[name=name]", "UK visitors")
    page.click("#save-segment")
    page.click("#evaluate-now")
    page.wait_for_selector("#evaluated-size")
    members = page.inner_text("#evaluation")
    assert "CRMID:tutorial-0001" in members, members
    row = page.locator("#evaluation tr", has_text="CRMID:tutorial-0001")
    row.locator("button:has-text('Why?')").click()
    page.wait_for_selector(".explain-member h3")
    assert page.inner_text(".explain-member h3").startswith("Qualifies")
    page.goto(f"{base}/#/profile?namespace=Email&id=ada@example.com")
    page.wait_for_selector("#profile-title")
    assert re.search(r"UK visitors\s+realized", page.inner_text("section[aria-label='Segment memberships']"))


def main(base: str, hashes: list[str]) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            links(page, base, hashes)
            section_4(page, base)
            section_6(page, base)
            assert not errors, errors
        finally:
            browser.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
