"""CORS for browser apps and Prometheus metrics (issue 12, DESIGN §4.10), both databases."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.config import Settings
from app.main import create_app
from tests.app.factories import batch, bp, patient_id

Auth = Callable[[str], dict[str, str]]
APP_ORIGIN = "https://app.egenvard.example"
PREFLIGHT = {
    "Origin": APP_ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _client(settings: Settings, **changes: Any) -> TestClient:
    return TestClient(
        create_app(settings.model_copy(update=changes)), raise_server_exceptions=False
    )


def test_a_browser_app_on_a_configured_origin_may_call_the_api(
    settings: Settings, auth: Auth
) -> None:
    with _client(settings, cors_origins=(APP_ORIGIN,)) as client:
        preflight = client.options("/v1/patients/me/sync", headers=PREFLIGHT)
        assert preflight.status_code == 200, preflight.text  # answered before authentication
        assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in preflight.headers
        answer = client.get("/v1/me", headers={"Origin": APP_ORIGIN, **auth("allan")})
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == APP_ORIGIN
        refused = client.get("/v1/me", headers={"Origin": APP_ORIGIN})  # no token: 401, readable
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == APP_ORIGIN
        other = client.options(
            "/v1/patients/me/sync", headers={**PREFLIGHT, "Origin": "https://evil.example"}
        )
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers
        page = client.get("/healthz", headers={"Origin": APP_ORIGIN})
        assert "access-control-allow-origin" not in page.headers  # /v1 only


def test_no_origin_is_allowed_by_default(client: TestClient) -> None:
    preflight = client.options("/v1/patients/me/sync", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code in (401, 405)


@pytest.mark.parametrize("origins", ["https://app.example/", "app.example", "https://a.example/x"])
def test_an_origin_with_a_path_or_without_a_scheme_is_refused(origins: str) -> None:
    with pytest.raises(ValueError, match="not an origin"):
        Settings(cors_origins=origins)  # type: ignore[arg-type]  # as the environment gives it


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_requests_readings_and_flags_without_naming_anyone(
    client: TestClient, auth: Auth, session: Any
) -> None:
    allan = patient_id(session, "allan")
    before = _samples(client.get("/metrics").text)
    body = batch(bp(192, 118), bp(120, 80, minutes_ago=30))
    synced = client.post(f"/v1/patients/{allan}/sync", json=body, headers=auth("allan"))
    assert synced.status_code == 200, synced.text
    client.post(f"/v1/patients/{allan}/sync", json={"readings": "no"}, headers=auth("allan"))
    scraped = client.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    after = _samples(scraped.text)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    route = "/v1/patients/{pid}/sync"
    assert grew("selfcare_http_requests_total", method="POST", route=route, status="200") == 1
    assert grew("selfcare_http_requests_total", method="POST", route=route, status="422") == 1
    assert grew("selfcare_sync_readings_total", result="created") == 2
    assert grew("selfcare_http_request_duration_seconds_count", method="POST", route=route) == 2
    flags = {k[1]: v for k, v in after.items() if k[0] == "selfcare_open_flags"}
    assert sum(flags.values()) >= 1 and (("severity", "high"),) in flags
    # No patient, user, personnummer or id in any label or value.
    assert allan not in scraped.text and not UUID.search(scraped.text)
    assert not re.search(r"\b(19|20)\d{6}-?\d{4}\b", scraped.text)
    for name in ("Allan", "Andersson", "allan"):
        assert name not in scraped.text
