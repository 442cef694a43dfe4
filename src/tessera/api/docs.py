"""An offline API reference page rendered from the OpenAPI document (no CDN assets).

Swagger UI's files are not shipped with FastAPI and cannot be fetched here, so ``/docs`` is a
plain HTML page listing every operation with its parameters and examples.
"""

from __future__ import annotations

import html
from typing import Any

import orjson

METHODS = ("get", "post", "put", "patch", "delete")


def _example(content: dict[str, Any]) -> Any:
    for media in content.values():
        if "example" in media:
            return media["example"]
        schema = media.get("schema", {})
        if "examples" in schema:
            return schema["examples"][0]
    return None


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        resolved: dict[str, Any] = (
            spec.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1], {})
        )
        return resolved
    return schema


def operation_examples(spec: dict[str, Any], operation: dict[str, Any]) -> tuple[Any, Any]:
    """The example request body (or ``None``) and the example success response of an operation."""
    request = None
    body = operation.get("requestBody")
    if body:
        for media in body.get("content", {}).values():
            if "example" in media:
                request = media["example"]
            else:
                schema = _resolve(spec, media.get("schema", {}))
                if schema.get("examples"):
                    request = schema["examples"][0]
    response = None
    for status, resp in sorted(operation.get("responses", {}).items()):
        if str(status).startswith("2"):
            response = _example(resp.get("content", {}))
            break
    return request, response


def _pre(value: Any) -> str:
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    return f"<pre>{html.escape(text)}</pre>"


def render(spec: dict[str, Any]) -> str:
    """The HTML page for an OpenAPI document."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Tessera API</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}"
        "details{border:1px solid #ddd;border-radius:6px;margin:.4rem 0;padding:.4rem .8rem}"
        "summary{cursor:pointer}code.m{display:inline-block;width:4.5rem;font-weight:bold}"
        "pre{background:#f6f6f6;padding:.5rem;overflow:auto}</style></head><body>",
        f"<h1>{html.escape(spec.get('info', {}).get('title', 'API'))}</h1>",
        "<p>Machine-readable document: <a href='/openapi.json'>/openapi.json</a>. Send "
        "<code>x-sandbox-name</code> to pick a sandbox and <code>x-api-key</code> when keys are configured.</p>",
    ]
    groups: dict[str, list[str]] = {}
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            request, response = operation_examples(spec, operation)
            params = ", ".join(
                f"{html.escape(p['name'])} ({p['in']})"
                for p in operation.get("parameters", [])
                if p["in"] != "header"
            )
            entry = [
                f"<details><summary><code class='m'>{method.upper()}</code><code>{html.escape(path)}</code> "
                f"— {html.escape(operation.get('summary', ''))}</summary>",
                f"<p>{html.escape(operation.get('description', ''))}</p>",
            ]
            if params:
                entry.append(f"<p>Parameters: {params}</p>")
            if request is not None:
                entry.append("<p>Example request body:</p>" + _pre(request))
            if response is not None:
                entry.append("<p>Example response:</p>" + _pre(response))
            entry.append("</details>")
            tag = (operation.get("tags") or ["Other"])[0]
            groups.setdefault(tag, []).append("".join(entry))
    for tag, entries in groups.items():
        parts.append(f"<h2>{html.escape(tag)}</h2>")
        parts.extend(entries)
    parts.append("</body></html>")
    return "".join(parts)


def complete(spec: dict[str, Any]) -> dict[str, Any]:
    """Document what every sandbox-scoped operation may answer besides its own errors: 404 for a
    sandbox that does not exist (the ``x-sandbox-name`` header names it)."""
    not_found = {
        "description": "Unknown sandbox or object",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    problem = {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "status": {"type": "integer"},
            "title": {"type": "string"},
            "detail": {"type": "string"},
            "error_code": {"type": "string"},
            "report": {"type": "object"},
        },
    }
    spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = problem
    for path_item in spec.get("paths", {}).values():
        for method in METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            params = operation.get("parameters", [])
            if any(p.get("in") == "header" and p.get("name") == "x-sandbox-name" for p in params):
                operation["responses"].setdefault("404", not_found)
    return spec
