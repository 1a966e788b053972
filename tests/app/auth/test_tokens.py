"""Bearer tokens: the development issuer, and a production JWKS file from configuration."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from typer.testing import CliRunner

from app.auth.tokens import (
    CLOCK_SKEW_SECONDS,
    SigningKeys,
    dev_jwks,
    mint_token,
    verify_token,
)
from app.cli import cli
from app.config import Settings, get_settings
from app.errors import Unauthorized

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SKEW = CLOCK_SKEW_SECONDS


def _settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(var_dir=tmp_path, **{"environment": "development", **extra})  # type: ignore[arg-type]


def test_dev_issuer_round_trip_and_expiry(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    token = mint_token(settings, "allan", now=NOW, care_unit_id="unit-1")
    claims = verify_token(settings, token, now=NOW + timedelta(hours=1))
    assert (claims.subject, claims.care_unit_id) == ("allan", "unit-1")
    assert (tmp_path / "dev-issuer-key.pem").exists()
    with pytest.raises(Unauthorized):
        verify_token(settings, token, now=NOW + timedelta(days=2))


def _issuer_key() -> tuple[ec.EllipticCurvePrivateKey, dict[str, object]]:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "idp-1", "alg": "ES256", "use": "sig"})
    return key, {"keys": [jwk]}


def test_production_issuer_from_a_jwks_file(tmp_path: Path) -> None:
    key, jwks = _issuer_key()
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    settings = _settings(
        tmp_path,
        auth_issuer="https://idp.example",
        auth_audience="egenvard",
        auth_jwks_file=jwks_file,
    )
    claims = {
        "iss": "https://idp.example",
        "aud": "egenvard",
        "sub": "user-7",
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(minutes=5)).timestamp()),
    }
    good = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "idp-1"})
    assert verify_token(settings, good, now=NOW).subject == "user-7"

    wrong_audience = jwt.encode(
        {**claims, "aud": "other"}, key, algorithm="ES256", headers={"kid": "idp-1"}
    )
    dev_signed = mint_token(_settings(tmp_path / "dev"), "user-7", now=NOW)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rs256 = jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "idp-1"})
    unsigned = jwt.encode(claims, None, algorithm="none")
    for bad in (wrong_audience, dev_signed, rs256, unsigned):
        with pytest.raises(Unauthorized):
            verify_token(settings, bad, now=NOW)


def test_dev_jwks_publishes_the_dev_key(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(dev_jwks(settings)))
    token = mint_token(settings, "eva", now=NOW)
    as_production = _settings(tmp_path, auth_jwks_file=jwks_file)
    assert verify_token(as_production, token, now=NOW).subject == "eva"


class _PublishedKeys(SigningKeys):
    """The issuer's keys as a test sets them: one key for every kid, or none at all."""

    def __init__(self, settings: Settings, published: jwt.PyJWK | None) -> None:
        super().__init__(settings)
        self.published = published

    def key_for(self, kid: str | None, now: datetime, *, fetch: bool = True) -> object:
        if self.published is None:
            raise Unauthorized("Unknown signing key.")
        return self.published


def test_a_token_verified_before_is_checked_again_against_the_keys_and_the_clock(
    tmp_path: Path,
) -> None:
    """The signature check is kept per token and key; nothing else is."""
    settings = _settings(tmp_path, auth_issuer="https://idp.example", auth_audience="egenvard")
    key, jwks = _issuer_key()
    exp = NOW + timedelta(minutes=5)
    token = _signed(key, iat=int(NOW.timestamp()), exp=int(exp.timestamp()))
    keys = _PublishedKeys(settings, jwt.PyJWK(jwks["keys"][0]))  # type: ignore[index]
    for _ in range(2):  # the second from what the first kept
        assert verify_token(settings, token, now=NOW, keys=keys).subject == "u"
    with pytest.raises(Unauthorized, match="expired"):
        verify_token(settings, token, now=exp + timedelta(seconds=SKEW + 1), keys=keys)
    # The issuer publishes another key under the same kid: the token's signature is not its.
    _, replaced = _issuer_key()
    keys.published = jwt.PyJWK(replaced["keys"][0])  # type: ignore[index]
    with pytest.raises(Unauthorized, match="not valid"):
        verify_token(settings, token, now=NOW, keys=keys)
    keys.published = None  # withdrawn
    with pytest.raises(Unauthorized, match="Unknown signing key"):
        verify_token(settings, token, now=NOW, keys=keys)


