"""The dialogue and flag notes over HTTP on both databases (issue 13, DESIGN.md §4.7)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from app.auth.models import ProxyGrant, User
from app.clock import clock
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.dialogue.models import Message
from app.findings.models import FlagNote
from app.push.dispatcher import dispatch
from app.push.models import OutboxMessage
from app.push.sender import RecordingSender
from tests.app.factories import batch, bp, patient_id, scalar
from tests.app.push.push_service import LocalPushService

Auth = Callable[[str], dict[str, str]]

QUESTION = "Ska jag ändra min medicin när trycket är högt?\n\tTack"
ANSWER = "Nej, behåll dosen. Vi ringer dig i morgon."
ALLAN = "Allan Andersson"
EVA = {"display_name": "Eva Ek", "role": "clinician", "care_unit": "Vårdcentralen Norra"}


@pytest.fixture(autouse=True)
def _daytime() -> Iterator[None]:
    """Noon in Stockholm tomorrow: after the seeding, outside anyone's quiet hours."""
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    clock.fixed = tomorrow.replace(hour=11, minute=0, second=0, microsecond=0)
    yield
    clock.fixed = None


@pytest.fixture
def push() -> Iterator[LocalPushService]:
    service = LocalPushService(hang_seconds=0.6)
    yield service
    service.stop()


def _later(minutes: int = 1) -> None:
    """Move the frozen clock on: a thread and a note history are ordered by time."""
    assert clock.fixed is not None
    clock.fixed += timedelta(minutes=minutes)


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _give_maria(session: Session, *scopes: str) -> None:
    maria = session.scalars(select(User.id).where(User.handle == "maria")).one()
    session.execute(update(ProxyGrant).where(ProxyGrant.grantee_id == maria).values(scopes=scopes))


def _row(items: list[dict[str, object]], pid: str) -> dict[str, object]:
    return next(i for i in items if i["patient_id" if "patient_id" in i else "id"] == pid)


