"""The patient's and relative's pages: overview, entering a value by hand, /mina/sync, who read."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.clock import utcnow
from app.readings.models import Reading
from tests.app.factories import patient_id
from tests.app.web.conftest import Browser

Auth = Callable[[str], dict[str, str]]


def _readings(session: Session, pid: str) -> int:
    session.expire_all()
    query = select(func.count()).select_from(Reading).where(Reading.patient_id == pid)
    return int(session.scalar(query) or 0)


def _entry_form(page: str) -> dict[str, str]:
    client_id = re.search(r'name="client_id" value="([^"]+)"', page)
    when = re.search(r'id="time" name="time" value="([^"]+)"', page)
    assert client_id and when, page[-1500:]
    return {"client_id": client_id.group(1), "time": when.group(1)}


def test_asta_lands_on_her_overview_with_values_limits_advice_and_whom_to_call(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    now = utcnow()
    body = {
        "source": {"id": "scale-1", "kind": "device", "name": "Våg"},
        "readings": [
            {"client_id": "w1", "type": "spo2", "time": (now - timedelta(hours=2)).isoformat(),
             "unit": "%", "value": 86},
        ],
    }  # fmt: skip
    assert client.post("/v1/patients/me/sync", json=body, headers=auth("asta")).status_code == 200
    me = browser()
    landed = me.login("asta")
    assert landed.url.path == "/mina"
    page = landed.text
    assert "Hej Asta" in page
    assert re.search(r'data-type="spo2".*?<strong>86</strong> %', page, re.S)
    assert "Utanför din gräns" in page and "Din gräns: under 88 %" in page
    assert 'class="advice advice-' in page  # the low SpO2 gave her advice
    assert "Karin Holm" in page and "08-465 004 20" in page and "ring 112" in page
    audited = session.scalars(
        select(AuditEvent).where(AuditEvent.resource == "GET /mina").order_by(AuditEvent.seq.desc())
    ).first()
    assert audited is not None and audited.actor_handle == "asta"


def test_a_value_written_by_hand_is_stored_once_and_gives_advice_at_once(
    browser: Callable[[], Browser], session: Session
) -> None:
    asta = patient_id(session, "asta")
    me = browser()
    me.login("asta")
    choices = me.client.get("/mina/varden/ny").text
    assert 'href="/mina/varden/ny?type=spo2"' in choices and "type=cgm_glucose" not in choices
    form = _entry_form(me.client.get("/mina/varden/ny?type=spo2").text)
    before = _readings(session, asta)
    entry = {**form, "type": "spo2", "spo2-value": "85"}
    saved = me.post("/mina/varden/ny", entry)
    assert saved.status_code == 200 and saved.url.path == "/mina", saved.text[-1500:]
    assert "Värdet är sparat." in saved.text and "Nytt råd:" in saved.text
    assert _readings(session, asta) == before + 1
    stored = session.scalars(select(Reading).where(Reading.patient_id == asta)
                             .order_by(Reading.received_at.desc())).first()  # fmt: skip
    assert stored is not None and stored.client_id == form["client_id"]

    # The same form sent twice (a double click, a retry) stores nothing new.
    again = me.post("/mina/varden/ny", entry, token_from="/mina")
    assert "Värdet var redan sparat." in again.text
    assert _readings(session, asta) == before + 1


def test_a_value_that_cannot_be_used_is_named_in_plain_swedish_and_nothing_is_stored(
    browser: Callable[[], Browser], session: Session
) -> None:
    asta = patient_id(session, "asta")
    me = browser()
    me.login("asta")
    form = _entry_form(me.client.get("/mina/varden/ny?type=weight").text)
    before = _readings(session, asta)
    words = me.post("/mina/varden/ny", {**form, "type": "weight", "weight-value": "sjuttio"})
    assert words.status_code == 422 and "Skriv ett tal, till exempel 72,4." in words.text
    implausible = me.post("/mina/varden/ny", {**form, "type": "weight", "weight-value": "720"})
    assert implausible.status_code == 422 and "Värdet verkar inte stämma." in implausible.text
    assert 'value="720"' in implausible.text  # what she wrote stays in the field
    future = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    late = me.post("/mina/varden/ny", {**form, "time": future, "type": "weight",
                                       "weight-value": "72,4"})  # fmt: skip
    assert late.status_code == 422 and "Tiden kan inte vara i framtiden." in late.text
    assert _readings(session, asta) == before


def test_mina_sync_takes_the_envelope_with_the_cookie_and_csrf_header_and_answers_as_the_api(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    asta = patient_id(session, "asta")
    me = browser()
    me.login("asta")
    token = me.csrf("/mina")
    now = utcnow()
    envelope = {
        "source": {"id": "pwa-1", "kind": "manual", "name": "Min egenvård"},
        "readings": [
            {"client_id": "off-1", "type": "weight",
             "time": (now - timedelta(minutes=5)).isoformat(), "unit": "kg", "value": 72.4},
            {"client_id": "off-2", "type": "weight", "time": now.isoformat(), "unit": "kg",
             "value": -1},
        ],
    }  # fmt: skip
    before = _readings(session, asta)
    refused = me.client.post("/mina/sync", json=envelope)  # no CSRF header
    assert refused.status_code == 403 and _readings(session, asta) == before
    answer = me.client.post("/mina/sync", json=envelope, headers={"X-CSRF-Token": token})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert [r["status"] for r in data["results"]] == ["created", "rejected"]
    assert set(data) == {"results", "advice", "changes", "cursor", "has_more"}
    again = me.client.post("/mina/sync", json=envelope, headers={"X-CSRF-Token": token})
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "rejected"]
    assert _readings(session, asta) == before + 1
    # The bearer API never takes the cookie: without a token it is 401.
    assert me.client.post(f"/v1/patients/{asta}/sync", json=envelope).status_code == 401


def test_asta_sees_who_read_her_data_by_name_and_care_unit(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    asta = patient_id(session, "asta")
    karin = browser()
    karin.login("karin")
    assert karin.client.get(f"/vard/patients/{asta}").status_code == 200
    me = browser()
    me.login("asta")
    page = me.client.get("/mina/atkomst").text
    assert "Vem har läst mina uppgifter" in page
    assert re.search(r"Karin Holm, Hemsjukvård[^<]*</td>\s*<td[^>]*>läste", page), page[-3000:]
    today = utcnow().date()
    old = me.client.get(f"/mina/atkomst?to={(today - timedelta(days=400)).isoformat()}").text
    assert "Karin Holm" not in old and "Ingen har läst något under den tiden." in old


def test_maria_acts_for_asta_within_her_grant_and_never_sees_allan(
    browser: Callable[[], Browser], session: Session
) -> None:
    asta, allan = patient_id(session, "asta"), patient_id(session, "allan")
    maria = browser()
    landed = maria.login("maria")
    assert landed.url.path == "/mina"
    assert "Du ser uppgifter för Asta Berglund." in landed.text  # her only grant: no choice
    assert f"/mina/varden/ny?for={asta}" in landed.text  # every link keeps whom she acts for
    choices = maria.client.get(f"/mina/varden/ny?for={asta}").text
    assert f'href="/mina/varden/ny?for={asta}&amp;type=weight"' in choices
    form = _entry_form(maria.client.get(f"/mina/varden/ny?for={asta}&type=weight").text)
    entry = {**form, "type": "weight", "weight-value": "73,0"}
    saved = maria.post(f"/mina/varden/ny?for={asta}", entry, token_from="/mina")
    assert saved.url.path == "/mina" and "Värdet är sparat." in saved.text
    # Allan is not hers to see: the same answer as a patient that does not exist.
    for path in ("/mina", "/mina/atkomst", "/mina/varden/ny"):
        assert maria.client.get(f"{path}?for={allan}").status_code == 404
        assert maria.client.get(f"{path}?for=no-such-patient").status_code == 404
    # Her grant has no access-log scope.
    assert maria.client.get(f"/mina/atkomst?for={asta}").status_code == 404


def test_the_care_team_is_sent_to_its_own_pages_and_a_stranger_to_login(
    browser: Callable[[], Browser],
) -> None:
    eva = browser()
    eva.login("eva")
    page = eva.client.get("/mina")
    assert page.status_code == 403 and "Vården har sina sidor under Arbetslista." in page.text
    stranger = browser()
    answer = stranger.client.get("/mina", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_at25_the_patient_pages_refuse_a_missing_foreign_or_stale_csrf_token(
    browser: Callable[[], Browser], session: Session
) -> None:
    """AT-25 for /mina: the entry form and /mina/sync without the session's own token."""
    asta_pid = patient_id(session, "asta")
    asta, allan = browser(), browser()
    asta.login("asta")
    allan.login("allan")
    form = _entry_form(asta.client.get("/mina/varden/ny?type=weight").text)
    entry = {**form, "type": "weight", "weight-value": "72,0"}
    envelope = {
        "source": {"id": "pwa-1", "kind": "manual"},
        "readings": [{"client_id": "at25", "type": "weight", "time": utcnow().isoformat(),
                      "unit": "kg", "value": 72.0}],
    }  # fmt: skip
    asta_token, allan_token = asta.csrf("/mina"), allan.csrf("/mina")
    requests = accepted = 0

    def replay(one: Browser, token: str | None) -> None:
        nonlocal requests, accepted
        before = _readings(session, asta_pid)
        posted = one.client.post(
            "/mina/varden/ny", data={**entry, **({"csrf_token": token} if token else {})},
            follow_redirects=False,
        )  # fmt: skip
        synced = one.client.post("/mina/sync", json=envelope,
                                 headers={"X-CSRF-Token": token} if token else {})  # fmt: skip
        for answer in (posted, synced):
            requests += 1
            refused = answer.status_code == 403 or (
                answer.status_code in (302, 303) and answer.headers["location"].startswith("/login")
            )
            accepted += 0 if refused else 1
        assert _readings(session, asta_pid) == before

    replay(asta, None)
    replay(asta, allan_token)
    old = asta.client.cookies["egenvard_session"]
    asta.post("/logout", {}, token_from="/mina")
    replayer = browser()
    replayer.client.cookies.set("egenvard_session", old)
    replay(replayer, asta_token)
    print(f"AT-25 (mina) requests={requests} accepted={accepted}")
    assert requests == 6 and accepted == 0
