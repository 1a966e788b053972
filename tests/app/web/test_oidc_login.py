"""Production login to the pages: OpenID Connect, authorization code with PKCE, on both databases.

The issuer (tests/oidc_issuer.py) runs on loopback: ``/authorize`` approves at once as the
subject the test chose, ``/token`` refuses a used code or a verifier that does not match the
challenge. The browsers are the page tests' (tests/app/web/conftest.py), on an app in production
mode with that issuer configured; the seeded people log in with their handle as ``sub``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.auth.models import User
from app.config import Settings
from app.main import create_app
from app.web.sessions import COOKIE, PendingLogin, WebSession, csrf_token, decode, encode
from tests.app.web.conftest import Browser
from tests.oidc_issuer import IssuerKey, OidcIssuer, s256

NOT_FINISHED = "Inloggningen kunde inte slutföras"
NOT_VERIFIED = "Inloggningen kunde inte kontrolleras"
NO_ACCOUNT = "Du har inget konto i den här tjänsten"
ISSUER_DOWN = "Inloggningstjänsten svarar inte just nu"


@pytest.fixture
def issuer() -> Iterator[OidcIssuer]:
    with OidcIssuer() as running:
        running.next_subject = "eva"  # a seeded clinician: /vard is her start page
        yield running


def oidc_settings(settings: Settings, issuer: OidcIssuer) -> Settings:
    """Production: no development issuer, only the loopback one, with our client registered."""
    return settings.model_copy(
        update={
            "environment": "production",
            "auth_issuer": issuer.url,
            "auth_audience": issuer.audience,
            "auth_http_timeout_seconds": 2.0,
            "oidc_client_id": issuer.clients.client_id,
            "public_url": "http://127.0.0.1",
        }
    )


@pytest.fixture
def app(settings: Settings, issuer: OidcIssuer) -> Iterator[Any]:
    """The app in production with the loopback issuer (the page fixtures' browsers use it)."""
    application = create_app(oidc_settings(settings, issuer))
    yield application
    application.state.engine.dispose()


def _start(one: Browser, query: str = "") -> str:
    """Click "Logga in": the issuer's authorization URL the browser is sent to."""
    started = one.client.get("/login/oidc" + query, follow_redirects=False)
    assert started.status_code == 303, started.text[:500]
    return started.headers["location"]


def _approve(authorize_url: str) -> str:
    """The issuer approves: the callback path and query it sends the browser back to."""
    answer = httpx.get(authorize_url, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == "http://127.0.0.1/login/callback"
    return f"{back.path}?{back.query}"


def _signed_in(one: Browser) -> bool:
    return one.client.get("/vard", follow_redirects=False).status_code == 200


def _logins(session: Session, action: str = "login") -> list[str]:
    """Who logged in (or was refused), by handle, from the audit trail."""
    rows = session.scalars(
        select(AuditEvent.actor_handle).where(
            AuditEvent.relation == "session", AuditEvent.action == action
        )
    )
    return list(rows)


def test_the_issuer_signs_in_the_user_whose_subject_matches(
    browser: Callable[[], Browser], issuer: OidcIssuer, session: Session
) -> None:
    eva = browser()
    page = eva.client.get("/login?next=/vard/patients")
    assert page.status_code == 200
    assert 'href="/login/oidc?next=/vard/patients"' in page.text
    assert 'name="handle"' not in page.text  # no development login in production

    authorize_url = _start(eva, "?next=/vard/patients")
    sent = parse_qs(urlsplit(authorize_url).query)
    assert authorize_url.startswith(issuer.url + "/authorize?")
    assert sent["response_type"] == ["code"] and sent["client_id"] == ["egenvard-web"]
    assert sent["code_challenge_method"] == ["S256"] and sent["scope"] == ["openid profile"]
    assert sent["redirect_uri"] == ["http://127.0.0.1/login/callback"]
    assert len(sent["state"][0]) >= 32 and len(sent["nonce"][0]) >= 32
    assert not _signed_in(eva)

    back = eva.client.get(_approve(authorize_url), follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == "/vard/patients"
    assert _signed_in(eva)
    assert _logins(session) == ["eva"]
    # The token endpoint got the verifier whose S256 challenge went to /authorize.
    [token_request] = issuer.clients.token_requests
    assert s256(token_request["code_verifier"]) == sent["code_challenge"][0]
    assert token_request["redirect_uri"] == "http://127.0.0.1/login/callback"
    assert issuer.clients.token_refusals == []
    # The session is a fresh one: the cookie before login is not signed in.
    page = eva.client.get("/login")
    assert "Inloggad som" in page.text and "Eva" in page.text


def test_a_tampered_verifier_is_refused_by_the_issuer(
    app: Any, browser: Callable[[], Browser], issuer: OidcIssuer, session: Session
) -> None:
    eva = browser()
    callback = _approve(_start(eva))
    # Re-sign the cookie with another verifier (as only the server could): the issuer refuses.
    key = app.state.web_session_key
    data = decode(key, eva.client.cookies[COOKIE])
    assert data is not None and data["oidc"] is not None
    pending = PendingLogin(**data["oidc"])
    tampered = WebSession(sid=data["sid"], issued=data["iat"], seen=data["seen"])
    tampered.login = replace(pending, verifier=pending.verifier[::-1])
    eva.client.cookies.clear()
    eva.client.cookies.set(COOKIE, encode(key, tampered))
    answer = eva.client.get(callback, follow_redirects=False)
    assert answer.status_code == 400 and NOT_VERIFIED in answer.text
    assert issuer.clients.token_refusals == ["invalid_grant"]
    assert not _signed_in(eva) and _logins(session) == []


def test_a_wrong_or_missing_state_is_refused_before_the_code_is_used(
    browser: Callable[[], Browser], issuer: OidcIssuer, session: Session
) -> None:
    eva = browser()
    callback = _approve(_start(eva))
    path, query = callback.split("?")
    params = {k: v[0] for k, v in parse_qs(query).items()}
    state = params["state"]
    # Another first character ("x" + state[1:] was the same state whenever it began with x).
    wrong_state = ("y" if state[0] == "x" else "x") + state[1:]
    wrong = eva.client.get(path, params={**params, "state": wrong_state})
    assert wrong.status_code == 400 and NOT_FINISHED in wrong.text
    # The login under way is used up by the attempt: the right state no longer works either.
    again = eva.client.get(callback, follow_redirects=False)
    assert again.status_code == 400 and NOT_FINISHED in again.text
    # A callback in a browser that never started a login.
    stranger = browser()
    assert stranger.client.get(callback).status_code == 400
    assert issuer.clients.token_requests == []  # the code never reached the token endpoint
    assert not _signed_in(eva) and not _signed_in(stranger) and _logins(session) == []


def test_a_login_that_took_too_long_is_refused(
    browser: Callable[[], Browser], issuer: OidcIssuer
) -> None:
    from app.clock import clock, utcnow

    eva = browser()
    callback = _approve(_start(eva))
    clock.fixed = utcnow() + timedelta(minutes=11)
    answer = eva.client.get(callback)
    assert answer.status_code == 400 and NOT_FINISHED in answer.text
    assert issuer.clients.token_requests == []


def test_a_missing_code_or_a_cancelled_login_signs_no_one_in(
    browser: Callable[[], Browser], issuer: OidcIssuer
) -> None:
    eva = browser()
    callback = _approve(_start(eva))
    path, query = callback.split("?")
    state = parse_qs(query)["state"][0]
    answer = eva.client.get(path, params={"state": state})
    assert answer.status_code == 400 and "avbröts" in answer.text
    issuer.next_subject = None  # the user cancels at the issuer
    cancelled = eva.client.get(_approve(_start(eva)))
    assert cancelled.status_code == 400 and "avbröts" in cancelled.text
    assert not _signed_in(eva) and issuer.clients.token_requests == []


def test_an_unknown_or_closed_account_is_refused(
    browser: Callable[[], Browser], issuer: OidcIssuer, session: Session
) -> None:
    issuer.next_subject = "nobody-here"
    stranger = browser()
    answer = stranger.client.get(_approve(_start(stranger)))
    assert answer.status_code == 403 and NO_ACCOUNT in answer.text
    assert not _signed_in(stranger)
    # In English when the browser chose English (the session keeps the language).
    assert 'href="/login/oidc">Sign in</a>' in stranger.client.get("/login?lang=en").text
    answer = stranger.client.get(_approve(_start(stranger)))
    assert answer.status_code == 403 and "You have no account in this service" in answer.text

    session.execute(update(User).where(User.handle == "eva").values(active=False))
    issuer.next_subject = "eva"
    eva = browser()
    answer = eva.client.get(_approve(_start(eva)))
    assert answer.status_code == 403 and NO_ACCOUNT in answer.text
    assert not _signed_in(eva)
    assert _logins(session) == [] and _logins(session, "login_refused") == ["eva"]


def test_a_replayed_code_is_refused(
    browser: Callable[[], Browser], issuer: OidcIssuer, session: Session
) -> None:
    eva = browser()
    callback = _approve(_start(eva))
    before = eva.client.cookies[COOKIE]  # the cookie that holds the login under way
    assert eva.client.get(callback, follow_redirects=False).status_code == 303
    assert _signed_in(eva)
    # The same callback with the same cookie (state and verifier match): the code is used.
    replay = browser()
    replay.client.cookies.set(COOKIE, before)
    answer = replay.client.get(callback)
    assert answer.status_code == 400 and NOT_VERIFIED in answer.text
    assert issuer.clients.token_refusals == ["invalid_grant"]
    assert not _signed_in(replay) and _logins(session) == ["eva"]


@pytest.mark.parametrize(
    "claims",
    [
        {"nonce": "another-login"},
        {"nonce": None},
        {"aud": "someone-else"},
        {"iss": "https://idp.example"},
        {"ttl": timedelta(minutes=-5)},
        {"kid": "unpublished"},
    ],
    ids=["nonce", "no-nonce", "aud", "iss", "expired", "unknown-key"],
)
def test_an_id_token_that_does_not_hold_is_refused(
    browser: Callable[[], Browser], issuer: OidcIssuer, session: Session, claims: dict[str, Any]
) -> None:
    issuer.keys.append(IssuerKey.new("unpublished", "ES256"))  # signs, but is not in the JWKS
    issuer.id_token_claims = claims
    eva = browser()
    answer = eva.client.get(_approve(_start(eva)))
    assert answer.status_code == 400 and NOT_VERIFIED in answer.text
    assert issuer.clients.token_refusals == []  # the issuer answered; we refused its token
    assert not _signed_in(eva) and _logins(session) == []


def test_an_issuer_that_is_down_gives_a_clear_page(
    browser: Callable[[], Browser], issuer: OidcIssuer, session: Session
) -> None:
    issuer.down = True
    eva = browser()
    answer = eva.client.get("/login/oidc", follow_redirects=False)
    assert answer.status_code == 503 and ISSUER_DOWN in answer.text
    issuer.down = False
    callback = _approve(_start(eva))
    issuer.down = True  # down between the login at the issuer and the code exchange
    answer = eva.client.get(callback)
    assert answer.status_code == 503 and ISSUER_DOWN in answer.text
    issuer.down = False
    callback = _approve(_start(eva))
    issuer.stop()  # gone: the port refuses connections
    answer = eva.client.get(callback)
    assert answer.status_code == 503 and ISSUER_DOWN in answer.text
    assert not _signed_in(eva) and _logins(session) == []


def test_the_development_login_is_off_in_production(
    app: Any, browser: Callable[[], Browser], session: Session
) -> None:
    eva = browser()
    assert eva.client.get("/login").status_code == 200
    # The page has no form to take a token from: the session's own token, made as the server does.
    data = decode(app.state.web_session_key, eva.client.cookies[COOKIE])
    assert data is not None
    token = csrf_token(app.state.web_session_key, data["sid"])
    answer = eva.client.post("/login", data={"handle": "eva", "csrf_token": token})
    assert answer.status_code == 404
    assert not _signed_in(eva) and _logins(session) == []


@pytest.mark.parametrize("secret", ["s3cret", "not-the-secret"])
def test_a_confidential_client_authenticates_with_its_secret(
    settings: Settings, issuer: OidcIssuer, session: Session, secret: str
) -> None:
    issuer.clients.client_secret = "s3cret"
    configured = oidc_settings(settings, issuer).model_copy(update={"oidc_client_secret": secret})
    application = create_app(configured)
    eva = Browser(application)
    try:
        with eva.client:
            answer = eva.client.get(_approve(_start(eva)), follow_redirects=False)
            if secret == "s3cret":
                assert answer.status_code == 303 and _signed_in(eva)
                assert issuer.clients.token_refusals == [] and _logins(session) == ["eva"]
            else:
                assert answer.status_code == 400 and NOT_VERIFIED in answer.text
                assert issuer.clients.token_refusals == ["invalid_client"]
                assert not _signed_in(eva) and _logins(session) == []
    finally:
        application.state.engine.dispose()
