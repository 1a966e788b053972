"""The messages page (/mina/meddelanden): the thread with the care team, as the API's."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.dialogue.models import Message
from tests.app.factories import batch, patient_id, scalar
from tests.app.web.conftest import Browser

Auth = Callable[[str], dict[str, str]]
PAGE = "/mina/meddelanden"


def _messages(session: Session, pid: str) -> int:
    session.expire_all()
    query = select(func.count()).select_from(Message).where(Message.patient_id == pid)
    return int(session.scalar(query) or 0)


def test_asta_writes_karin_answers_through_the_api_and_the_answer_shows_and_is_read(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    asta_id = patient_id(session, "asta")
    asta = browser()
    asta.login("asta")
    empty = asta.client.get(PAGE)
    assert empty.status_code == 200 and "Inga meddelanden än." in empty.text
    assert '<label class="label" for="body">' in empty.text

    sent = asta.post(PAGE, {"body": "Hej!\r\nJag är yr på morgonen.\tMvh Asta"})
    assert sent.status_code == 200 and sent.url.path == PAGE, sent.text[-1500:]
    assert "Ditt meddelande är skickat." in sent.text
    assert "Hej!\nJag är yr på morgonen.\tMvh Asta" in sent.text  # newlines and tabs kept
    assert 'data-side="patient"' in sent.text and ">Du</h2>" in sent.text

    reply = client.post(
        f"/v1/patients/{asta_id}/messages",
        json={"body": "Hej Asta, ring oss i morgon."},
        headers=auth("karin"),
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["read_at"] is None
    page = asta.client.get(PAGE).text
    assert "Hej Asta, ring oss i morgon." in page
    assert "Karin Holm, vårdpersonal" in page
    assert page.index("Jag är yr") < page.index("ring oss i morgon")  # newest last
    session.expire_all()
    read = session.get(Message, reply.json()["id"])
    assert read is not None and read.read_at is not None  # opening the page marked it read


def test_team_notes_never_show_on_the_patients_page(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    synced = client.post(
        "/v1/patients/me/sync", json=batch(scalar("pulse", 130, "/min")), headers=auth("asta")
    )
    assert synced.status_code == 200, synced.text
    flags = client.get("/v1/flags", headers=auth("karin")).json()["items"]
    flag = next(f for f in flags if f["patient"]["display_name"] == "Asta Berglund")
    note = client.post(
        f"/v1/flags/{flag['id']}/notes",
        json={"body": "Intern anteckning: ring dottern"},
        headers=auth("karin"),
    )
    assert note.status_code in (200, 201), note.text
    asta = browser()
    asta.login("asta")
    page = asta.client.get(PAGE).text
    assert "Intern anteckning" not in page and "Inga meddelanden än." in page


def test_a_message_that_cannot_be_sent_is_named_at_the_field_and_nothing_is_stored(
    browser: Callable[[], Browser], session: Session
) -> None:
    asta_id = patient_id(session, "asta")
    asta = browser()
    asta.login("asta")
    before = _messages(session, asta_id)
    cases = {
        "": "Skriv något i meddelandet.",
        "  \n ": "Skriv något i meddelandet.",
        "x" * 4001: "Meddelandet är för långt. Det får vara högst 4",
        "Hej\x07 där": "Meddelandet har tecken som inte går att skicka.",
        "Hej \u202edär": "Meddelandet har tecken som inte går att skicka.",
    }
    for body, said in cases.items():
        refused = asta.post(PAGE, {"body": body})
        assert refused.status_code == 422, body
        assert said in refused.text, refused.text[-2000:]
        assert 'id="body-error"' in refused.text and 'aria-describedby="body-error"' in refused.text
    assert _messages(session, asta_id) == before


def test_a_relative_needs_the_message_scope_and_no_token_means_nothing_is_sent(
    browser: Callable[[], Browser], session: Session
) -> None:
    asta_id = patient_id(session, "asta")
    maria = browser()
    maria.login("maria")  # her seeded grant: read, advice, enter values; not message
    assert maria.client.get(f"{PAGE}?for={asta_id}").status_code == 404
    assert maria.client.get(PAGE).status_code == 404  # her only person is Asta
    assert 'href="/mina/meddelanden' not in maria.client.get(f"/mina?for={asta_id}").text
    refused = maria.post(f"{PAGE}?for={asta_id}", {"body": "Hej"}, token_from="/mina")
    assert refused.status_code == 404
    allan = browser()
    allan.login("allan")
    assert allan.client.get(f"{PAGE}?for={asta_id}").status_code == 404

    asta = browser()
    asta.login("asta")
    assert 'href="/mina/meddelanden"' in asta.client.get("/mina").text
    before = _messages(session, asta_id)
    for token in ({}, {"csrf_token": "not-this-sessions"}):
        assert asta.client.post(PAGE, data={"body": "Hej", **token}).status_code == 403
    assert _messages(session, asta_id) == before