def test_a_question_and_its_answer(
    client: TestClient,
    auth: Auth,
    session: Session,
    settings: Settings,
    push: LocalPushService,
) -> None:
    allan = patient_id(session, "allan")
    phone = client.post(
        "/v1/push/subscriptions", json=push.subscriber().subscription_json(), headers=auth("allan")
    )
    assert phone.status_code == 201, phone.text
    client.post("/v1/patients/me/sync", json=batch(bp(185, 100)), headers=auth("allan"))

    asked = client.post(f"/v1/patients/{allan}/messages", json={"body": QUESTION},
                        headers=auth("allan"))  # fmt: skip
    assert asked.status_code == 201, asked.text
    question = asked.json()
    assert question["body"] == QUESTION  # the line break and the tab are kept
    assert question["side"] == "patient" and question["read_at"] is None
    assert question["author"]["display_name"] == ALLAN
    assert (question["author"]["role"], question["author"]["care_unit"]) == ("patient", None)

    # The care team sees one unread message on Allan's worklist row and patient row.
    flags = client.get("/v1/flags", headers=auth("eva")).json()["items"]
    allan_flag = next(f for f in flags if f["patient_id"] == allan)
    assert allan_flag["patient"]["unread_messages"] == 1
    assert allan_flag["patient"]["display_name"]
    patients = client.get("/v1/patients", headers=auth("eva")).json()["items"]
    allan_row = next(p for p in patients if p["id"] == allan)
    assert allan_row["patient"]["unread_messages"] == 1
    assert allan_row["patient"]["display_name"] == allan_row["display_name"]

    # Eva opens the thread: the question is read, and the count goes to zero.
    thread = client.get(f"/v1/patients/{allan}/messages", headers=auth("eva"))
    assert thread.status_code == 200, thread.text
    assert thread.json()["unread"] == 1
    assert [m["id"] for m in thread.json()["items"]] == [question["id"]]
    assert thread.json()["items"][0]["read_at"] is not None
    again = client.get(f"/v1/patients/{allan}/messages", headers=auth("eva")).json()
    assert again["unread"] == 0
    patients = client.get("/v1/patients", headers=auth("eva")).json()["items"]
    assert next(p for p in patients if p["id"] == allan)["patient"]["unread_messages"] == 0

    _later()
    answered = client.post(f"/v1/patients/{allan}/messages", json={"body": ANSWER},
                           headers=auth("eva"))  # fmt: skip
    assert answered.status_code == 201, answered.text
    author = answered.json()["author"]
    assert {k: author[k] for k in EVA} == EVA and author["id"]
    assert answered.json()["side"] == "care_team"

    # Allan is told by push, without the text.
    rows = list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "message")))
    assert [r.subscription_id for r in rows] == [phone.json()["id"]]
    payload = json.dumps(rows[0].payload, ensure_ascii=False)
    assert rows[0].payload["title"] == "Nytt meddelande från vården"
    assert rows[0].payload["message_id"] == answered.json()["id"]
    assert rows[0].payload["url"] == "/mina/meddelanden"
    for word in ANSWER.split() + QUESTION.split():
        assert len(word) < 4 or word.strip(".,?") not in payload
    # The dispatcher delivers a message push (and only its title and ids).
    engine = make_engine(settings.database_url)
    sender = RecordingSender()
    stats = dispatch(make_sessionmaker(engine), settings, clock.now(), sender=sender,
                     rng=random.Random(1))  # fmt: skip
    engine.dispose()
    told = [m for m in sender.sent if b"message_id" in m.payload]
    assert stats.sent == len(sender.sent) and len(told) == 1  # (and the advice about 185/100)
    assert "behåll" not in told[0].payload.decode()

    # Allan opens the thread: Eva's answer is read; both in his change feed.
    mine = client.get("/v1/patients/me/messages", headers=auth("allan")).json()
    assert mine["unread"] == 1
    assert [m["body"] for m in mine["items"]] == [QUESTION, ANSWER]
    assert all(m["read_at"] for m in mine["items"])
    changes = client.get("/v1/patients/me/changes", headers=auth("allan")).json()["changes"]
    assert {c["id"] for c in changes if c["entity"] == "message"} == {
        question["id"],
        answered.json()["id"],
    }


def test_a_patient_message_is_pushed_to_the_team_without_its_text(
    client: TestClient, auth: Auth, session: Session, push: LocalPushService
) -> None:
    eva_sub = client.post(
        "/v1/push/subscriptions", json=push.subscriber().subscription_json(), headers=auth("eva")
    )
    assert eva_sub.status_code == 201, eva_sub.text
    client.post("/v1/patients/me/messages", json={"body": QUESTION}, headers=auth("allan"))
    rows = list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "message")))
    assert [r.subscription_id for r in rows] == [eva_sub.json()["id"]]
    assert rows[0].payload["title"] == f"Nytt meddelande från {ALLAN}"
    assert "medicin" not in json.dumps(rows[0].payload, ensure_ascii=False)