def _signed(key: ec.EllipticCurvePrivateKey, **claims: object) -> str:
    base: dict[str, object] = {"iss": "https://idp.example", "aud": "egenvard", "sub": "u"}
    return jwt.encode({**base, **claims}, key, algorithm="ES256", headers={"kid": "idp-1"})


@pytest.mark.parametrize(
    ("name", "iat_offset", "lifetime", "accepted"),
    [
        ("issued now, 12 h", timedelta(0), timedelta(hours=12), True),
        ("issued within the leeway", timedelta(seconds=SKEW), timedelta(hours=1), True),
        ("issued beyond the leeway", timedelta(seconds=SKEW + 1), timedelta(hours=1), False),
        ("issued tomorrow", timedelta(days=1), timedelta(hours=1), False),
        ("lives 12 h and a second", timedelta(0), timedelta(hours=12, seconds=1), False),
        ("lives a year", -timedelta(days=1), timedelta(days=365), False),
    ],
)
def test_iat_in_the_future_and_long_lifetimes_are_refused(
    tmp_path: Path, name: str, iat_offset: timedelta, lifetime: timedelta, accepted: bool
) -> None:
    key, jwks = _issuer_key()
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    settings = _settings(
        tmp_path, auth_issuer="https://idp.example", auth_audience="egenvard",
        auth_jwks_file=jwks_file,
    )  # fmt: skip
    iat = NOW + iat_offset
    token = _signed(key, iat=int(iat.timestamp()), exp=int((iat + lifetime).timestamp()))
    if accepted:
        assert verify_token(settings, token, now=NOW).subject == "u", name
    else:
        with pytest.raises(Unauthorized):
            verify_token(settings, token, now=NOW)


def test_a_token_without_iat_lives_at_most_the_maximum_from_now(tmp_path: Path) -> None:
    """``iat`` is optional (OpenID Connect access tokens need not carry it): without one the
    lifetime is counted from now, so a token valid for a year is still refused."""
    key, jwks = _issuer_key()
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    settings = _settings(
        tmp_path, auth_issuer="https://idp.example", auth_audience="egenvard",
        auth_jwks_file=jwks_file,
    )  # fmt: skip
    assert verify_token(settings, _signed(key, exp=int(NOW.timestamp()) + 60), now=NOW).subject
    with pytest.raises(Unauthorized):
        verify_token(settings, _signed(key, exp=int(NOW.timestamp()) + 86400 * 365), now=NOW)


def test_the_dev_issuer_has_a_maximum_lifetime_too(tmp_path: Path) -> None:
    settings = _settings(tmp_path, token_max_lifetime_minutes=60)
    long_lived = mint_token(settings, "allan", now=NOW, ttl=timedelta(hours=2))
    with pytest.raises(Unauthorized):
        verify_token(settings, long_lived, now=NOW)
    assert verify_token(settings, mint_token(settings, "allan", now=NOW, ttl=timedelta(hours=1)),
                        now=NOW).subject == "allan"  # fmt: skip


def test_production_refuses_the_development_issuer(tmp_path: Path) -> None:
    development = _settings(tmp_path)
    token = mint_token(development, "allan", now=NOW)
    assert verify_token(development, token, now=NOW).subject == "allan"
    production = _settings(tmp_path, environment="production")
    with pytest.raises(Unauthorized):
        verify_token(production, token, now=NOW)


def test_serve_refuses_to_start_in_production_without_an_issuer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SELFCARE_ENVIRONMENT", "production")
    monkeypatch.setenv("SELFCARE_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["serve"])
        token = CliRunner().invoke(cli, ["token", "allan"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "needs a token issuer" in result.output
    assert token.exit_code == 2
