"""Bearer tokens: the development issuer, and a production JWKS file from configuration."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.auth.tokens import dev_jwks, mint_token, verify_token
from app.config import Settings
from app.errors import Unauthorized

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def _settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(var_dir=tmp_path, **extra)  # type: ignore[arg-type]


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
        auth_dev_issuer=False,
    )
    claims = {
        "iss": "https://idp.example",
        "aud": "egenvard",
        "sub": "user-7",
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
    as_production = _settings(tmp_path, auth_jwks_file=jwks_file, auth_dev_issuer=False)
    assert verify_token(as_production, token, now=NOW).subject == "eva"
