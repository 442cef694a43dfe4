"""OpenAPI document and the offline /docs page."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from tessera.api.docs import operation_examples

pytestmark = pytest.mark.anyio


def test_every_operation_has_examples_and_summary(app: FastAPI) -> None:
    spec = app.openapi()
    count = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            request, response = operation_examples(spec, operation)
            body_needed = "requestBody" in operation
            assert not body_needed or request is not None, f"{method} {path}: no request example"
            success = next(v for k, v in sorted(operation["responses"].items()) if str(k).startswith("2"))
            empty_body = success["description"] == "Empty body" and not success.get("content")
            assert response is not None or empty_body, f"{method} {path}: no response example"
            assert operation.get("summary"), f"{method} {path}: no summary"
            count += 1
    assert count >= 12


def test_create_app_docstring_lists_every_route(app: FastAPI) -> None:
    from tessera.api.app import create_app

    doc = create_app.__doc__ or ""
    for path in app.openapi()["paths"]:
        assert path in doc, f"{path} missing from create_app's docstring"


async def test_docs_page_is_offline_html(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/data/foundation/catalog/dataSets" in page.text
    assert not re.search(r"<(script|link)[^>]+(src|href)=['\"]https?://", page.text)
    spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")


async def test_landing_links_to_docs(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200 and "/docs" in page.text
