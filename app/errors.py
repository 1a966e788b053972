"""Errors that carry their HTTP status, rendered as RFC 9457 problem+json.

AppError
 ├── BadRequest (400)
 ├── Unauthorized (401)
 ├── NotFound (404)         also every id the caller may not see
 ├── RequestTimeout (408)   a body that arrived too slowly
 ├── Conflict (409)
 ├── Gone (410)
 ├── PayloadTooLarge (413)
 ├── Unprocessable (422)    carries ``errors: [{loc, code, message}]``
 ├── TooManyRequests (429)  carries ``retry_after`` seconds
 └── ServiceUnavailable (503) carries ``retry_after`` seconds (e.g. the token issuer is down)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# The one model of ``{loc, code, message}``: sync.wire's, shared by the per-item results of
# an ingest and by the ``errors`` of a 422 (app/openapi.py documents the same three keys).
from sync.wire import ItemErrorOut as ErrorItem

PROBLEM_JSON = "application/problem+json"

__all__ = [
    "PROBLEM_JSON",
    "AppError",
    "BadRequest",
    "Conflict",
    "ErrorItem",
    "Gone",
    "NotFound",
    "PayloadTooLarge",
    "RequestTimeout",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "Unprocessable",
]


class AppError(Exception):
    """A failure the caller can act on; ``status`` is its HTTP status."""

    status: int = 500
    title: str = "Internal Server Error"

    def __init__(
        self,
        detail: str = "",
        *,
        errors: Sequence[ErrorItem | Mapping[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        # Dict literals are accepted and checked here, so every error has the one shape.
        self.errors = [ErrorItem.model_validate(e) for e in errors] if errors is not None else None
        self.headers = headers or {}

    def problem(self) -> dict[str, Any]:
        """The problem+json body."""
        body: dict[str, Any] = {
            "type": f"https://egenvard.example/problems/{self.status}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            body["errors"] = [e.model_dump() for e in self.errors]
        return body


class BadRequest(AppError):
    """400: a request that cannot be read (bad JSON, path, query or cursor)."""

    status, title = 400, "Bad Request"


class Unauthorized(AppError):
    """401: no valid bearer token; the answer asks for one."""

    status, title = 401, "Unauthorized"

    def __init__(self, detail: str = "A valid bearer token is required.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class NotFound(AppError):
    """404: no such resource, or one the caller may not see."""

    status, title = 404, "Not Found"

    def __init__(self, detail: str = "No such resource.") -> None:
        super().__init__(detail)


class RequestTimeout(AppError):
    """408: a body that arrived too slowly."""

    status, title = 408, "Request Timeout"


class Conflict(AppError):
    """409: the change clashes with the current state (a resolved flag, a cancelled goal)."""

    status, title = 409, "Conflict"


class Gone(AppError):
    """410: what the request points at is no longer kept (an expired feed cursor)."""

    status, title = 410, "Gone"


class PayloadTooLarge(AppError):
    """413: a body larger than its cap."""

    status, title = 413, "Payload Too Large"


class UnsupportedMediaType(AppError):
    """415: a body in a content type the endpoint does not take."""

    status, title = 415, "Unsupported Media Type"


class Unprocessable(AppError):
    """422: a well-formed request whose content is invalid; ``errors`` says where."""

    status, title = 422, "Unprocessable Content"


class TooManyRequests(AppError):
    """429: over a rate limit; ``Retry-After`` says when to try again."""

    status, title = 429, "Too Many Requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class ServiceUnavailable(AppError):
    """503: a service we depend on is down; ``Retry-After`` says when to try again."""

    status, title = 503, "Service Unavailable"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
