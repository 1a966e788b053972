"""The pages' session: a signed HttpOnly cookie, its idle timeout, logout, and the CSRF token.

The cookie holds a random session id, the signed-in user's id (none before login), when the
session began and when it was last used, the page language and a one-shot message. It is
signed (HMAC-SHA256) with a key derived from the service's secret material in ``var/``, so it
works across processes without a session table; what a signature cannot undo is kept here:

- **idle timeout**: a session unused for ``session_idle_minutes`` is over (the next request is
  sent to the login page), and none lives longer than ``session_max_hours``;
- **logout** ends the session id: a copy of the old cookie replayed later is refused. Ended ids
  are remembered in this process until they would have expired anyway (see ``EndedSessions``).

The CSRF token is an HMAC of the session id: a form or htmx request must carry the token of
its own session (a hidden field ``csrf_token`` or the header ``X-CSRF-Token``), so another
user's token, a token from before login (the id changes at login) or after logout is refused.

Only the page routes (``WEB_PREFIXES``) see the session; ``/v1`` never reads the cookie, so a
session can never authenticate an API call (the API reads only ``Authorization: Bearer``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any, Literal

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.clock import utcnow
from app.config import Settings
from app.headers import is_loopback, request_host
from app.keys import write_once

COOKIE = "egenvard_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
WEB_PREFIXES = ("/login", "/logout", "/vard", "/mina")
LANGUAGES = ("sv", "en")

State = Literal["new", "active", "expired", "ended"]


def session_key(settings: Settings) -> bytes:
    """The cookie's signing key: derived from the configured or generated session secret."""
    if settings.session_secret:
        base = settings.session_secret.encode()
    else:
        made = write_once(settings.var_dir / "session-key", lambda: secrets.token_hex(32).encode())
        base = made.strip()
    # A key of its own, so the secret is never used for two purposes.
    return hmac.new(base, b"egenvard web session v1", hashlib.sha256).digest()


def is_web_path(path: str) -> bool:
    """Whether a path is one of the pages (which use the session cookie)."""
    return any(path == p or path.startswith(p + "/") for p in WEB_PREFIXES)


@dataclass
class WebSession:
    """One browser's session as a request sees it; changes are written back to the cookie."""

    sid: str
    user_id: str | None = None
    issued: float = 0.0
    seen: float = 0.0
    lang: str = "sv"
    flash: str | None = None
    state: State = "new"
    # What the response must do with the cookie: write it again, or delete it.
    changed: bool = False
    clear: bool = False

    @property
    def signed_in(self) -> bool:
        """Whether a user is signed in on this session."""
        return self.user_id is not None and self.state == "active"

    def sign_in(self, user_id: str, now: float) -> None:
        """Start a signed-in session under a new id (the old id and its CSRF token end)."""
        self.sid = new_sid()
        self.user_id = user_id
        self.issued = self.seen = now
        self.state = "active"
        self.changed = True

    def set_flash(self, text: str) -> None:
        """A one-line message for the next page shown."""
        self.flash = text
        self.changed = True

    def pop_flash(self) -> str | None:
        """The waiting message, once."""
        text, self.flash = self.flash, None
        if text is not None:
            self.changed = True
        return text


def new_sid() -> str:
    """A random session id (128 bits)."""
    return secrets.token_urlsafe(16)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(key: bytes, ws: WebSession) -> str:
    """The cookie value: the session's fields, signed."""
    payload = json.dumps(
        {"sid": ws.sid, "uid": ws.user_id, "iat": ws.issued, "seen": ws.seen, "lang": ws.lang,
         "flash": ws.flash},
        separators=(",", ":"),
    ).encode()  # fmt: skip
    body = _b64(payload)
    signature = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def decode(key: bytes, value: str) -> dict[str, Any] | None:
    """The fields of a cookie value whose signature holds, else None."""
    body, _, signature = value.partition(".")
    expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(signature, expected):
        return None
    try:
        data = json.loads(_unb64(body))
    except ValueError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("sid"), str) else None


