"""Advice in the service: whom it names (the care contact) and whom it speaks to (patient or
proxy), through the advice list, the sync answer and the change feed, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import delete, event, select, update
from sqlalchemy.orm import Session

from app.findings.evaluation import addressee
from app.patients.models import CareTeam, Patient
from app.plans.models import CareContactRecord
from rules.advice import CareContact
from tests.app.factories import batch, patient_id, scalar

Auth = Callable[[str], dict[str, str]]
KARIN = "Karin Holm (sjuksköterska, Hemsjukvården Exempels kommun) på telefon 08-465 004 20"


def _fever(client: TestClient, auth: Auth, handle: str = "asta") -> dict[str, object]:
    reading = scalar("temperature", 39.6, "Cel", minutes_ago=3)
    answer = client.post("/v1/patients/me/sync", json=batch(reading), headers=auth(handle))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_high_risk_fever_names_astas_contact_and_speaks_to_maria_about_asta(
    client: TestClient, auth: Auth, session: Session
) -> None:
    answer = _fever(client, auth)
    (own,) = [a for a in answer["advice"] if a["rule"]["id"] == "temperature-fever"]
    assert own["priority"] == "urgent"
    assert own["title"] == "Du har hög feber – ring vården i dag"
    assert f"Ring {KARIN} i dag." in own["body"] and "39,6 °C" in own["body"]
    pid = patient_id(session, "asta")
    for handle, title in (
        ("asta", "Du har hög feber – ring vården i dag"),
        ("karin", "Du har hög feber – ring vården i dag"),  # the team reads what she was told
        ("maria", "Asta har hög feber – ring vården i dag"),
    ):
        listed = client.get(f"/v1/patients/{pid}/advice", headers=auth(handle))
        assert listed.status_code == 200
        (item,) = [a for a in listed.json()["items"] if a["id"] == own["id"]]
        assert item["title"] == title, handle
        assert set(item) == set(own)  # one shape for every reader
    maria = client.get(
        f"/v1/patients/{pid}/advice", headers={**auth("maria"), "accept-language": "en"}
    ).json()["items"]
    (item,) = [a for a in maria if a["id"] == own["id"]]
    assert item["body"].startswith("Asta's temperature was 39.6 °C.")
    assert " your " not in item["body"]


def test_the_change_feed_gives_each_reader_their_variant(
    client: TestClient, auth: Auth, session: Session
) -> None:
    own = _fever(client, auth)
    advice_id = next(a["id"] for a in own["advice"] if a["rule"]["id"] == "temperature-fever")
    pid = patient_id(session, "asta")
    seen = {}
    for handle in ("asta", "maria"):
        changes = client.get(f"/v1/patients/{pid}/changes", headers=auth(handle)).json()
        (change,) = [c for c in changes["changes"] if c["id"] == advice_id]
        assert "proxy" not in change["data"]
        seen[handle] = change["data"]["body"]
    assert seen["asta"].startswith("Din temperatur var 39,6 °C.")
    assert seen["maria"].startswith("Astas temperatur var 39,6 °C.")
    # A proxy who enters a reading gets the proxy's variant in the sync answer too.
    reading = scalar("temperature", 39.8, "Cel", minutes_ago=1)
    answer = client.post(f"/v1/patients/{pid}/sync", json=batch(reading), headers=auth("maria"))
    assert answer.status_code == 200
    for change in answer.json()["changes"]:
        if change["entity"] == "advice" and change["id"] == advice_id:
            assert change["data"]["body"].startswith("Astas temperatur")


def test_the_contact_falls_back_to_the_team_phone_then_to_a_generic_phrase(
    session: Session,
) -> None:
    asta = session.scalars(select(Patient).where(Patient.display_name == "Asta Berglund")).one()
    named = addressee(session, asta)
    assert named.patient_name == "Asta"
    # The named care contact (fast vårdkontakt): the person, her title and unit, her phone.
    assert named.contact == CareContact(
        name="Karin Holm",
        role="Sjuksköterska, Hemsjukvården Exempels kommun",
        phone="08-465 004 20",
    )
    session.execute(delete(CareContactRecord))
    team = addressee(session, asta).contact
    # Asta is enrolled with two teams at once: the first by name that has a phone.
    assert team == CareContact(name="Hemsjukvården, team Norr", phone="08-465 004 20", team=True)
    session.execute(update(CareTeam).values(phone=""))
    assert addressee(session, asta).contact is None
    session.rollback()


def test_the_contact_is_read_only_when_advice_is_worded(
    client: TestClient, app: Any, auth: Auth
) -> None:
    """Most syncs word no advice (a value in range): they do not look the contact up. A sync
    whose advice names the contact reads it, and the advice names Karin."""
    asked: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "care_contacts" in statement:
            asked.append(statement)

    event.listen(app.state.engine, "before_cursor_execute", listen)
    try:
        normal = scalar("temperature", 36.8, "Cel", minutes_ago=2)
        quiet = client.post("/v1/patients/me/sync", json=batch(normal), headers=auth("asta"))
        assert quiet.status_code == 200 and quiet.json()["advice"] == []
        assert asked == []
        fever = scalar("temperature", 39.6, "Cel", minutes_ago=1)
        loud = client.post("/v1/patients/me/sync", json=batch(fever), headers=auth("asta"))
        assert loud.status_code == 200
        assert any("Karin Holm" in a["body"] for a in loud.json()["advice"])
        assert asked != []
    finally:
        event.remove(app.state.engine, "before_cursor_execute", listen)
