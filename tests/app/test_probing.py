"""Probing limits: failed tokens per client and per subject, failed enrolments per caller.

The buckets' clock is replaced by a counter the test moves (never the wall clock).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import jwt
import pytest
from fastapi.testclient import TestClient

from app.auth.tokens import mint_token
from app.clock import utcnow
from app.config import Settings
from app.main import create_app
from app.probing import ProbingLimits, claimed_subject

Auth = Callable[[str], dict[str, str]]
ENROL_PNR = "198804292384"  # from Skatteverket's list of test personnummer


class FakeMonotonic:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def limited(settings: Settings, monotonic: FakeMonotonic) -> Iterator[TestClient]:
    app = create_app(
        settings.model_copy(
            update={
                "auth_failures_per_minute": 6,
                "auth_failure_burst": 3,
                "enrol_failures_per_minute": 6,
                "enrol_failure_burst": 2,
            }
        )
    )
    probing: ProbingLimits = app.state.probing
    probing.monotonic = monotonic
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    app.state.engine.dispose()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _forged(subject: str) -> str:
    """A token naming ``subject`` signed with a key the service does not know."""
    return jwt.encode({"sub": subject, "iss": "x"}, "not-the-service-key-" * 4, algorithm="HS256")


def test_failed_tokens_from_one_client_get_429_after_the_burst(
    limited: TestClient, auth: Auth, monotonic: FakeMonotonic
) -> None:
    statuses = [
        limited.get("/v1/me", headers=_bearer(f"garbage-{i}")).status_code for i in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    refused = limited.get("/v1/me", headers=_bearer("garbage"))
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["status"] == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 10
    # A valid token from the same client is never refused: no lockout of a shared address.
    assert limited.get("/v1/me", headers=auth("allan")).status_code == 200
    # No token at all is not an attempt.
    assert limited.get("/v1/me").status_code == 401
    monotonic.now += 10  # one token back every 10 s
    assert limited.get("/v1/me", headers=_bearer("garbage")).status_code == 401
    assert limited.get("/v1/me", headers=_bearer("garbage")).status_code == 429


def test_failed_tokens_are_limited_per_subject_across_clients(
    limited: TestClient, settings: Settings
) -> None:
    headers = _bearer(_forged("allan"))
    statuses = [
        limited.get("/v1/me", headers={**headers, "X-Try": str(i)}).status_code for i in range(2)
    ]
    # A second client (another peer address) probing the same subject shares its bucket.
    with TestClient(limited.app, client=("203.0.113.9", 5000)) as other:
        statuses.append(other.get("/v1/me", headers=headers).status_code)
        statuses.append(other.get("/v1/me", headers=headers).status_code)
        # …while that client's own bucket still has room for another subject.
        assert other.get("/v1/me", headers=_bearer(_forged("asta"))).status_code == 401
    assert statuses == [401, 401, 401, 429]
    # Allan's own valid token still works: a forged token cannot lock a person out.
    ok = mint_token(settings, "allan", now=utcnow())
    assert limited.get("/v1/me", headers=_bearer(ok)).status_code == 200


def test_an_expired_token_counts_as_a_failure(limited: TestClient, settings: Settings) -> None:
    old = mint_token(settings, "allan", now=utcnow() - timedelta(days=2))
    statuses = [limited.get("/v1/me", headers=_bearer(old)).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


def _enrol(client: TestClient, auth: Auth, team_id: str, pnr: str = ENROL_PNR) -> int:
    body = {"personnummer": pnr, "display_name": "Testa", "team_id": team_id}
    return client.post("/v1/patients", json=body, headers=auth("eva")).status_code


def test_failed_enrolments_are_limited_per_caller(
    limited: TestClient, auth: Auth, monotonic: FakeMonotonic
) -> None:
    team_id = limited.get("/v1/teams", headers=auth("eva")).json()["items"][0]["id"]
    assert _enrol(limited, auth, "no-such-team") == 422
    assert _enrol(limited, auth, team_id) == 201  # a success is not charged
    assert _enrol(limited, auth, team_id) == 409  # already enrolled: a failure
    # The bucket is spent: even a good enrolment is refused before the register is read.
    assert _enrol(limited, auth, team_id, pnr="191212121212") == 429
    # Another caller is not affected.
    body = {"personnummer": "191212121212", "display_name": "T", "team_id": "no-such-team"}
    assert limited.post("/v1/patients", json=body, headers=auth("karin")).status_code == 422
    monotonic.now += 10
    assert _enrol(limited, auth, team_id, pnr="191212121212") == 201


def test_a_body_that_fails_validation_is_not_charged(limited: TestClient, auth: Auth) -> None:
    for _ in range(5):
        answer = limited.post("/v1/patients", json={"personnummer": 1}, headers=auth("eva"))
        assert answer.status_code == 422


def test_claimed_subject() -> None:
    assert claimed_subject(_forged("asta")) == "asta"
    assert claimed_subject("not a token") is None
    assert claimed_subject(jwt.encode({"sub": 5}, "k" * 32, algorithm="HS256")) is None
