"""Login to the pages with OpenID Connect: the authorization code flow with PKCE (S256).

authlib builds the authorization request (state, nonce, code challenge), exchanges the code
with its verifier at the issuer's token endpoint, and validates the ID token: its signature
with the issuer's key from the app's key cache (``SigningKeys``, the same JWKS the API trusts),
then iss, aud (our client id), exp, iat and nonce against the service clock. The endpoints come
from the issuer's discovery document. Every failure is a ``LoginFailed`` with its reason, so
the page can say what went wrong; nothing here signs anyone in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from authlib.jose import JsonWebToken
from authlib.jose.errors import JoseError
from authlib.oidc.core import CodeIDToken

from app.auth.issuer import ALGORITHMS, IssuerError, SigningKeys
from app.auth.tokens import TokenClaims
from app.config import Settings
from app.errors import ServiceUnavailable, Unauthorized

Reason = Literal["denied", "state", "token", "issuer_down", "unknown_user"]

# Only the signature algorithms the API accepts: never "none", never HS256 with a public key.
_ID_TOKENS = JsonWebToken(list(ALGORITHMS))


class LoginFailed(Exception):
    """A login that cannot go on; ``reason`` says why (the page's message follows from it)."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: Reason = reason


@dataclass(frozen=True)
class LoginRequest:
    """What one login is bound to: its state, nonce and PKCE code verifier."""

    state: str
    nonce: str
    verifier: str


def _endpoint(keys: SigningKeys, name: str) -> str:
    try:
        url = keys.discovery().get(name)
    except IssuerError as exc:
        raise LoginFailed("issuer_down", str(exc)) from exc
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise LoginFailed("issuer_down", f"discovery has no http(s) {name}")
    return url


def _client(settings: Settings) -> OAuth2Client:
    secret = settings.oidc_client_secret or None
    return OAuth2Client(
        client_id=settings.oidc_client_id,
        client_secret=secret,
        # Without a secret we are a public client: PKCE alone binds the code to this browser.
        token_endpoint_auth_method="client_secret_basic" if secret else "none",
        scope=settings.oidc_scopes,
        redirect_uri=settings.oidc_callback_url,
        code_challenge_method="S256",
        timeout=settings.auth_http_timeout_seconds,
    )


def authorization_url(settings: Settings, keys: SigningKeys, login: LoginRequest) -> str:
    """The issuer's authorization URL for this login (code flow, PKCE S256, state, nonce)."""
    endpoint = _endpoint(keys, "authorization_endpoint")
    with _client(settings) as client:
        url, _ = client.create_authorization_url(
            endpoint, state=login.state, nonce=login.nonce, code_verifier=login.verifier
        )
    return str(url)


def claims_for_code(
    settings: Settings, keys: SigningKeys, login: LoginRequest, code: str, now: datetime
) -> TokenClaims:
    """Exchange the code (with the login's verifier) and return the ID token's checked claims."""
    endpoint = _endpoint(keys, "token_endpoint")
    try:
        with _client(settings) as client:
            token: dict[str, Any] = client.fetch_token(
                endpoint, code=code, code_verifier=login.verifier
            )
    except OAuthError as exc:  # the issuer refused: a used, wrong or expired code or verifier
        raise LoginFailed("token", f"token endpoint: {exc}") from exc
    except httpx.HTTPError as exc:
        raise LoginFailed("issuer_down", f"{type(exc).__name__}: {exc}") from exc
    except ValueError as exc:  # not JSON
        raise LoginFailed("token", "the token endpoint's answer is not JSON") from exc
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise LoginFailed("token", "no id_token in the token answer")
    return verify_id_token(settings, keys, id_token, login.nonce, now)


def verify_id_token(
    settings: Settings, keys: SigningKeys, id_token: str, nonce: str, now: datetime
) -> TokenClaims:
    """The ID token's claims once signature, iss, aud, exp, iat and nonce hold."""

    def key_for(header: dict[str, Any], _payload: Any) -> Any:
        kid = header.get("kid")
        return keys.key_for(kid if isinstance(kid, str) else None, now).key

    client_id = settings.oidc_client_id
    try:
        claims = _ID_TOKENS.decode(
            id_token,
            key_for,
            claims_cls=CodeIDToken,
            claims_options={
                "iss": {"essential": True, "value": settings.auth_issuer},
                "aud": {"essential": True, "value": client_id},
                "nonce": {"essential": True},
            },
            claims_params={"nonce": nonce, "client_id": client_id},
        )
        claims.validate(now=int(now.timestamp()), leeway=settings.auth_leeway_seconds)
    except ServiceUnavailable as exc:
        raise LoginFailed("issuer_down", "the issuer's keys cannot be fetched") from exc
    except (Unauthorized, JoseError, ValueError) as exc:
        raise LoginFailed("token", f"ID token: {exc}") from exc
    lifetime = claims["exp"] - claims["iat"]
    if lifetime > settings.token_max_lifetime_minutes * 60:
        raise LoginFailed("token", "the ID token lives longer than this service allows")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise LoginFailed("token", "the ID token has no subject")
    return TokenClaims(
        subject=subject,
        care_unit_id=_text(claims.get("care_unit")),
        personnummer=_text(claims.get(settings.auth_personnummer_claim)),
        hsa_id=_text(claims.get(settings.auth_hsa_id_claim)),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
