"""CORS for ``/v1``: browser apps on the configured origins may call the API.

Only exact origins from ``SELFCARE_CORS_ORIGINS`` (none by default: no browser app on another
origin may call). Preflights are answered before authentication. Credentials are never
allowed: the API takes bearer tokens, not cookies, so a wildcard origin can never be combined
with them. Other paths (pages, health, metrics) get no CORS headers at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

API_PREFIX = "/v1/"
ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Accept-Language", "Idempotency-Key")
EXPOSED_HEADERS = ("Retry-After", "Location")
PREFLIGHT_MAX_AGE_SECONDS = 600


class ApiCorsMiddleware:
    """Starlette's CORS middleware, for ``/v1`` paths only."""

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self.app = app
        self.cors = (
            CORSMiddleware(
                app,
                allow_origins=list(origins),
                allow_methods=list(ALLOWED_METHODS),
                allow_headers=list(ALLOWED_HEADERS),
                expose_headers=list(EXPOSED_HEADERS),
                allow_credentials=False,
                max_age=PREFLIGHT_MAX_AGE_SECONDS,
            )
            if origins
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer ``/v1`` requests (and their preflights) with CORS; pass others on."""
        if (
            self.cors is not None
            and scope["type"] == "http"
            and str(scope.get("path", "")).startswith(API_PREFIX)
        ):
            await self.cors(scope, receive, send)
            return
        await self.app(scope, receive, send)
