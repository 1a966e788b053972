"""Production login to the pages: OpenID Connect at the configured issuer (``app.auth.oidc``).

``GET /login/oidc`` keeps a new state, nonce and PKCE code verifier in the signed session cookie
and sends the browser to the issuer. ``GET /login/callback`` takes them back out (once: a
second use of the same callback finds nothing), checks the state, exchanges the code and signs
in the user the ID token's ``sub`` is linked to (a known person's first login links it, as for
bearer tokens). A failed login shows the login page with why (400, 403, or 503 while the
issuer cannot be reached) and signs no one in. Without a client id both go to the login page.
"""

from __future__ import annotations

import hmac
import logging
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.auth import repository as auth_repository
from app.auth.login import user_for_token
from app.auth.oidc import LoginFailed, LoginRequest, Reason, authorization_url, claims_for_code
from app.auth.policy import Actor
from app.clock import utcnow
from app.deps import SessionDep, SettingsDep, audit_actor
from app.errors import Unauthorized
from app.web import texts
from app.web.login import safe_next, show_login, start_page
from app.web.pages import WebSessionDep, see_other
from app.web.sessions import PendingLogin

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

_STATUS: dict[Reason, int] = {
    "denied": 400,
    "state": 400,
    "token": 400,
    "unknown_user": 403,
    "issuer_down": 503,
}


def _failed(
    request: Request, session: SessionDep, settings: SettingsDep, ws: WebSessionDep,
    reason: Reason,
) -> Response:  # fmt: skip
    message = texts.text(ws.lang, f"login_failed_{reason}")
    return show_login(request, session, settings, ws, error=message, status_code=_STATUS[reason])


@router.get("/login/oidc")
def start_login(
    request: Request, session: SessionDep, settings: SettingsDep, ws: WebSessionDep
) -> Response:
    """Begin a login at the issuer: the browser goes there with state, nonce and PKCE."""
    if not settings.oidc_login_enabled:
        return see_other("/login")  # the login page says how to log in here, if at all
    login = LoginRequest(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        verifier=secrets.token_urlsafe(64),  # 86 characters: within RFC 7636's 43 to 128
    )
    try:
        url = authorization_url(settings, request.app.state.signing_keys, login)
    except LoginFailed as exc:
        log.warning("login: %s", exc)
        return _failed(request, session, settings, ws, exc.reason)
    next_path = safe_next(request.query_params.get("next")) or ""
    ws.start_login(
        PendingLogin(login.state, login.nonce, login.verifier, next_path, utcnow().timestamp())
    )
    return RedirectResponse(url, status_code=303)


@router.get("/login/callback")
def finish_login(
    request: Request, session: SessionDep, settings: SettingsDep, ws: WebSessionDep
) -> Response:
    """Come back from the issuer: check the state, exchange the code, sign the user in."""
    if not settings.oidc_login_enabled:
        return see_other("/login")  # the login page says how to log in here, if at all
    pending = ws.take_login()
    query = request.query_params
    now = utcnow()
    state = query.get("state") or ""
    if (
        pending is None
        or not hmac.compare_digest(state.encode(), pending.state.encode())
        or now.timestamp() - pending.started > settings.oidc_login_minutes * 60
    ):
        return _failed(request, session, settings, ws, "state")
    code = query.get("code")
    if query.get("error") or not code:
        return _failed(request, session, settings, ws, "denied")
    login = LoginRequest(pending.state, pending.nonce, pending.verifier)
    try:
        claims = claims_for_code(settings, request.app.state.signing_keys, login, code, now)
    except LoginFailed as exc:
        log.warning("login: %s", exc)
        return _failed(request, session, settings, ws, exc.reason)
    try:
        user = user_for_token(session, claims, now)
    except Unauthorized:
        known = auth_repository.user_by_subject(session, claims.subject)
        if known is not None:  # an account that is closed: the attempt is on record
            audit_actor(
                session, Actor(user=known), "session", "login_refused", "GET /login/callback"
            )
        return _failed(request, session, settings, ws, "unknown_user")
    ws.sign_in(user.id, now.timestamp())
    audit_actor(session, Actor(user=user), "session", "login", "GET /login/callback")
    return see_other(pending.next or start_page(user))
