"""Request-scoped helpers shared by the routers: the platform, the sandbox, the caller's key,
JSON bodies, and the OpenAPI metadata every operation carries (examples and error responses)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Request, Response

from tessera.api.errors import JsonResponse
from tessera.api.keys import ApiKey
from tessera.catalog import DEFAULT_SANDBOX
from tessera.errors import InvalidInput
from tessera.platform import Platform, Sandbox


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def get_key(request: Request) -> ApiKey | None:
    key: ApiKey | None = request.scope.get("state", {}).get("api_key")
    return key


async def get_sandbox(
    request: Request,
    x_sandbox_name: Annotated[
        str | None,
        Header(alias="x-sandbox-name", description="Sandbox to act on; the default `prod` when omitted."),
    ] = None,
) -> Sandbox:
    # async on purpose: opening an already-open sandbox is a dict lookup, not worth a thread hop.
    return get_platform(request).sandbox(x_sandbox_name or DEFAULT_SANDBOX)


MAX_OFFSET = 2**31 - 1
"""Upper bound of paging offsets and page numbers: larger ones page past any data, and echoing an
integer beyond 64 bits back in a response cannot be encoded (schemathesis found that as a 500)."""


def sandbox_of(request: Request) -> Sandbox:
    """The sandbox ``x-sandbox-name`` names, without FastAPI's dependency machinery: hot routes
    call this directly (dependency solving cost about a third of a profile lookup) and document
    the header with :data:`SANDBOX_HEADER`."""
    return get_platform(request).sandbox(request.headers.get("x-sandbox-name") or DEFAULT_SANDBOX)


def optional_param(name: str, where: str, description: str) -> dict[str, Any]:
    """OpenAPI entry of an optional string parameter a route reads itself (see :func:`op`)."""
    return {
        "name": name,
        "in": where,
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


SANDBOX_HEADER = optional_param(
    "x-sandbox-name", "header", "Sandbox to act on; the default `prod` when omitted."
)

SandboxDep = Annotated[Sandbox, Depends(get_sandbox)]
PlatformDep = Annotated[Platform, Depends(get_platform)]
KeyDep = Annotated[ApiKey | None, Depends(get_key)]


def parse_json(raw: bytes) -> Any:
    """Decode a request body, naming the line and column of a syntax error.

    >>> parse_json(b'{"a": 1}')
    {'a': 1}
    """
    if not raw.strip():
        raise InvalidInput("A JSON body is required", path="body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"Malformed JSON: {exc.msg}", path=f"body:{exc.lineno}:{exc.colno}") from exc


def json_object(value: Any, path: str = "body") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput("Expected a JSON object", path=path)
    return value


def ok(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse(content, status_code=status, headers=headers)


def empty(status: int = 200) -> Response:
    """A response with no body (the reference answers several writes this way)."""
    return Response(status_code=status)


_PROBLEM = {
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
_GATEWAY = {"type": "object", "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}}}
_ERROR_TEXT = {
    400: "Malformed request (the report names the field path)",
    401: "No or unknown API key (gateway shape)",
    403: "The API key may not use this sandbox (gateway shape)",
    404: "Unknown sandbox or object",
    409: "Conflict with the current state",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Well-formed but not allowed",
    429: "Rate limit exceeded",
}


def _error_content(status: int) -> dict[str, Any]:
    schema = {"anyOf": [_PROBLEM, _GATEWAY]} if status in (401, 403) else _PROBLEM
    return {"description": _ERROR_TEXT[status], "content": {"application/json": {"schema": schema}}}


def schema_of(example: Any) -> dict[str, Any]:
    """A JSON Schema that ``example`` and every response shaped like it satisfy: the types of the
    documented fields, nothing required, other fields allowed (examples show the shape, not every
    key), scalars nullable. ``null`` in an example constrains nothing; list items that differ in
    type leave the differing part unconstrained.

    >>> schema_of({"id": "a", "n": 1, "tags": [1, "x"]})["properties"]["tags"]
    {'type': 'array', 'items': {}}
    """
    # scalars may be null: optional fields of the reference shapes are often sent as null
    if isinstance(example, bool):
        return {"type": ["boolean", "null"]}
    if isinstance(example, int):
        return {"type": ["integer", "null"]}
    if isinstance(example, float):
        return {"type": ["number", "null"]}
    if isinstance(example, str):
        return {"type": ["string", "null"]}
    if isinstance(example, list):
        if not example:
            return {"type": "array"}
        items = schema_of(example[0])
        for other in example[1:]:
            items = _either(items, schema_of(other))
        return {"type": "array", "items": items}
    if isinstance(example, dict):
        return {"type": "object", "properties": {k: schema_of(v) for k, v in example.items()}}
    return {}


def _either(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """A schema both example items satisfy (list items differ per element, e.g. settings)."""
    if a.get("type") != b.get("type") or not a or not b:
        return {}
    if a["type"] == "object":
        props = dict(a["properties"])
        for k, v in b["properties"].items():
            props[k] = _either(props[k], v) if k in props else v
        return {"type": "object", "properties": props}
    if a["type"] == "array":
        if "items" not in a or "items" not in b:
            return {"type": "array"}
        return {"type": "array", "items": _either(a["items"], b["items"])}
    return a


def op(
    example: Any,
    *,
    status: int = 200,
    body: Any = None,
    errors: tuple[int, ...] = (400, 404, 422),
    summary: str | None = None,
    body_required: bool = True,
    description: str = "OK",
    extra: dict[int, dict[str, Any]] | None = None,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Route-decorator keyword arguments documenting one operation.

    Args:
        example: an example response body (``None`` for an empty body).
        status: the success status.
        body: an example JSON request body, for routes that read the raw body themselves.
        errors: documented error statuses besides the gateway's 401/403/415/429.
        summary: one line for the operation list.
        body_required: whether the documented request body is required.
        description: what the success response means.
        extra: more documented responses (e.g. ``{204: {"description": ...}}``).
        parameters: parameters the route reads itself rather than declaring them (hot routes:
            see :func:`sandbox_of`), so the OpenAPI document still lists them.
    """
    content: dict[str, Any] = (
        {"application/json": {"schema": schema_of(example), "example": example}}
        if example is not None
        else {}
    )
    if example is None and description == "OK":
        description = "Empty body"
    responses: dict[int | str, dict[str, Any]] = {status: {"description": description, "content": content}}
    for code in sorted({*errors, 401, 403, 415, 429}):
        responses[code] = _error_content(code)
    for code, doc in (extra or {}).items():
        responses[code] = doc
    response_class = JsonResponse if example is not None else Response
    kwargs: dict[str, Any] = {"status_code": status, "responses": responses, "response_class": response_class}
    if summary:
        kwargs["summary"] = summary
    if body is not None:
        kwargs["openapi_extra"] = {
            "requestBody": {
                "required": body_required,
                # the example's shape, so generated requests (schemathesis) reach past the first check
                "content": {"application/json": {"schema": schema_of(body), "example": body}},
            }
        }
    if parameters:
        kwargs.setdefault("openapi_extra", {})["parameters"] = parameters
    return kwargs