def csrf_token(key: bytes, sid: str) -> str:
    """The CSRF token of a session: only a page of this session can have it."""
    return _b64(hmac.new(key, b"csrf\0" + sid.encode(), hashlib.sha256).digest())


def csrf_valid(key: bytes, ws: WebSession, token: str | None) -> bool:
    """Whether a request's token is its own session's, on a session still in force."""
    if not token or ws.state not in ("new", "active") or ws.clear:
        return False
    return hmac.compare_digest(token, csrf_token(key, ws.sid))


class EndedSessions:
    """Session ids ended by logout, kept until they would have expired anyway.

    In this process only: with ``selfcare serve --workers N`` a logged-out cookie replayed to
    another worker stays usable there until its idle timeout (the cookie is HttpOnly, Secure off
    loopback, and the browser deletes it at logout). A shared store would close that.
    """

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def end(self, sid: str, until: float, now: float) -> None:
        """Remember that ``sid`` ended; forget ids whose time has passed."""
        with self._lock:
            self._until = {s: t for s, t in self._until.items() if t > now}
            self._until[sid] = until

    def ended(self, sid: str) -> bool:
        """Whether ``sid`` was ended by a logout."""
        with self._lock:
            return sid in self._until


def logout(ws: WebSession, ended: EndedSessions, settings: Settings, now: float) -> None:
    """End the session: its id is refused from now on and the browser deletes the cookie."""
    ended.end(ws.sid, now + settings.session_max_hours * 3600, now)
    ws.user_id = None
    ws.state = "ended"
    ws.clear = True


class WebSessionMiddleware:
    """Read the session cookie of a page request into ``request.state``; write it back after.

    A signed-in session's last use is written back on every answer (the idle timeout counts
    from it). Requests to anything but the pages pass through untouched.
    """

    def __init__(self, app: ASGIApp, settings: Settings, ended: EndedSessions) -> None:
        self.app = app
        self.key = session_key(settings)
        self.idle = settings.session_idle_minutes * 60
        self.max_age = settings.session_max_hours * 3600
        self.ended = ended

    def load(self, conn: HTTPConnection, now: float) -> WebSession:
        """The request's session: from a valid cookie, else a new one (not yet signed in)."""
        data = decode(self.key, conn.cookies.get(COOKIE, ""))
        if data is None:
            return WebSession(sid=new_sid(), issued=now, seen=now, changed=True)
        lang = data.get("lang") if data.get("lang") in LANGUAGES else "sv"
        uid = data.get("uid") if isinstance(data.get("uid"), str) else None
        issued, seen = float(data.get("iat") or 0), float(data.get("seen") or 0)
        ws = WebSession(sid=data["sid"], user_id=uid, issued=issued, seen=seen, lang=str(lang))
        flash = data.get("flash")
        ws.flash = flash if isinstance(flash, str) else None
        if self.ended.ended(ws.sid):
            ws.state = "ended"
        elif uid is None:
            ws.state = "new"
        elif now - seen > self.idle or now - issued > self.max_age:
            ws.state = "expired"
        else:
            ws.state = "active"
        if ws.state in ("ended", "expired"):
            # Keep the language; everything else starts over under a new id. The state stays,
            # so that this request is refused and the login page can say why.
            ws.sid, ws.user_id, ws.issued, ws.seen, ws.changed = new_sid(), None, now, now, True
        return ws

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Load the page session for a page request, and set or clear its cookie on the answer."""
        if scope["type"] != "http" or not is_web_path(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        now = utcnow().timestamp()
        ws = self.load(conn, now)
        scope.setdefault("state", {})["web_session"] = ws
        secure = not is_loopback(request_host(scope))

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if ws.clear:
                    headers.append("Set-Cookie", self._cookie("", secure, delete=True))
                elif ws.changed or ws.signed_in:
                    ws.seen = now
                    headers.append("Set-Cookie", self._cookie(encode(self.key, ws), secure))
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    @staticmethod
    def _cookie(value: str, secure: bool, *, delete: bool = False) -> str:
        parts = [f"{COOKIE}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
        if delete:
            parts.append("Max-Age=0")
        if secure:
            parts.append("Secure")
        return "; ".join(parts)
