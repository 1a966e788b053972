"""Security headers on every answer; /docs from local assets, off in production."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.headers import API_CSP, DOCS_CSP, is_loopback, request_host
from app.main import create_app

Auth = Callable[[str], dict[str, str]]


def test_every_answer_carries_nosniff_and_a_csp(client: TestClient, auth: Auth) -> None:
    answers = {
        "GET /healthz": client.get("/healthz"),
        "GET /v1/me": client.get("/v1/me", headers=auth("allan")),
        "GET /v1/me 401": client.get("/v1/me"),
        "GET /nowhere 404": client.get("/nowhere"),
        "PUT /v1/me 405": client.put("/v1/me", headers=auth("allan")),
        "POST sync 413": client.post(
            "/v1/patients/me/sync",
            content=b"{}",
            headers={**auth("allan"), "Content-Length": str(6 * 1024 * 1024)},
        ),
        "GET /openapi.json": client.get("/openapi.json"),
    }
    for name, answer in answers.items():
        assert answer.headers["x-content-type-options"] == "nosniff", name
        assert answer.headers["content-security-policy"] == API_CSP, name
        assert answer.headers["referrer-policy"] == "no-referrer", name
    assert answers["POST sync 413"].status_code == 413


def test_patient_data_is_never_stored_by_caches(client: TestClient, auth: Auth) -> None:
    for path in ("/v1/me", "/v1/patients/me", "/v1/patients/me/readings", "/v1/flags"):
        who = "eva" if path == "/v1/flags" else "allan"
        answer = client.get(path, headers=auth(who))
        assert answer.status_code == 200, path
        assert answer.headers["cache-control"] == "no-store", path
    assert client.get("/v1/patients/me").headers["cache-control"] == "no-store"  # a 401 too
    assert "cache-control" not in client.get("/healthz").headers


@pytest.mark.parametrize(
    ("base_url", "hsts"),
    [
        ("https://egenvard.example", True),
        ("http://10.1.2.3:8000", True),
        ("http://127.0.0.1:8000", False),
        ("http://127.8.9.1", False),
        ("http://localhost:8000", False),
        ("http://[::1]:8000", False),
    ],
)
def test_hsts_is_sent_unless_the_host_is_loopback(app: object, base_url: str, hsts: bool) -> None:
    with TestClient(app, base_url=base_url) as on_host:  # type: ignore[arg-type]
        answer = on_host.get("/healthz")
    assert ("strict-transport-security" in answer.headers) is hsts
    if hsts:
        assert answer.headers["strict-transport-security"] == "max-age=63072000"


def test_host_parsing() -> None:
    def scope(host: bytes | None) -> dict[str, object]:
        return {"headers": [(b"host", host)] if host else [], "server": ("127.0.0.1", 80)}

    assert request_host(scope(b"[::1]:8000")) == "::1"
    assert request_host(scope(b"Api.Example.SE:443")) == "api.example.se"
    assert request_host(scope(None)) == "127.0.0.1"
    assert is_loopback("::1") and is_loopback("app.localhost") and not is_loopback("10.0.0.1")
    assert not is_loopback("localhost.example.se")


def test_docs_are_served_from_local_assets(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == DOCS_CSP
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    for asset in ("swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css", "docs.js"):
        assert f'src="/static/{asset}"' in page.text or f'href="/static/{asset}"' in page.text
        answer = client.get(f"/static/{asset}")
        assert answer.status_code == 200, asset
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert client.get("/redoc").status_code == 404  # one docs UI


@pytest.fixture
def production_client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"environment": "production"}))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    app.state.engine.dispose()


def test_docs_are_off_in_production_unless_turned_on(
    production_client: TestClient, settings: Settings
) -> None:
    assert production_client.get("/docs").status_code == 404
    assert production_client.get("/openapi.json").status_code == 200
    assert settings.model_copy(update={"environment": "production", "docs_enabled": True}).docs_on
    assert not settings.model_copy(update={"docs_enabled": False}).docs_on
