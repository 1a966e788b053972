"""Security headers on every answer, errors and the 413 of the body limit included.

- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer`` everywhere.
- ``Cache-Control: no-store`` on every answer under ``/v1/`` (all of it is per caller, most
  of it patient data) and on the pages and links that show patient data (``/vard``,
  ``/mina``, ``/calendar/``), replacing whatever the route said. Other answers (the docs,
  static assets, health) keep their own caching.
- ``Strict-Transport-Security`` when the request's host is not loopback (127.0.0.0/8,
  ``localhost``, ``::1``), decided per request: development over plain HTTP on loopback
  must not pin a browser to HTTPS for ``localhost``.
- ``Content-Security-Policy``, unless the route set its own (a page with a nonce): the API's
  answers may load nothing (``default-src 'none'``), the docs page its own scripts and styles
  from ``/static``, other HTML pages only from this origin; none may be framed.
"""

from __future__ import annotations

import ipaddress

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI sets style attributes from script, hence 'unsafe-inline' for styles (not scripts).
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
NO_STORE_PREFIXES = ("/v1/", "/vard", "/mina", "/calendar/")
LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


def request_host(scope: Scope) -> str:
    """The host the request was addressed to, without port or brackets (lower case)."""
    host = ""
    for name, value in scope.get("headers", ()):
        if name == b"host":
            host = bytes(value).decode("latin-1").strip().lower()
            break
    else:
        server = scope.get("server")
        return str(server[0]).lower() if server else ""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def is_loopback(host: str) -> bool:
    """Whether a host name or address is this machine (no HSTS for it)."""
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SecurityHeadersMiddleware:
    """Add the security headers to every HTTP answer (see the module's docstring)."""

    def __init__(self, app: ASGIApp, *, hsts_max_age: int, docs_path: str | None) -> None:
        self.app = app
        self.hsts = f"max-age={hsts_max_age}" if hsts_max_age > 0 else None
        self.docs_path = docs_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on and add the security headers to its answer."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        no_store = path.startswith(NO_STORE_PREFIXES)
        hsts = self.hsts if self.hsts and not is_loopback(request_host(scope)) else None

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers.setdefault("Referrer-Policy", "no-referrer")
                if no_store:
                    headers["Cache-Control"] = "no-store"
                if hsts is not None:
                    headers["Strict-Transport-Security"] = hsts
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = self._csp(path, headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _csp(self, path: str, headers: MutableHeaders) -> str:
        if self.docs_path is not None and path == self.docs_path:
            return DOCS_CSP
        if headers.get("content-type", "").startswith("text/html"):
            return PAGE_CSP
        return API_CSP
