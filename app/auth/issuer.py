"""The token issuer's signing keys: a JWKS file, OpenID Connect discovery, or the dev key.

Discovered keys are cached per app. They are fetched on the first token, again when a token
names a ``kid`` the cache does not hold (a rotation), and again once they are older than
``auth_jwks_max_age_seconds`` (so a key the issuer withdrew stops being trusted). Fetches,
successful or not, are at most one per ``auth_jwks_refresh_seconds``: a flood of tokens with
made-up kids costs the issuer one request per interval, and a down issuer is not hammered.
Each fetch replaces the whole key set: a key stays trusted exactly as long as the issuer
still published it at the last fetch. While the issuer cannot be reached, keys fetched
earlier keep working; a token that needs a fetch answers 503 (nothing else is decided).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.config import Settings
from app.errors import ServiceUnavailable, Unauthorized
from app.keys import load_or_create_p256

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256")
DISCOVERY_PATH = "/.well-known/openid-configuration"
DEV_KEY_FILE = "dev-issuer-key.pem"
DEV_KID = "selfcare-dev-1"


class KeysNotCached(Exception):
    """Finding the key needs a fetch from the issuer, and the caller asked not to fetch."""


class IssuerError(Exception):
    """The issuer could not be reached or answered something unusable."""


def _usable(keys: list[jwt.PyJWK]) -> dict[str, jwt.PyJWK]:
    # Only signature keys of the two accepted algorithms: an "oct" (HS256) key in a JWKS
    # would otherwise let anyone who read the JWKS sign tokens.
    return {
        key.key_id: key
        for key in keys
        if key.key_id and key.algorithm_name in ALGORITHMS and key.public_key_use in (None, "sig")
    }


def dev_private_key(settings: Settings) -> ec.EllipticCurvePrivateKey:
    """The development issuer's P-256 key, generated into ``var/`` on first use."""
    return _load_or_create_key(_dev_key_path(settings))


def _dev_key_path(settings: Settings) -> Path:
    return settings.var_dir / DEV_KEY_FILE


@cache
def _load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    loaded = serialization.load_pem_private_key(load_or_create_p256(path), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise RuntimeError(f"{path} is not an EC private key")
    return loaded


def dev_jwks(settings: Settings) -> dict[str, Any]:
    """The development issuer's public key as a JWKS document."""
    return {"keys": [dict(_dev_public(_dev_key_path(settings))[0])]}  # a copy to change


def dev_public_jwk(settings: Settings) -> jwt.PyJWK:
    """The development issuer's public key, ready to verify with."""
    return _dev_public(_dev_key_path(settings))[1]


@cache
def _dev_public(path: Path) -> tuple[dict[str, Any], jwt.PyJWK]:
    # Once per key file, as the private key is loaded once: building the JWK and parsing it
    # back was a fiftieth of a small sync's CPU, on every request with a dev token.
    public = _load_or_create_key(path).public_key()
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public))
    jwk.update({"kid": DEV_KID, "use": "sig", "alg": "ES256"})
    return jwk, jwt.PyJWK(jwk)


@cache
def _jwks_from_file(path: Path) -> jwt.PyJWKSet:
    return jwt.PyJWKSet.from_json(path.read_text())


