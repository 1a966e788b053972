"""The care team's pages in process: login, the worklist, the flag story (both databases)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.findings.models import Flag, FlagNote
from rules.engine.findings import MAX_EXPLAINED_READINGS
from tests.app.factories import batch, bp, scalar
from tests.app.web.conftest import Browser

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


def test_the_flag_story_eva_acknowledges_karin_notes_and_resolves(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    flag_id = _flags(client, auth)["asta"]
    eva, karin = browser(), browser()
    eva.login("eva")
    url = f"/vard/flags/{flag_id}"
    page = eva.client.get(url)
    assert page.status_code == 200
    # Why it fired: the reading, its value, the plan version and the rule.
    assert "Asta Berglund" in page.text and "130" in page.text and "pulse-abnormal" in page.text
    assert "Egenvårdsplan, version" in page.text
    done = eva.post(f"{url}/acknowledge", {"note": "Ringt Asta, mår bra."}, token_from=url)
    assert done.status_code == 200 and done.url.path == url
    assert "Flaggan är kvitterad." in done.text

    karin.login("karin")
    page = karin.client.get(url)
    assert "Kvitterad av" in page.text and "Eva Ek, Vårdcentralen Norra" in page.text
    assert "Ringt Asta, mår bra." in page.text
    karin.post(f"{url}/notes", {"note": "Hembesök:\npuls 82."}, token_from=url)
    done = karin.post(f"{url}/resolve", {"note": "Avslutar."}, token_from=url)
    assert "Flaggan är avslutad." in done.text
    assert "Avslutad av" in done.text and "Hemsjukvården Exempels kommun" in done.text

    flag = session.get(Flag, flag_id)
    assert flag is not None and flag.status == "resolved"
    again = karin.post(f"{url}/resolve", {"note": "En gång till."}, token_from="/vard")
    assert again.status_code == 409 and "Flaggan är redan avslutad." in again.text
    notes = session.scalars(
        select(FlagNote).where(FlagNote.flag_id == flag_id).order_by(FlagNote.created_at)
    ).all()
    assert [n.body for n in notes] == ["Ringt Asta, mår bra.", "Hembesök:\npuls 82.", "Avslutar."]
    assert [n.author_care_unit for n in notes] == [
        "Vårdcentralen Norra",
        "Hemsjukvården Exempels kommun",
        "Hemsjukvården Exempels kommun",
    ]
    # The API shows the same history.
    api = client.get("/v1/patients/me/flags", headers=auth("eva"))
    assert api.status_code == 404  # Eva is no patient: "me" is nobody
    listed = client.get("/v1/flags?status=resolved", headers=auth("karin")).json()["items"]
    assert [len(f["notes"]) for f in listed] == [3]


def test_pages_write_the_audit_rows_of_the_api(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    flags = _flags(client, auth)
    eva = browser()
    eva.login("eva")
    before = session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)) or 0
    eva.client.get(f"/vard/flags/{flags['asta']}")
    eva.client.get("/vard")
    rows = session.scalars(select(AuditEvent).where(AuditEvent.seq > before)).all()
    assert [(r.actor_handle, r.relation, r.action, r.resource, r.care_unit_name) for r in rows] == [
        ("eva", "care_team", "read", "GET /vard/flags/{flag_id}", "Vårdcentralen Norra"),
        ("eva", "list", "read", "GET /vard", "Vårdcentralen Norra"),
    ]


def test_a_flag_the_clinician_may_not_see_is_a_missing_one(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    flags = _flags(client, auth)
    karin = browser()
    karin.login("karin")
    hidden = karin.client.get(f"/vard/flags/{flags['allan']}")
    nobody = "00000000-0000-0000-0000-000000000000"
    missing = karin.client.get(f"/vard/flags/{nobody}")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.text.replace(flags["allan"], nobody) == missing.text
    assert "Allan" not in hidden.text
    # The refusal is in Allan's access log, as for the API (a missing flag names nobody).
    refused = session.scalars(
        select(AuditEvent).where(
            AuditEvent.outcome == "refused:404", AuditEvent.actor_handle == "karin"
        )
    ).all()
    assert [r.resource for r in refused] == ["GET /vard/flags/{flag_id}"]
    answer = karin.post(
        f"/vard/flags/{flags['allan']}/acknowledge", {"note": "x"}, token_from="/vard"
    )
    assert answer.status_code == 404
    assert session.get(Flag, flags["allan"]).status == "open"  # type: ignore[union-attr]


def test_a_note_that_cannot_be_saved_is_said_at_the_top_and_at_the_field(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    flag_id = _flags(client, auth)["asta"]
    eva = browser()
    eva.login("eva")
    url = f"/vard/flags/{flag_id}"
    answer = eva.post(f"{url}/notes", {"note": "   "}, token_from=url)
    assert answer.status_code == 422
    assert "Det finns ett problem" in answer.text and 'href="#notes-note"' in answer.text
    answer = eva.post(f"{url}/acknowledge", {"note": "x" * 2001}, token_from=url)
    assert answer.status_code == 422 and "högst 2000 tecken" in answer.text
    assert session.get(Flag, flag_id).status == "open"  # type: ignore[union-attr]
    assert not session.scalars(select(FlagNote).where(FlagNote.flag_id == flag_id)).all()


def test_filters_team_severity_status_overdue(
    client: TestClient, auth: Auth, browser: Callable[[], Browser]
) -> None:
    _flags(client, auth)
    eva = browser()
    eva.login("eva")
    teams = client.get("/v1/teams", headers=auth("eva")).json()["items"]
    assert len(teams) == 1
    high = eva.client.get("/vard?severity=high")
    assert "Allan Andersson" in high.text and "Asta Berglund" not in high.text
    assert "1 flaggor" in high.text
    assert "Inga flaggor att visa." in eva.client.get("/vard?status=resolved").text
    assert "Inga flaggor att visa." in eva.client.get("/vard?overdue=1").text
    team = eva.client.get(f"/vard?team={teams[0]['id']}")
    assert "Allan Andersson" in team.text and "Asta Berglund" in team.text
    # htmx asks for the rows only.
    fragment = eva.client.get(
        "/vard?severity=moderate", headers={"HX-Request": "true", "HX-Target": "results"}
    )
    assert fragment.text.lstrip().startswith("<section") and "Asta Berglund" in fragment.text


def test_english_switch_is_kept_in_the_session(
    client: TestClient, auth: Auth, browser: Callable[[], Browser]
) -> None:
    eva = browser()
    eva.login("eva")
    page = eva.client.get("/vard?lang=en")
    assert '<html lang="en">' in page.text and "Worklist" in page.text
    page = eva.client.get("/vard")
    assert '<html lang="en">' in page.text
    page = eva.client.get("/vard?lang=sv")
    assert '<html lang="sv">' in page.text and "Arbetslista" in page.text


def test_only_clinicians_use_vard_and_anonymous_goes_to_login(
    browser: Callable[[], Browser],
) -> None:
    anonymous = browser()
    answer = anonymous.client.get("/vard", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/vard"
    asta = browser()
    page = asta.login("asta")
    assert page.url.path == "/mina"  # the patients' own pages
    refused = asta.client.get("/vard")
    assert refused.status_code == 403 and "för vårdpersonal" in refused.text


def test_the_session_never_authenticates_the_api(
    client: TestClient, auth: Auth, browser: Callable[[], Browser]
) -> None:
    eva = browser()
    eva.login("eva")
    assert eva.client.get("/v1/flags").status_code == 401
    assert eva.client.get("/v1/me").status_code == 401
    token = eva.csrf("/vard")
    assert eva.client.get("/v1/me", headers={"X-CSRF-Token": token}).status_code == 401


def test_the_cookie_is_secure_off_loopback(app: Any) -> None:
    with TestClient(app, base_url="https://vard.example.se") as remote:
        cookie = remote.get("/login").headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_production_login_offers_no_development_choice(app: Any) -> None:
    app.state.settings = app.state.settings.model_copy(update={"environment": "production"})
    with TestClient(app, base_url="http://127.0.0.1") as prod:
        page = prod.get("/login")
        assert "Logga in med e-legitimation" in page.text and "Eva Ek" not in page.text
        token = page.text.split('"X-CSRF-Token": "')[1].split('"')[0]
        answer = prod.post("/login", data={"handle": "eva", "csrf_token": token})
        assert answer.status_code == 404


def test_a_flag_whose_reading_was_entered_in_error_says_so(
    client: TestClient, auth: Auth, browser: Callable[[], Browser]
) -> None:
    flag_id = _flags(client, auth)["allan"]
    flag = client.get("/v1/patients/me/flags", headers=auth("allan")).json()["items"][0]
    reading_id = flag["reading_ids"][0]
    deleted = client.delete(f"/v1/patients/me/readings/{reading_id}", headers=auth("allan"))
    assert deleted.status_code in (200, 204), deleted.text
    eva = browser()
    eva.login("eva")
    page = eva.client.get(f"/vard/flags/{flag_id}")
    assert "Felregistrerat värde" in page.text
    assert "har markerats som felregistrerade" in page.text
    assert "Felregistrerat värde" in eva.client.get("/vard").text


def test_values_are_shown_the_swedish_way() -> None:
    from app.web import texts

    assert texts.shown("73.3", "sv") == "73,3" and texts.shown("73.3", "en") == "73.3"
    assert texts.shown("2026-11-20T06:31:51+00:00", "sv") == "20 nov 2026 07:31"
    assert texts.shown("weight-gain-hf", "sv") == "weight-gain-hf"
    assert texts.duration(90 * 60, "sv") == "1 tim" and texts.duration(3 * 86400, "sv") == "3 d"
    assert texts.reading_type("weight", "sv") == "Vikt"


def test_a_mean_over_a_dense_week_lists_its_latest_readings_and_says_how_many(
    client: TestClient, auth: Auth, browser: Callable[[], Browser]
) -> None:
    """A home mean over 140 readings lists the latest 30 of them and says so (sv)."""
    week = [bp(150, 95, minutes_ago=60 + i * 60) for i in range(140)]  # hourly, ~6 days
    synced = client.post("/v1/patients/me/sync", json=batch(*week), headers=auth("allan"))
    assert synced.status_code == 200
    flags = client.get("/v1/patients/me/flags", headers=auth("allan")).json()["items"]
    (mean,) = [f for f in flags if f["rule"]["id"] == "bp-home-mean-high"]
    explanation = mean["explanation"]
    used = explanation["computed"]["readings_used"]
    assert len(explanation["readings"]) == MAX_EXPLAINED_READINGS == 30
    assert explanation["readings_total"] >= used > 100
    times = [r["time"] for r in explanation["readings"]]
    latest = max(datetime.fromisoformat(r["time"]) for r in week)
    assert times == sorted(times) and datetime.fromisoformat(times[-1]) == latest
    eva = browser()
    eva.login("eva")
    page = eva.client.get(f"/vard/flags/{mean['id']}")
    total = explanation["readings_total"]
    assert f"De senaste 30 av {total} mätvärden som regeln räknade med." in page.text
    assert page.text.count("<td>150/95") == 30  # the table lists the latest 30
