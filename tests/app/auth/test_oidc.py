"""Tokens from a real issuer: discovery and JWKS from an issuer on loopback, on both databases.

The issuer (tests/oidc_issuer.py) serves discovery and a JWKS with an RSA and an EC key and
counts its fetches; the service's clock is frozen, so the refresh interval is crossed by
moving the clock, never by sleeping.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.audit.models import AuditEvent
from app.auth.models import User
from app.cli import cli
from app.clock import clock
from app.config import Settings, get_settings
from app.main import create_app
from tests.oidc_issuer import IssuerKey, OidcIssuer

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
REFRESH = 60  # SELFCARE_AUTH_JWKS_REFRESH_SECONDS, the default
ALLAN_PNR = "197701172392"
EVA_HSA = "SE2321000016-1003"


@pytest.fixture
def issuer() -> Iterator[OidcIssuer]:
    with OidcIssuer() as running:
        yield running


def _oidc_settings(settings: Settings, issuer: OidcIssuer, **extra: Any) -> Settings:
    return settings.model_copy(
        update={
            "environment": "production",  # no development issuer: only the real one
            "auth_issuer": issuer.url,
            "auth_audience": issuer.audience,
            "auth_http_timeout_seconds": 2.0,
            **extra,
        }
    )


@pytest.fixture
def oidc(settings: Settings, issuer: OidcIssuer) -> Iterator[TestClient]:
    clock.fixed = NOW
    app = create_app(_oidc_settings(settings, issuer))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    app.state.engine.dispose()


def _me(client: TestClient, token: str) -> Any:
    return client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})


def _audit_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_rs256_and_es256_tokens_of_the_discovered_issuer_are_accepted(
    oidc: TestClient, issuer: OidcIssuer
) -> None:
    # A body first: the intake middleware never waits for the issuer (it runs on the event
    # loop), so the keys are fetched by the route's dependencies.
    patched = oidc.patch(
        "/v1/me",
        json={"language": "en"},
        headers={"Authorization": f"Bearer {issuer.token(NOW, kid='ec-1', sub='allan')}"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["user"]["language"] == "en"
    for kid in ("rsa-1", "ec-1"):
        answer = _me(oidc, issuer.token(NOW, kid=kid, sub="allan"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["user"]["handle"] == "allan"
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 1)  # cached after the first


def test_wrong_claims_and_algorithms_are_refused(oidc: TestClient, issuer: OidcIssuer) -> None:
    at = int(NOW.timestamp())
    rsa = issuer.key("rsa-1")
    cases: dict[str, tuple[str, int]] = {
        "good": (issuer.token(NOW, sub="allan"), 200),
        "wrong iss": (issuer.token(NOW, sub="allan", iss="https://other.example"), 401),
        "wrong aud": (issuer.token(NOW, sub="allan", aud="someone-else"), 401),
        "expired within the leeway": (issuer.token(NOW, sub="allan", exp=at - 20), 200),
        "expired beyond the leeway": (issuer.token(NOW, sub="allan", exp=at - 31), 401),
        "nbf within the leeway": (issuer.token(NOW, sub="allan", nbf=at + 20), 200),
        "nbf beyond the leeway": (issuer.token(NOW, sub="allan", nbf=at + 31), 401),
        "iat beyond the leeway": (issuer.token(NOW, sub="allan", iat=at + 31), 401),
        "no iat": (issuer.token(NOW, sub="allan", iat=None), 200),
        "no kid": (
            jwt.encode(
                {"iss": issuer.url, "aud": issuer.audience, "sub": "allan", "exp": at + 60},
                rsa.private,
                algorithm="RS256",
            ),
            401,
        ),
        "alg none": (
            jwt.encode(
                {"iss": issuer.url, "aud": issuer.audience, "sub": "allan", "exp": at + 60},
                None,
                algorithm="none",
                headers={"kid": "rsa-1"},
            ),
            401,
        ),
        # HS256 keyed with the published public key: the classic algorithm confusion.
        "HS256 with the public JWK as secret": (
            jwt.encode(
                {"iss": issuer.url, "aud": issuer.audience, "sub": "allan", "exp": at + 60},
                str(rsa.jwk()["n"]).encode() * 2,
                algorithm="HS256",
                headers={"kid": "rsa-1"},
            ),
            401,
        ),
        "RS256 header on the EC key": (
            jwt.encode(
                {"iss": issuer.url, "aud": issuer.audience, "sub": "allan", "exp": at + 60},
                rsa.private,
                algorithm="RS256",
                headers={"kid": "ec-1"},
            ),
            401,
        ),
    }
    got = {name: _me(oidc, token).status_code for name, (token, _) in cases.items()}
    assert got == {name: status for name, (_, status) in cases.items()}
    assert issuer.jwks_fetches == 1


def test_key_rotation_refreshes_once_and_withdrawn_keys_go_at_the_next_fetch(
    oidc: TestClient, issuer: OidcIssuer
) -> None:
    """The cache holds exactly what the issuer published at the last fetch."""
    assert _me(oidc, issuer.token(NOW, kid="rsa-1", sub="allan")).status_code == 200
    issuer.rotate(IssuerKey.new("rsa-2", "RS256"), keep=["rsa-1", "ec-1"])
    # Within the refresh interval of the first fetch the new kid is not fetched yet.
    assert _me(oidc, issuer.token(NOW, kid="rsa-2", sub="allan")).status_code == 401
    assert issuer.jwks_fetches == 1

    later = NOW + timedelta(seconds=REFRESH)
    clock.fixed = later
    assert _me(oidc, issuer.token(later, kid="rsa-2", sub="allan")).status_code == 200
    assert issuer.jwks_fetches == 2
    assert _me(oidc, issuer.token(later, kid="rsa-1", sub="allan")).status_code == 200
    assert _me(oidc, issuer.token(later, kid="rsa-2", sub="allan")).status_code == 200
    assert issuer.jwks_fetches == 2  # known kids: no fetch

    # The issuer withdraws rsa-1 and ec-1 and adds rsa-3: rsa-1 works until the next fetch.
    issuer.rotate(IssuerKey.new("rsa-3", "RS256"), keep=["rsa-2"])
    assert _me(oidc, issuer.token(later, kid="rsa-1", sub="allan")).status_code == 200
    latest = later + timedelta(seconds=REFRESH)
    clock.fixed = latest
    assert _me(oidc, issuer.token(latest, kid="rsa-3", sub="allan")).status_code == 200
    assert _me(oidc, issuer.token(latest, kid="rsa-1", sub="allan")).status_code == 401
    assert _me(oidc, issuer.token(latest, kid="rsa-2", sub="allan")).status_code == 200
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 3)
    print(f"rotation: discovery fetches={issuer.discovery_fetches} jwks={issuer.jwks_fetches}")


def test_a_flood_of_unknown_kids_costs_the_issuer_one_fetch(
    oidc: TestClient, issuer: OidcIssuer
) -> None:
    assert _me(oidc, issuer.token(NOW, sub="allan")).status_code == 200
    start = NOW + timedelta(seconds=REFRESH)
    statuses = set()
    for n in range(50):
        at = start + timedelta(seconds=n)  # the flood spreads over 50 s of the interval
        clock.fixed = at
        token = issuer.token(at, sub="allan", headers={"kid": uuid.uuid4().hex})
        statuses.add(_me(oidc, token).status_code)
    assert statuses == {401}
    assert issuer.jwks_fetches == 2  # the first fetch and one refresh for the whole flood
    assert _me(oidc, issuer.token(clock.now(), sub="allan")).status_code == 200
    print(f"flood of 50 unknown kids: jwks fetches={issuer.jwks_fetches} (1 before the flood)")


def test_issuer_down_answers_503_and_changes_nothing(
    settings: Settings, issuer: OidcIssuer, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    session.execute(update(User).where(User.handle == "allan").values(subject=None))
    before = _audit_count(session)
    issuer.stop()
    clock.fixed = NOW
    app = create_app(_oidc_settings(settings, issuer))
    with TestClient(app, raise_server_exceptions=False) as client:
        token = issuer.token(NOW, sub="idp-allan", personnummer=ALLAN_PNR)
        answer = _me(client, token)
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert int(answer.headers["Retry-After"]) >= 1
        assert "issuer" in answer.json()["detail"]
        # Within the interval the down issuer is not asked again: still 503, from the cache.
        assert _me(client, token).status_code == 503
    app.state.engine.dispose()
    assert [r.levelname for r in caplog.records if "token issuer" in r.getMessage()] == ["WARNING"]
    assert session.scalar(select(User.subject).where(User.handle == "allan")) is None
    assert _audit_count(session) == before


def test_keys_fetched_earlier_keep_working_while_the_issuer_is_down(
    settings: Settings, issuer: OidcIssuer
) -> None:
    clock.fixed = NOW
    app = create_app(_oidc_settings(settings, issuer, auth_jwks_max_age_seconds=300))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert _me(client, issuer.token(NOW, sub="allan")).status_code == 200
        issuer.down = True
        stale = NOW + timedelta(seconds=400)  # past the max age: a refetch is tried, and fails
        clock.fixed = stale
        assert _me(client, issuer.token(stale, sub="allan")).status_code == 200
        assert _me(client, issuer.token(stale, kid="ec-1", sub="allan")).status_code == 200
        unknown = issuer.token(stale, sub="allan", headers={"kid": "rotated-away"})
        assert _me(client, unknown).status_code == 503
        issuer.down = False
        back = stale + timedelta(seconds=REFRESH)
        clock.fixed = back
        assert _me(client, issuer.token(back, sub="allan")).status_code == 200
    app.state.engine.dispose()
    assert issuer.jwks_fetches == 2  # the first, and the one after the outage


def test_first_login_links_a_patient_by_personnummer(
    oidc: TestClient, issuer: OidcIssuer, session: Session
) -> None:
    session.execute(update(User).where(User.handle == "allan").values(subject=None))
    token = issuer.token(NOW, sub="idp-allan-7", personnummer="19770117-2392")
    answer = _me(oidc, token)
    assert answer.status_code == 200, answer.text
    assert answer.json()["user"]["handle"] == "allan"
    assert session.scalar(select(User.subject).where(User.handle == "allan")) == "idp-allan-7"
    links = session.scalars(select(AuditEvent).where(AuditEvent.action == "link_login")).all()
    assert [(e.actor_handle, e.resource, e.outcome) for e in links] == [
        ("allan", "login by personnummer", "ok")
    ]
    assert _me(oidc, token).status_code == 200  # linked now: found by its sub, not linked again
    assert (
        len(session.scalars(select(AuditEvent).where(AuditEvent.action == "link_login")).all()) == 1
    )
    # Another sub with the same personnummer is not relinked.
    other = issuer.token(NOW, sub="idp-someone-else", personnummer=ALLAN_PNR)
    assert _me(oidc, other).status_code == 401
    assert session.scalar(select(User.subject).where(User.handle == "allan")) == "idp-allan-7"


def test_first_login_links_a_clinician_by_hsa_id_under_a_configured_claim(
    settings: Settings, issuer: OidcIssuer, session: Session
) -> None:
    session.execute(update(User).where(User.handle == "eva").values(subject=None, hsa_id=EVA_HSA))
    clock.fixed = NOW
    app = create_app(_oidc_settings(settings, issuer, auth_hsa_id_claim="urn:sambi:hsaid"))
    with TestClient(app, raise_server_exceptions=False) as client:
        ignored = issuer.token(NOW, sub="idp-eva", hsa_id=EVA_HSA)  # the default claim name
        assert _me(client, ignored).status_code == 401
        answer = _me(client, issuer.token(NOW, sub="idp-eva", **{"urn:sambi:hsaid": EVA_HSA}))
        assert answer.status_code == 200, answer.text
        assert answer.json()["user"]["handle"] == "eva"
        flags = client.get(
            "/v1/flags",
            headers={"Authorization": f"Bearer {issuer.token(NOW, sub='idp-eva')}"},
        )
        assert flags.status_code == 200
    app.state.engine.dispose()
    assert session.scalar(select(User.subject).where(User.handle == "eva")) == "idp-eva"
    link = session.scalars(select(AuditEvent).where(AuditEvent.action == "link_login")).one()
    assert (link.actor_handle, link.actor_role, link.resource) == (
        "eva",
        "clinician",
        "login by hsa_id",
    )


def test_claims_that_match_nobody_are_refused(
    oidc: TestClient, issuer: OidcIssuer, session: Session
) -> None:
    before = _audit_count(session)
    tokens = [
        issuer.token(NOW, sub="idp-stranger"),
        issuer.token(NOW, sub="idp-stranger", personnummer="191212121212"),  # no such patient
        issuer.token(NOW, sub="idp-stranger", personnummer="not a number"),
        issuer.token(NOW, sub="idp-stranger", hsa_id="SE2321000016-9999"),
        # Allan's user is linked to the sub "allan" (the seed): a new sub is not relinked.
        issuer.token(NOW, sub="idp-stranger", personnummer=ALLAN_PNR),
    ]
    assert [_me(oidc, token).status_code for token in tokens] == [401] * len(tokens)
    assert session.scalar(select(User.subject).where(User.handle == "allan")) == "allan"
    assert _audit_count(session) == before


def test_serve_refuses_production_without_an_issuer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default environment is production; its default issuer ("selfcare-dev") is no URL."""
    monkeypatch.delenv("SELFCARE_ENVIRONMENT", raising=False)
    monkeypatch.delenv("SELFCARE_AUTH_ISSUER", raising=False)
    monkeypatch.delenv("SELFCARE_AUTH_JWKS_FILE", raising=False)
    monkeypatch.setenv("SELFCARE_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert get_settings().environment == "production"
        result = CliRunner().invoke(cli, ["serve"])
        token = CliRunner().invoke(cli, ["token", "allan"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    for needed in ("SELFCARE_AUTH_ISSUER", "SELFCARE_AUTH_JWKS_FILE", "SELFCARE_ENVIRONMENT"):
        assert needed in result.output
    assert token.exit_code == 2 and "development" in token.output
