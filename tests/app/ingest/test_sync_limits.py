"""Limits on sync, on both databases: flood protection (AT-23 in part), sizes (AT-21)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.errors import TooManyRequests
from app.main import create_app
from app.readings.ratelimit import OwnPatients, RateLimiter
from tests.app.factories import batch, bp

Auth = Callable[[str], dict[str, str]]


@pytest.fixture
def limited_client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"sync_rate_per_minute": 60, "sync_burst": 5}))
    app.state.sync_clock = lambda: 1000.0  # frozen: no token comes back however slow the run
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    app.state.engine.dispose()


def test_a_flooding_device_gets_429_and_others_are_unaffected(
    limited_client: TestClient, auth: Auth
) -> None:
    statuses = [
        limited_client.post(
            "/v1/patients/me/sync", json=batch(bp(120, 80)), headers=auth("allan")
        ).status_code
        for _ in range(8)
    ]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429] * 3
    refused = limited_client.post(
        "/v1/patients/me/sync", json=batch(bp(120, 80)), headers=auth("allan")
    )
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    other = limited_client.post(
        "/v1/patients/me/sync", json=batch(bp(120, 80)), headers=auth("gunilla")
    )
    assert other.status_code == 200


def test_bucket_refills_at_the_configured_rate() -> None:
    limiter = RateLimiter(per_minute=60, burst=2)
    key = ("user", "patient")
    limiter.check(key, 0.0)
    limiter.check(key, 0.0)
    with pytest.raises(TooManyRequests) as refused:
        limiter.check(key, 0.5)
    assert refused.value.headers["Retry-After"] == "1"
    limiter.check(key, 1.5)  # one token back after a second
    RateLimiter(per_minute=0, burst=1).check(key, 0.0)  # 0 = off


def test_page_sizes_are_capped(client: TestClient, auth: Auth) -> None:
    for path in ("/v1/patients/me/readings", "/v1/patients/me/changes", "/v1/patients/me/advice"):
        huge = client.get(path, params={"limit": 10**9}, headers=auth("allan"))
        assert huge.status_code == 422, path
        assert huge.headers["content-type"].startswith("application/problem+json")


def test_me_and_the_own_id_share_one_bucket(limited_client: TestClient, auth: Auth) -> None:
    own = limited_client.get("/v1/patients/me", headers=auth("allan")).json()["id"]
    paths = [f"/v1/patients/{pid}/sync" for pid in ("me", own) * 4]
    statuses = [
        limited_client.post(path, json=batch(bp(120, 80)), headers=auth("allan")).status_code
        for path in paths
    ]
    assert statuses == [200] * 5 + [429] * 3


def test_own_patients_maps_me_once_known_and_moves_what_me_spent() -> None:
    limiter = RateLimiter(per_minute=60, burst=3)
    own = OwnPatients(limiter, lambda: 0.0)
    assert own.patient_key("allan", "me") == "me"  # not known yet: a bucket of its own
    limiter.check(("allan", "me"), 0.0)
    limiter.check(("allan", "me"), 0.0)
    own.remember("allan", "p-1")
    assert own.patient_key("allan", "me") == own.patient_key("allan", "p-1") == "p-1"
    assert own.patient_key("asta", "me") == "me"
    limiter.check(("allan", "p-1"), 0.0)  # the third of three
    with pytest.raises(TooManyRequests):
        limiter.check(("allan", "p-1"), 0.0)
