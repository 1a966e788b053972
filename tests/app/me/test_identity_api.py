"""Identity, teams, the patient list and enrolment on both databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth.tokens import mint_token
from app.clock import utcnow
from app.config import Settings
from tests.app.factories import patient_id

Auth = Callable[[str], dict[str, str]]
UNUSED_TEST_PNR = "198804302381"  # a Skatteverket test number no persona uses


def test_me_lists_relations_and_scopes(client: TestClient, auth: Auth) -> None:
    allan = client.get("/v1/me", headers=auth("allan")).json()
    assert allan["user"]["handle"] == "allan" and allan["user"]["role"] == "patient"
    assert [p["relation"] for p in allan["patients"]] == ["self"]
    maria = client.get("/v1/me", headers=auth("maria")).json()
    assert [(p["display_name"].split()[0], p["relation"]) for p in maria["patients"]] == [
        ("Asta", "proxy")
    ]
    assert maria["patients"][0]["scopes"] == ["enter_readings", "read", "receive_advice"]
    eva = client.get("/v1/me", headers=auth("eva")).json()
    assert sorted(p["display_name"].split()[0] for p in eva["patients"]) == ["Allan", "Asta"]
    assert {p["relation"] for p in eva["patients"]} == {"care_team"}


def test_teams_and_patient_lists_follow_membership(client: TestClient, auth: Auth) -> None:
    karin_teams = client.get("/v1/teams", headers=auth("karin")).json()["items"]
    assert len(karin_teams) == 1 and "Hemsjukv" in karin_teams[0]["care_unit"]["name"]
    karin = client.get("/v1/patients", headers=auth("karin")).json()["items"]
    assert [p["display_name"].split()[0] for p in karin] == ["Asta"]
    olof = client.get("/v1/patients", headers=auth("olof")).json()["items"]
    assert [p["display_name"].split()[0] for p in olof] == ["Gunilla"]
    page = client.get("/v1/patients", params={"limit": 1}, headers=auth("eva")).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = client.get(
        "/v1/patients", params={"limit": 1, "cursor": page["next_cursor"]}, headers=auth("eva")
    ).json()
    assert len(rest["items"]) == 1 and rest["items"][0]["id"] != page["items"][0]["id"]


def test_enrolment_in_own_team_then_conflict(client: TestClient, auth: Auth) -> None:
    team = client.get("/v1/teams", headers=auth("olof")).json()["items"][0]["id"]
    body = {"personnummer": UNUSED_TEST_PNR, "display_name": "Ny Patient", "team_id": team}
    created = client.post("/v1/patients", json=body, headers=auth("olof"))
    assert created.status_code == 201, created.text
    assert created.json()["personnummer"] == UNUSED_TEST_PNR
    olof = client.get("/v1/patients", headers=auth("olof")).json()["items"]
    assert created.json()["id"] in [p["id"] for p in olof]
    again = client.post("/v1/patients", json=body, headers=auth("olof"))
    assert again.status_code == 409
    other_team = client.post("/v1/patients", json=body, headers=auth("karin"))
    assert other_team.status_code == 422  # olof's team is not karin's: answered like a missing one
    bad = dict(body, personnummer="197701172393")  # wrong check digit
    assert client.post("/v1/patients", json=bad, headers=auth("olof")).status_code == 422
    assert client.post("/v1/patients", json=body, headers=auth("allan")).status_code == 403


def test_tokens_are_checked(client: TestClient, settings: Settings, session: Session) -> None:
    assert client.get("/v1/me").status_code == 401
    assert client.get("/v1/me", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    expired = mint_token(
        settings, "allan", now=utcnow() - timedelta(days=2), ttl=timedelta(hours=1)
    )
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    unknown = mint_token(settings, "nobody", now=utcnow())
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {unknown}"}).status_code == 401
    pid = patient_id(session, "allan")
    assert client.get(f"/v1/patients/{pid}").status_code == 401


def test_health_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    schema = client.get("/openapi.json").json()
    assert "/v1/patients/{pid}/sync" in schema["paths"]
    assert client.get("/docs").status_code == 200


def test_access_log_shows_who_from_which_care_unit(
    client: TestClient, auth: Auth, session: Session
) -> None:
    pid = patient_id(session, "allan")
    client.get(f"/v1/patients/{pid}/readings", headers=auth("eva"))
    log = client.get("/v1/patients/me/access-log", headers=auth("allan")).json()["items"]
    eva = [e for e in log if e["actor"]["handle"] == "eva"]
    assert len(eva) == 1
    assert eva[0]["relation"] == "care_team" and "Vårdcentral" in eva[0]["care_unit"]["name"]
    assert eva[0]["action"] == "read" and eva[0]["resource"].endswith("/readings")
    assert client.get(f"/v1/patients/{pid}/access-log", headers=auth("karin")).status_code == 404


def test_the_lock_screen_is_neutral_until_the_title_is_chosen(
    client: TestClient, auth: Auth
) -> None:
    """``lock_screen``: neutral by default, title when chosen, null back to the default."""
    assert client.get("/v1/me", headers=auth("asta")).json()["user"]["lock_screen"] == "neutral"
    chosen = client.patch("/v1/me", json={"lock_screen": "title"}, headers=auth("asta"))
    assert chosen.status_code == 200 and chosen.json()["user"]["lock_screen"] == "title"
    wrong = client.patch("/v1/me", json={"lock_screen": "everything"}, headers=auth("asta"))
    assert wrong.status_code == 422
    assert client.get("/v1/me", headers=auth("asta")).json()["user"]["lock_screen"] == "title"
    reset = client.patch("/v1/me", json={"lock_screen": None}, headers=auth("asta"))
    assert reset.json()["user"]["lock_screen"] == "neutral"
