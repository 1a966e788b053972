"""The care team's pages in process: login, the worklist, the flag story (both databases)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.findings.models import Flag, FlagNote
from tests.app.factories import batch, bp, patient_id, scalar
from tests.web.conftest import Browser

Auth = Callable[[str], dict[str, str]]


def _flags(client: TestClient, auth: Auth) -> dict[str, str]:
    """Allan's high blood pressure (Eva's) and Asta's fast pulse (Eva's and Karin's)."""
    allan = client.post("/v1/patients/me/sync", json=batch(bp(185, 100)), headers=auth("allan"))
    asta = client.post(
        "/v1/patients/me/sync", json=batch(scalar("pulse", 130, "/min")), headers=auth("asta")
    )
    assert allan.status_code == asta.status_code == 200
    flags = {}
    for handle in ("allan", "asta"):
        items = client.get("/v1/patients/me/flags", headers=auth(handle)).json()["items"]
        assert len(items) == 1
        flags[handle] = items[0]["id"]
    return flags


def test_login_page_lists_the_seeded_people(browser: Callable[[], Browser]) -> None:
    page = browser().client.get("/login")
    assert page.status_code == 200
    assert '<html lang="sv">' in page.text
    for name in ("Eva Ek", "Karin", "Allan Andersson", "Asta Berglund", "Maria Berglund"):
        assert name in page.text
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_worklist_eva_sees_both_karin_never_allan(
    client: TestClient, auth: Auth, browser: Callable[[], Browser]
) -> None:
    _flags(client, auth)
    eva, karin = browser(), browser()
    page = eva.login("eva")
    assert "Arbetslista" in page.text
    assert "Allan Andersson" in page.text and "Asta Berglund" in page.text
    # Most severe first: Allan's high blood pressure above Asta's pulse.
    assert page.text.index("Allan Andersson") < page.text.index("Asta Berglund")
    assert "Vårdcentralen Norra" in page.text
    page = karin.login("karin")
    assert "Asta Berglund" in page.text and "Allan" not in page.text
    assert "Hemsjukvården Exempels kommun" in page.text