def test_bad_messages_are_refused_and_nothing_is_stored(
    client: TestClient, auth: Auth, session: Session
) -> None:
    for body, loc in [
        ({"body": "Hej\x07"}, "body"),
        ({"body": ""}, "body"),
        ({"body": "x" * 4001}, "body"),
        ({"body": "Hej", "urgent": True}, "urgent"),
        ({}, "body"),
    ]:
        refused = client.post("/v1/patients/me/messages", json=body, headers=auth("allan"))
        assert refused.status_code == 422, (body, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        errors = refused.json()["errors"]
        assert errors and any(loc in str(e["loc"]) for e in errors), errors
        assert all(e["message"] for e in errors)
    assert _count(session, Message) == 0
    assert client.post("/v1/patients/me/messages", json={"body": "x" * 4000},
                       headers=auth("allan")).status_code == 201  # fmt: skip


def test_who_may_take_part(client: TestClient, auth: Auth, session: Session) -> None:
    allan, asta = patient_id(session, "allan"), patient_id(session, "asta")
    # Karin is not in Allan's team: his thread does not exist for her.
    for method in ("GET", "POST"):
        denied = client.request(method, f"/v1/patients/{allan}/messages", json={"body": "Hej"},
                                headers=auth("karin"))  # fmt: skip
        assert denied.status_code == 404, denied.text
        assert denied.json()["detail"] == "No such patient."
    # Maria may read Asta's record but her grant has no message scope: 403.
    assert client.get(f"/v1/patients/{asta}/messages", headers=auth("maria")).status_code == 403
    assert client.post(f"/v1/patients/{asta}/messages", json={"body": "Hej"},
                       headers=auth("maria")).status_code == 403  # fmt: skip
    assert client.get(f"/v1/patients/{asta}/messages", headers=auth("admin")).status_code == 403

    client.post(f"/v1/patients/{asta}/messages", json={"body": "Vi kommer på tisdag."},
                headers=auth("karin"))  # fmt: skip
    # Without the scope, the thread is not in the feed Maria reads either.
    changes = client.get(f"/v1/patients/{asta}/changes", headers=auth("maria")).json()["changes"]
    assert not [c for c in changes if c["entity"] == "message"]

    _give_maria(session, "read", "receive_advice", "enter_readings", "message")
    _later()
    wrote = client.post(f"/v1/patients/{asta}/messages", json={"body": "Mamma mår bättre."},
                        headers=auth("maria"))  # fmt: skip
    assert wrote.status_code == 201, wrote.text
    assert wrote.json()["side"] == "patient" and wrote.json()["author"]["role"] == "proxy"
    thread = client.get(f"/v1/patients/{asta}/messages", headers=auth("maria")).json()
    assert thread["unread"] == 1  # Karin's message, now read by the patient side
    assert [m["body"] for m in thread["items"]] == ["Vi kommer på tisdag.", "Mamma mår bättre."]
    karin = client.get(f"/v1/patients/{asta}/messages", headers=auth("karin")).json()
    assert karin["items"][0]["author"]["care_unit"] == "Hemsjukvården Exempels kommun"


def test_flag_notes_are_a_history_for_the_team_only(
    client: TestClient, auth: Auth, session: Session
) -> None:
    asta = patient_id(session, "asta")
    synced = client.post("/v1/patients/me/sync", json=batch(scalar("pulse", 130, "/min")),
                         headers=auth("asta"))  # fmt: skip
    assert synced.status_code == 200
    flag_id = client.get("/v1/patients/me/flags", headers=auth("asta")).json()["items"][0]["id"]
    notes = ["Ringde Asta, mår bra.\nMäter igen.", "Hembesök bokat.", "Pulsen normal vid besök."]

    acked = client.post(f"/v1/flags/{flag_id}/acknowledge", json={"note": notes[0]},
                        headers=auth("eva"))  # fmt: skip
    assert acked.status_code == 200, acked.text
    assert {k: acked.json()["acknowledged_by"][k] for k in EVA} == EVA
    _later()
    added = client.post(f"/v1/flags/{flag_id}/notes", json={"body": notes[1]},
                        headers=auth("karin"))  # fmt: skip
    assert added.status_code == 201, added.text
    assert added.json()["author"]["display_name"] == "Karin Holm"
    assert added.json()["author"]["care_unit"] == "Hemsjukvården Exempels kommun"
    _later()
    resolved = client.post(f"/v1/flags/{flag_id}/resolve", json={"note": notes[2]},
                           headers=auth("karin"))  # fmt: skip
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert [n["body"] for n in body["notes"]] == notes  # none overwritten
    assert [n["author"]["display_name"] for n in body["notes"]] == [
        "Eva Ek", "Karin Holm", "Karin Holm"
    ]  # fmt: skip
    assert body["notes"][0]["author"]["care_unit"] == "Vårdcentralen Norra"
    assert body["resolved_by"]["display_name"] == "Karin Holm"
    assert body["resolved_by"]["care_unit"] == "Hemsjukvården Exempels kommun"
    assert body["acknowledged_by"]["display_name"] == "Eva Ek"
    assert body["patient"]["display_name"] and "note" not in body
    assert _count(session, FlagNote) == 3

    worklist = client.get("/v1/flags", params={"status": "resolved"}, headers=auth("eva"))
    assert [n["body"] for n in _row(worklist.json()["items"], asta)["notes"]] == notes
    own = client.get(f"/v1/patients/{asta}/flags", headers=auth("karin")).json()["items"]
    assert [n["body"] for n in own[0]["notes"]] == notes
    assert own[0]["patient"] == {"id": asta, "display_name": "Asta Berglund", "unread_messages": 0}

    # The patient side never sees a note: not in flags, not in the feed, not in sync answers.
    _give_maria(session, "read", "receive_advice", "enter_readings", "message")
    for who in ("asta", "maria"):
        answers = [
            client.get(f"/v1/patients/{asta}/flags", headers=auth(who)),
            client.get(f"/v1/patients/{asta}/changes", headers=auth(who)),
            client.get("/v1/flags", params={"status": "resolved"}, headers=auth(who)),
        ]
        answers.append(client.post(f"/v1/patients/{asta}/sync", json=batch(), headers=auth(who)))
        for answer in answers:
            assert answer.status_code == 200, answer.text
            text = answer.text + json.dumps(answer.json(), ensure_ascii=False)
            assert '"notes"' not in text
            for note in notes:
                for line in note.split("\n"):
                    assert line not in text, (who, answer.url)
        flags = answers[0].json()["items"]
        assert flags and "notes" not in flags[0]
        assert flags[0]["resolved_by"]["display_name"] == "Karin Holm"
    # Only the care team adds notes, and a flag one may not see is no flag.
    assert client.post(f"/v1/flags/{flag_id}/notes", json={"body": "x"},
                       headers=auth("asta")).status_code == 403  # fmt: skip
    missing = client.post(f"/v1/flags/{flag_id}/notes", json={"body": "x"}, headers=auth("olof"))
    assert missing.status_code == 404 and missing.json()["detail"] == "No such flag."


def test_bad_notes_are_refused_and_nothing_is_stored(
    client: TestClient, auth: Auth, session: Session
) -> None:
    client.post("/v1/patients/me/sync", json=batch(bp(185, 100)), headers=auth("allan"))
    flag_id = client.get("/v1/patients/me/flags", headers=auth("allan")).json()["items"][0]["id"]
    for body in ({"body": ""}, {"body": "x" * 2001}, {"body": "a\x00b"}, {"body": "x", "y": 1}):
        refused = client.post(f"/v1/flags/{flag_id}/notes", json=body, headers=auth("eva"))
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["errors"]
    assert _count(session, FlagNote) == 0


def test_the_access_log_names_people(client: TestClient, auth: Auth, session: Session) -> None:
    allan = patient_id(session, "allan")
    client.get(f"/v1/patients/{allan}", headers=auth("eva"))
    log = client.get("/v1/patients/me/access-log", headers=auth("allan")).json()["items"]
    eva = next(e for e in log if e["actor"]["handle"] == "eva")
    assert {k: eva["actor"][k] for k in EVA} == EVA and eva["actor"]["id"]
    assert eva["care_unit"]["name"] == "Vårdcentralen Norra"  # the old fields stay


def test_migration_moves_flag_notes_and_takes_them_out_of_the_feed(
    database_at: Callable[[str], tuple[str, Engine]],
) -> None:
    """0009: a flag's one note becomes its first note (by its last writer); feeds lose it."""
    from sqlalchemy import text

    from app import migrate

    url, engine = database_at("0007_imports")
    at = "'2026-11-01 00:00:00+00'"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, handle, display_name, role, title, language, active,"
                f" created_at) VALUES ('u1', 'eva', 'Eva Ek', 'clinician', '', 'sv', true, {at}),"
                f" ('u2', 'karin', 'Karin Holm', 'clinician', '', 'sv', true, {at})"
            )
        )
        conn.execute(
            text(
                "INSERT INTO patients (id, personnummer, display_name, timezone, language,"
                f" created_at) VALUES ('p1', '197701172392', 'A', 'Europe/Stockholm', 'sv', {at})"
            )
        )
        conn.execute(
            text(
                "INSERT INTO evaluations (id, patient_id, rule_id, rule_version, plan_version,"
                " mode, anchor_key, anchor_time, status, reading_ids, explanation, created_at)"
                f" VALUES ('e1', 'p1', 'bp-low', 1, 1, 'active', 'e1', {at}, 'fired', '[]',"
                f" '{{}}', {at})"
            )
        )
        for flag, status, resolver in (("f1", "resolved", "'u2'"), ("f2", "acknowledged", "NULL"),
                                       ("f3", "open", "NULL")):  # fmt: skip
            note = "" if flag == "f3" else f"Anteckning {flag}"
            conn.execute(
                text(
                    "INSERT INTO flags (id, patient_id, rule_id, rule_version, evaluation_id,"
                    " severity, severity_rank, status, title, explanation, reading_ids,"
                    " firing_count, created_at, updated_at, acknowledged_at, acknowledged_by,"
                    " resolved_at, resolved_by, note) VALUES"
                    f" ('{flag}', 'p1', 'bp-low', 1, 'e1', 'low', 1, '{status}', '{{}}', '{{}}',"
                    f" '[]', 1, {at}, {at}, {at}, 'u1', {at}, {resolver}, '{note}')"
                )
            )
        conn.execute(
            text(
                "INSERT INTO changes (patient_id, seq, entity, op, entity_id, data, created_at)"
                f" VALUES ('p1', 1, 'flag', 'upsert', 'f1',"
                f' \'{{"id": "f1", "note": "Anteckning f1"}}\', {at})'
            )
        )
    migrate.upgrade(url)
    migrate.check(url)
    with engine.connect() as conn:
        notes = conn.execute(
            text("SELECT flag_id, author_id, body FROM flag_notes ORDER BY flag_id")
        ).all()
        data = conn.execute(text("SELECT data FROM changes")).scalar_one()
    assert [tuple(n) for n in notes] == [
        ("f1", "u2", "Anteckning f1"), ("f2", "u1", "Anteckning f2")
    ]  # fmt: skip
    assert "Anteckning" not in str(data) and "f1" in str(data)


def test_a_team_message_reaches_a_proxy_only_with_the_message_scope(
    client: TestClient, auth: Auth, session: Session, push: LocalPushService
) -> None:
    asta = patient_id(session, "asta")
    subscription = {**push.subscriber().subscription_json(), "patient_ids": [asta]}
    maria_sub = client.post("/v1/push/subscriptions", json=subscription, headers=auth("maria"))
    assert maria_sub.status_code == 201, maria_sub.text

    def told_maria() -> int:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "message"))
        return sum(r.subscription_id == maria_sub.json()["id"] for r in rows)

    client.post(f"/v1/patients/{asta}/messages", json={"body": "Vi kommer på tisdag."},
                headers=auth("karin"))  # fmt: skip
    assert told_maria() == 0  # her grant has read and receive_advice, not message
    _give_maria(session, "read", "receive_advice", "message")
    _later()
    client.post(f"/v1/patients/{asta}/messages", json={"body": "Vi kommer på onsdag."},
                headers=auth("karin"))  # fmt: skip
    assert told_maria() == 1
