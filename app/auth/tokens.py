"""Bearer tokens: the development issuer's, and verification of any issuer's (RS256, ES256)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import jwt

from app.auth.issuer import (
    ALGORITHMS,
    DEV_KEY_FILE,
    DEV_KID,
    SigningKeys,
    dev_jwks,
    dev_private_key,
)
from app.config import Settings
from app.errors import Unauthorized

__all__ = [
    "CLOCK_SKEW_SECONDS",
    "DEV_KEY_FILE",
    "DEV_KID",
    "SigningKeys",
    "TokenClaims",
    "dev_jwks",
    "dev_private_key",
    "mint_token",
    "verify_token",
]

CLOCK_SKEW_SECONDS = 30  # the default of Settings.auth_leeway_seconds


@dataclass(frozen=True)
class TokenClaims:
    """The verified claims the service uses."""

    subject: str
    care_unit_id: str | None
    personnummer: str | None = None  # from the configured claim, as the token has it
    hsa_id: str | None = None


def mint_token(
    settings: Settings,
    subject: str,
    *,
    now: datetime,
    care_unit_id: str | None = None,
    ttl: timedelta | None = None,
) -> str:
    """Sign a token for ``subject`` with the development issuer's key."""
    claims: dict[str, Any] = {
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "sub": subject,
        "iat": int(now.timestamp()),
        "exp": int((now + (ttl or timedelta(minutes=settings.token_ttl_minutes))).timestamp()),
    }
    if care_unit_id:
        claims["care_unit"] = care_unit_id
    return jwt.encode(
        claims, dev_private_key(settings), algorithm="ES256", headers={"kid": DEV_KID}
    )


@lru_cache(maxsize=4096)
def _signed_claims(token: str, key: Any, audience: str, issuer: str) -> Mapping[str, Any]:
    """The claims of a token whose signature, issuer and audience ``key`` verifies.

    Kept per token and key object: an app sends the same token with every sync (a backlog
    after an outage: many in a row), and the signature check was a twentieth of a small
    sync. Nothing is trusted longer than without the cache: the key is looked up for every
    request (a key the issuer withdrew is a new lookup, and a miss), and the times are
    checked against the clock each time by the caller. Failures are not kept.
    """
    return MappingProxyType(
        jwt.decode(
            token,
            key,
            algorithms=list(ALGORITHMS),
            audience=audience,
            issuer=issuer,
            options={
                "require": ["exp", "iss", "aud", "sub"],
                # checked by verify_token against the service clock (frozen in tests)
                "verify_iat": False,
                "verify_exp": False,
                "verify_nbf": False,
            },
        )
    )


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def verify_token(
    settings: Settings,
    token: str,
    *,
    now: datetime,
    keys: SigningKeys | None = None,
    fetch: bool = True,
) -> TokenClaims:
    """Verify signature (RS256/ES256), issuer, audience, exp, nbf, iat and lifetime.

    Times are checked against the service clock with ``auth_leeway_seconds``. ``iat`` is
    optional; a token living longer than ``token_max_lifetime_minutes`` (from ``iat``, or
    from now without it, to ``exp``) is refused, whoever signed it. ``keys`` is the app's
    key cache (a fresh one without); ``fetch=False`` raises ``KeysNotCached`` rather than
    asking the issuer (for callers on the event loop).
    """
    keys = keys or SigningKeys(settings)
    leeway = settings.auth_leeway_seconds
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") not in ALGORITHMS:
            raise Unauthorized("The token's algorithm is not accepted.")
        kid = header.get("kid")
        key = keys.key_for(kid if isinstance(kid, str) else None, now, fetch=fetch)
        claims = _signed_claims(token, key, settings.auth_audience, settings.auth_issuer)
    except jwt.PyJWTError as exc:
        raise Unauthorized("The token is not valid.") from exc
    at = now.timestamp()
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp < at - leeway:
        raise Unauthorized("The token has expired.")
    nbf = claims.get("nbf")
    if nbf is not None and (not isinstance(nbf, int | float) or nbf > at + leeway):
        raise Unauthorized("The token is not valid yet.")
    iat = claims.get("iat")
    if iat is not None and (not isinstance(iat, int | float) or iat > at + leeway):
        raise Unauthorized("The token is issued in the future.")
    start = iat if isinstance(iat, int | float) else at
    if exp - start > settings.token_max_lifetime_minutes * 60:
        raise Unauthorized("The token lives longer than this service allows.")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise Unauthorized("The token has no subject.")
    return TokenClaims(
        subject=subject,
        care_unit_id=_optional_str(claims.get("care_unit")),
        personnummer=_optional_str(claims.get(settings.auth_personnummer_claim)),
        hsa_id=_optional_str(claims.get(settings.auth_hsa_id_claim)),
    )
