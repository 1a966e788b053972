"""The OpenAPI schema, completed: problem+json answers and the bearer scheme on every operation.

FastAPI documents only each route's success and its 422 (as plain JSON). The service answers
more, always as RFC 9457 problem+json (app/errors.py, app/main.py, app/limits.py): every
operation lists the statuses below with the shared ``Problem`` schema, so clients and
schemathesis (AT-19) see every answer documented. Every ``/v1`` operation requires a bearer
token (``security``); the others (health, the schema) do not.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.errors import PROBLEM_JSON

# Status -> what it means, for every /v1 operation.
API_PROBLEMS: dict[int, str] = {
    400: "Malformed request: JSON that does not parse, a bad cursor.",
    401: "No valid bearer token.",
    403: "The caller's role may not do this.",
    404: "No such resource, or one the caller may not see (answered alike).",
    409: "Conflicts with the current state.",
    410: "A change-feed cursor too old to serve: read again from the start.",
    413: "The body is too large (refused before it is buffered).",
    415: "The body's media type is not accepted.",
    422: "The request is not valid; `errors` says where.",
    429: "Too many requests (or failed attempts); see `Retry-After`.",
    503: "The database is busy or unavailable; nothing was saved. See `Retry-After`.",
}
# Operations outside /v1 (health, the schema) take no token and no body.
PUBLIC_PROBLEMS: dict[int, str] = {
    413: API_PROBLEMS[413],
    503: API_PROBLEMS[503],
}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem: every error answer of this service.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "code", "message"],
                "properties": {
                    "loc": {"type": "string"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
BEARER = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the problem answers and the bearer requirement to a generated schema (in place)."""
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    components.setdefault("securitySchemes", {})["bearer"] = BEARER
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in schema.get("paths", {}).items():
        is_api = path.startswith("/v1/")
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in (API_PROBLEMS if is_api else PUBLIC_PROBLEMS).items():
                # FastAPI's own 422 says application/json and HTTPValidationError: replace it.
                responses[str(status)] = {"description": description, "content": problem}
            if not is_api and "422" in responses:
                # A public route with a path parameter (the calendar feed's token) gets one too.
                responses["422"] = {"description": API_PROBLEMS[422], "content": problem}
            if is_api:
                operation["security"] = [{"bearer": []}]
    unused = ("HTTPValidationError", "ValidationError")
    if not any(f"#/components/schemas/{name}" in str(schema["paths"]) for name in unused):
        for name in unused:
            components["schemas"].pop(name, None)
    return schema


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the completed schema (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    openapi_version=app.openapi_version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
