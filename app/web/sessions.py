"""The pages' session: a signed HttpOnly cookie, its idle timeout, logout, and the CSRF token.

The cookie holds a random session id, the signed-in user's id (none before login), when the
session began and when it was last used, the page language, a one-shot message and, while an
OpenID Connect login is under way, its state, nonce and code verifier (``PendingLogin``). It is
signed (HMAC-SHA256) with a key derived from the service's secret material in ``var/``, so it
works across processes without a table of sessions; what a signature cannot undo is kept here:

- **idle timeout**: a session unused for ``session_idle_minutes`` is over (the next request is
  sent to the login page), and none lives longer than ``session_max_hours``;
- **logout** ends the session id: a copy of the old cookie replayed later is refused, by every
  process. Ended ids are kept in the database (``web_sessions_ended``) until they would have
  expired anyway; each page request with a cookie looks its id up there (one primary-key read).

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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import anyio
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth import repository as auth_repository
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


@dataclass(frozen=True)
class PendingLogin:
    """An OpenID Connect login under way: what its callback must find again in the cookie."""

    state: str
    nonce: str
    verifier: str  # the PKCE code verifier; the cookie is HttpOnly and only ever sent to us
    next: str
    started: float


def _pending_login(value: object) -> PendingLogin | None:
    if not isinstance(value, dict):
        return None
    fields = ("state", "nonce", "verifier", "next")
    if not all(isinstance(value.get(f), str) for f in fields):
        return None
    started = value.get("started")
    if not isinstance(started, int | float):
        return None
    state, nonce, verifier, next_path = (str(value[f]) for f in fields)
    return PendingLogin(state, nonce, verifier, next_path, float(started))


@dataclass
class WebSession:
    """One browser's session as a request sees it; changes are written back to the cookie."""

    sid: str
    user_id: str | None = None
    issued: float = 0.0
    seen: float = 0.0
    lang: str = "sv"
    flash: str | None = None
    login: PendingLogin | None = None
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
        self.login = None
        self.changed = True

    def start_login(self, pending: PendingLogin) -> None:
        """Remember an OpenID Connect login under way (one at a time: a new one replaces it)."""
        self.login = pending
        self.changed = True

    def take_login(self) -> PendingLogin | None:
        """The login under way, once: its state and code verifier cannot be used twice."""
        pending, self.login = self.login, None
        if pending is not None:
            self.changed = True
        return pending

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
         "flash": ws.flash, "oidc": asdict(ws.login) if ws.login is not None else None},
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


def logout(ws: WebSession, session: Session, settings: Settings, now: float) -> None:
    """End the session: its id is refused from now on and the browser deletes the cookie."""
    expires = datetime.fromtimestamp(now + settings.session_max_hours * 3600, tz=UTC)
    auth_repository.end_web_session(session, ws.sid, expires, datetime.fromtimestamp(now, tz=UTC))
    ws.user_id = None
    ws.state = "ended"
    ws.clear = True


def ended_in(factory: sessionmaker[Session]) -> Callable[[str], bool]:
    """Whether a session id was ended by logout, as recorded in the database of ``factory``."""

    def ended(sid: str) -> bool:
        with factory() as session:
            return auth_repository.web_session_ended(session, sid)

    return ended


class WebSessionMiddleware:
    """Read the session cookie of a page request into ``request.state``; write it back after.

    A signed-in session's last use is written back on every answer (the idle timeout counts
    from it). Requests to anything but the pages pass through untouched.
    """

    def __init__(self, app: ASGIApp, settings: Settings, ended: Callable[[str], bool]) -> None:
        self.app = app
        self.key = session_key(settings)
        self.idle = settings.session_idle_minutes * 60
        self.max_age = settings.session_max_hours * 3600
        self.ended = ended

    def load(self, data: dict[str, Any] | None, ended: bool, now: float) -> WebSession:
        """The request's session: from a valid cookie, else a new one (not yet signed in)."""
        if data is None:
            return WebSession(sid=new_sid(), issued=now, seen=now, changed=True)
        lang = data.get("lang") if data.get("lang") in LANGUAGES else "sv"
        uid = data.get("uid") if isinstance(data.get("uid"), str) else None
        issued, seen = float(data.get("iat") or 0), float(data.get("seen") or 0)
        ws = WebSession(sid=data["sid"], user_id=uid, issued=issued, seen=seen, lang=str(lang))
        flash = data.get("flash")
        ws.flash = flash if isinstance(flash, str) else None
        ws.login = _pending_login(data.get("oidc"))
        if ended:
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
            ws.login = None
        return ws

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Load the page session for a page request, and set or clear its cookie on the answer."""
        if scope["type"] != "http" or not is_web_path(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        now = utcnow().timestamp()
        data = decode(self.key, conn.cookies.get(COOKIE, ""))
        # A database read: in a worker thread, never on the event loop.
        ended = data is not None and await anyio.to_thread.run_sync(self.ended, data["sid"])
        ws = self.load(data, ended, now)
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
