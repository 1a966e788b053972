"""ES256 bearer tokens: the development issuer, and verification against a configured JWKS."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.config import Settings
from app.errors import Unauthorized
from app.keys import load_or_create_p256

DEV_KEY_FILE = "dev-issuer-key.pem"
DEV_KID = "selfcare-dev-1"
CLOCK_SKEW_SECONDS = 30


@dataclass(frozen=True)
class TokenClaims:
    """The verified claims the service uses."""

    subject: str
    care_unit_id: str | None


def _dev_key_path(settings: Settings) -> Path:
    return settings.var_dir / DEV_KEY_FILE


def dev_private_key(settings: Settings) -> ec.EllipticCurvePrivateKey:
    """The development issuer's P-256 key, generated into ``var/`` on first use."""
    return _load_or_create_key(_dev_key_path(settings))


@cache
def _load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    loaded = serialization.load_pem_private_key(load_or_create_p256(path), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise RuntimeError(f"{path} is not an EC private key")
    return loaded


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


def dev_jwks(settings: Settings) -> dict[str, Any]:
    """The development issuer's public key as a JWKS document."""
    public = dev_private_key(settings).public_key()
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public))
    jwk.update({"kid": DEV_KID, "use": "sig", "alg": "ES256"})
    return {"keys": [jwk]}


@cache
def _jwks_from_file(path: Path) -> jwt.PyJWKSet:
    return jwt.PyJWKSet.from_json(path.read_text())


def _verification_key(settings: Settings, kid: str | None) -> Any:
    if settings.auth_jwks_file is not None:
        keyset = _jwks_from_file(settings.auth_jwks_file)
        for key in keyset.keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise Unauthorized("Unknown signing key.")
    if settings.dev_issuer_enabled:
        return dev_private_key(settings).public_key()
    raise Unauthorized("No token issuer is configured.")


def verify_token(settings: Settings, token: str, *, now: datetime) -> TokenClaims:
    """Verify signature (ES256 only), issuer, audience, expiry and lifetime; return the claims.

    ``iat`` is required: a token issued further ahead than the clock skew, or living longer
    than ``token_max_lifetime_minutes`` from ``iat`` to ``exp``, is refused, whoever signed it.
    """
    try:
        header = jwt.get_unverified_header(token)
        key = _verification_key(settings, header.get("kid"))
        claims = jwt.decode(
            token,
            key,
            algorithms=["ES256"],
            audience=settings.auth_audience,
            issuer=settings.auth_issuer,
            options={
                "require": ["exp", "iat", "iss", "aud", "sub"],
                "verify_iat": False,
                "verify_exp": False,  # checked below against the service clock
            },
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized("The token is not valid.") from exc
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp < now.timestamp() - CLOCK_SKEW_SECONDS:
        raise Unauthorized("The token has expired.")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or iat > now.timestamp() + CLOCK_SKEW_SECONDS:
        raise Unauthorized("The token is issued in the future.")
    if exp - iat > settings.token_max_lifetime_minutes * 60:
        raise Unauthorized("The token lives longer than this service allows.")
    care_unit = claims.get("care_unit")
    return TokenClaims(
        subject=str(claims["sub"]),
        care_unit_id=str(care_unit) if isinstance(care_unit, str) else None,
    )