class SigningKeys:
    """Finds the key a token names: from the JWKS file, the discovered JWKS, or the dev key."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: datetime | None = None
        self._attempted_at: datetime | None = None
        self._failing = False
        self._jwks_uri: str | None = None
        self._discovery: dict[str, Any] | None = None
        self._discovery_lock = threading.Lock()
        self.fetches = 0  # JWKS documents fetched (figures for tests and logs)

    def key_for(self, kid: str | None, now: datetime, *, fetch: bool = True) -> Any:
        """The verification key for ``kid``; 401 when unknown, 503 when the issuer is down."""
        settings = self.settings
        if settings.auth_jwks_file is not None:
            for key in _jwks_from_file(settings.auth_jwks_file).keys:
                if key.algorithm_name in ALGORITHMS and (kid is None or key.key_id == kid):
                    return key
            raise Unauthorized("Unknown signing key.")
        if settings.auth_discovery_enabled:
            if not kid:
                raise Unauthorized("The token names no signing key (kid).")
            return self._discovered(kid, now, fetch=fetch)
        if settings.dev_issuer_enabled:
            return dev_public_jwk(settings)
        raise Unauthorized("No token issuer is configured.")

    def _fresh(self, now: datetime) -> bool:
        fetched = self._fetched_at
        return fetched is not None and (
            0 <= (now - fetched).total_seconds() < self.settings.auth_jwks_max_age_seconds
        )

    def _may_fetch(self, now: datetime) -> bool:
        attempted = self._attempted_at
        if attempted is None:
            return True
        elapsed = (now - attempted).total_seconds()
        return elapsed < 0 or elapsed >= self.settings.auth_jwks_refresh_seconds

    def _retry_after(self, now: datetime) -> int:
        if self._attempted_at is None:
            return 1
        elapsed = (now - self._attempted_at).total_seconds()
        return max(1, math.ceil(self.settings.auth_jwks_refresh_seconds - elapsed))

    def _discovered(self, kid: str, now: datetime, *, fetch: bool) -> jwt.PyJWK:
        key = self._keys.get(kid)
        if key is not None and self._fresh(now):
            return key  # the common case: no lock, no network
        with self._lock:
            key = self._keys.get(kid)
            if key is not None and self._fresh(now):
                return key
            if not self._may_fetch(now):
                if key is not None:
                    return key
                if self._failing:
                    raise ServiceUnavailable(
                        "The token issuer cannot be reached.", retry_after=self._retry_after(now)
                    )
                raise Unauthorized("Unknown signing key.")
            if not fetch:
                if key is not None:
                    return key
                raise KeysNotCached(kid)
            self._attempted_at = now
            try:
                self._keys = self._fetch()
            except IssuerError as exc:
                self._failing = True
                log.warning("token issuer %s: %s", self.settings.auth_issuer, exc)
                if key is not None:
                    return key  # stale, but the issuer is down: keys fetched earlier still work
                raise ServiceUnavailable(
                    "The token issuer cannot be reached.", retry_after=self._retry_after(now)
                ) from None
            self._failing = False
            self._fetched_at = now
            key = self._keys.get(kid)
            if key is None:
                raise Unauthorized("Unknown signing key.")
            return key

    def discovery(self) -> dict[str, Any]:
        """The issuer's OpenID Connect discovery document, fetched once; IssuerError if down."""
        if self._discovery is not None:
            return self._discovery
        try:
            with httpx.Client(
                timeout=self.settings.auth_http_timeout_seconds, follow_redirects=False
            ) as http:
                return self._discover(http)
        except httpx.HTTPError as exc:
            raise IssuerError(f"{type(exc).__name__}: {exc}") from exc

    def _discover(self, http: httpx.Client) -> dict[str, Any]:
        # A lock of its own: the key fetch holds ``_lock`` while it discovers.
        with self._discovery_lock:
            if self._discovery is None:
                issuer = self.settings.auth_issuer
                document = _get_json(http, issuer.rstrip("/") + DISCOVERY_PATH)
                if document.get("issuer") != issuer:
                    raise IssuerError(
                        f"discovery names issuer {document.get('issuer')!r}, not {issuer!r}"
                    )
                self._discovery = document
            return self._discovery

    def _fetch(self) -> dict[str, jwt.PyJWK]:
        issuer = self.settings.auth_issuer
        try:
            with httpx.Client(
                timeout=self.settings.auth_http_timeout_seconds, follow_redirects=False
            ) as http:
                if self._jwks_uri is None:
                    discovery = self._discover(http)
                    jwks_uri = discovery.get("jwks_uri")
                    if not isinstance(jwks_uri, str) or not jwks_uri.startswith(
                        ("https://", "http://")
                    ):
                        raise IssuerError("discovery has no http(s) jwks_uri")
                    self._jwks_uri = jwks_uri
                document = _get_json(http, self._jwks_uri)
                self.fetches += 1
        except httpx.HTTPError as exc:
            raise IssuerError(f"{type(exc).__name__}: {exc}") from exc
        try:
            keys = _usable(jwt.PyJWKSet.from_dict(document).keys)
        except jwt.PyJWTError as exc:
            raise IssuerError(f"unusable JWKS: {exc}") from exc
        if not keys:
            raise IssuerError("the JWKS has no RS256 or ES256 signature key with a kid")
        log.info("token issuer %s: %d signing keys fetched", issuer, len(keys))
        return keys


def _get_json(http: httpx.Client, url: str) -> dict[str, Any]:
    response = http.get(url, headers={"Accept": "application/json"})
    if response.status_code != 200:
        raise IssuerError(f"GET {url} answered {response.status_code}")
    try:
        document = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IssuerError(f"GET {url} is not JSON") from exc
    if not isinstance(document, dict):
        raise IssuerError(f"GET {url} is not a JSON object")
    return document
