"""Activities, the .ics calendar feed and activity reminders, on both databases (DESIGN §4.11)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from icalendar import Calendar
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.activities.jobs import run_activity_reminders
from app.activities.models import ActivityChange, ActivityReminder, CalendarLink
from app.audit import repository as audit_repository
from app.audit import service as audit
from app.audit.models import AuditEvent, AuditSubject
from app.auth.models import User
from app.clock import clock
from app.config import Settings
from app.feed.models import Change
from app.main import create_app
from app.push.dispatcher import dispatch
from app.push.models import OutboxMessage
from app.push.sender import RecordingSender
from tests.app.factories import patient_id
from tests.app.push import factories as f
from tests.app.push.push_service import LocalPushService

Auth = Callable[[str], dict[str, str]]
STOCKHOLM = ZoneInfo("Europe/Stockholm")
NOTE = "Ta med listan över dina mediciner."
PLACE = "Eva ringer dig på 070-123 45 67"
FIELDS = ("end", "kind", "note", "start", "status", "where_or_how", "who")


@pytest.fixture(autouse=True)
def _daytime() -> Iterator[datetime]:
    """Noon in Stockholm tomorrow: after the seeding, outside anyone's quiet hours."""
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    clock.fixed = tomorrow.replace(hour=11, minute=0, second=0, microsecond=0)
    yield clock.fixed
    clock.fixed = None


@pytest.fixture
def push() -> Iterator[LocalPushService]:
    service = LocalPushService(hang_seconds=0.6)
    yield service
    service.stop()


@pytest.fixture
def factory(app: Any) -> sessionmaker[Session]:
    """Sessions as the jobs get them, signing audit rows with the app's key."""
    made: sessionmaker[Session] = app.state.sessionmaker
    return made


def _now() -> datetime:
    assert clock.fixed is not None
    return clock.fixed


def _at(days: float = 2, hours: float = 0) -> str:
    """An ISO time (Stockholm offset) that many days and hours after the frozen now."""
    return (_now() + timedelta(days=days, hours=hours)).astimezone(STOCKHOLM).isoformat()


def _book(client: TestClient, auth: Auth, pid: str, by: str = "eva", **body: Any) -> Response:
    payload = {"kind": "phone", "start": _at(), "where_or_how": PLACE, "note": NOTE, **body}
    return client.post(f"/v1/patients/{pid}/activities", json=payload, headers=auth(by))


def _patch(
    client: TestClient, auth: Auth, pid: str, aid: str, by: str = "eva", **body: Any
) -> Response:
    return client.patch(f"/v1/patients/{pid}/activities/{aid}", json=body, headers=auth(by))


def _user_id(session: Session, handle: str) -> str:
    return session.scalars(select(User.id).where(User.handle == handle)).one()


def _codes(response: Response) -> list[str]:
    return [e["code"] for e in response.json().get("errors", [])]


def test_book_move_cancel_and_mark_done(client: TestClient, auth: Auth, session: Session) -> None:
    allan = patient_id(session, "allan")
    made = _book(client, auth, allan)
    assert made.status_code == 201, made.text
    activity = made.json()
    eva = _user_id(session, "eva")
    assert activity["who"] == {
        "id": eva, "display_name": "Eva Ek", "role": "clinician", "care_unit": "Vårdcentralen Norra"
    }  # fmt: skip
    assert (activity["status"], activity["kind"], activity["note"]) == ("planned", "phone", NOTE)
    assert activity["created_by"] == eva and activity["end"] is None
    assert datetime.fromisoformat(activity["start"]) == datetime.fromisoformat(_at())
    aid = activity["id"]

    # Allan sees it; so does the whole team; the list is by start.
    later = _book(client, auth, allan, kind="visit", start=_at(5), end=_at(5, 1)).json()
    mine = client.get("/v1/patients/me/activities", headers=auth("allan"))
    assert [a["id"] for a in mine.json()["items"]] == [aid, later["id"]]

    # Move it: a new start, an end; kept in the history and in the feed.
    moved = _patch(client, auth, allan, aid, start=_at(3), end=_at(3, 0.5))
    assert moved.status_code == 200, moved.text
    assert datetime.fromisoformat(moved.json()["start"]) == datetime.fromisoformat(_at(3))
    listed = client.get("/v1/patients/me/activities", headers=auth("allan")).json()["items"]
    assert [a["id"] for a in listed] == [aid, later["id"]]
    # Nothing changed: no history row.
    assert _patch(client, auth, allan, aid, where_or_how=PLACE).status_code == 200

    cancelled = _patch(client, auth, allan, aid, status="cancelled")
    assert cancelled.json()["status"] == "cancelled"
    refused = _patch(client, auth, allan, aid, start=_at(4))
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    done = _patch(client, auth, allan, later["id"], status="done", note=None)
    assert (done.json()["status"], done.json()["note"]) == ("done", None)

    # Booked, moved, cancelled (the clock is frozen: told apart by what changed).
    rows = session.scalars(select(ActivityChange).where(ActivityChange.activity_id == aid)).all()
    history = {tuple(sorted(h.after)): h for h in rows}
    assert len(rows) == 3 and history[("end", "start")].changed_by == eva
    moved_row, cancel_row = history[("end", "start")], history[("status",)]
    assert moved_row.before == {
        "start": datetime.fromisoformat(_at()).astimezone(UTC).isoformat(),
        "end": None,
    }
    assert (cancel_row.before, cancel_row.after) == ({"status": "planned"}, {"status": "cancelled"})
    assert history[FIELDS].before == {}

    feed = list(
        session.scalars(
            select(Change)
            .where(Change.patient_id == allan, Change.entity == "activity")
            .order_by(Change.seq)
        )
    )
    assert [(c.entity_id, c.data["status"]) for c in feed] == [
        (aid, "planned"), (later["id"], "planned"), (aid, "planned"), (aid, "cancelled"),
        (later["id"], "done"),
    ]  # fmt: skip

    # Filters: status, and a window of start times.
    url = f"/v1/patients/{allan}/activities"
    by_status = client.get(url, params={"status": "done"}, headers=auth("eva")).json()["items"]
    assert [a["id"] for a in by_status] == [later["id"]]
    window = {"from": _at(4), "to": _at(6)}
    assert [
        a["id"] for a in client.get(url, params=window, headers=auth("eva")).json()["items"]
    ] == [later["id"]]


def test_bad_input_and_the_wrong_people(client: TestClient, auth: Auth, session: Session) -> None:
    allan, asta = patient_id(session, "allan"), patient_id(session, "asta")
    naive = (_now() + timedelta(days=2)).replace(tzinfo=None).isoformat()
    assert _book(client, auth, allan, start=naive).status_code == 422
    backwards = _book(client, auth, allan, end=_at(1))
    assert backwards.status_code == 422
    past = _book(client, auth, allan, start=_at(-1))
    assert (past.status_code, _codes(past)) == (422, ["in_past"])
    assert _book(client, auth, allan, kind="party").status_code == 422
    assert _book(client, auth, allan, where_or_how="x" * 301).status_code == 422
    assert _book(client, auth, allan, note="x" * 2001).status_code == 422
    # who must be a clinician of one of the patient's teams.
    for stranger in ("olof", "karin", "allan", "maria"):
        refused = _book(client, auth, allan, who=_user_id(session, stranger))
        assert (refused.status_code, _codes(refused)) == (422, ["not_in_team"]), stranger
    assert _book(client, auth, allan, who="no-such-user").status_code == 422
    # Karin books a visit by Eva for Asta: Eva is on Asta's vc-norra team.
    by_eva = _book(client, auth, asta, by="karin", kind="visit", who=_user_id(session, "eva"))
    assert by_eva.status_code == 201, by_eva.text
    assert by_eva.json()["who"]["care_unit"] == "Vårdcentralen Norra"

    # Patients and proxies read, never book or change.
    assert _book(client, auth, allan, by="allan").status_code == 403
    assert _book(client, auth, asta, by="maria").status_code == 403
    assert client.get(f"/v1/patients/{asta}/activities", headers=auth("maria")).status_code == 200
    aid = by_eva.json()["id"]
    assert _patch(client, auth, asta, aid, by="maria", status="cancelled").status_code == 403
    assert _patch(client, auth, asta, aid, by="asta", status="done").status_code == 403

    # Asta's activity through Allan's path, and an unknown id: the same 404.
    other = _patch(client, auth, allan, aid, status="cancelled")
    unknown = _patch(client, auth, allan, "5a1b7c1e-0000-4000-8000-000000000000", status="done")
    assert other.status_code == unknown.status_code == 404
    assert other.json() == unknown.json() and other.json()["detail"] == "No such activity."

    # Moving into the past, or reopening a past activity as planned.
    past_move = _patch(client, auth, asta, aid, by="karin", start=_at(-1))
    assert (past_move.status_code, _codes(past_move)) == (422, ["in_past"])
    assert _patch(client, auth, asta, aid, by="karin", end=_at(1)).status_code == 422
    assert _patch(client, auth, asta, aid, by="karin", status="archived").status_code == 422
    assert _patch(client, auth, asta, aid, by="karin", start=None).status_code == 422
    assert _patch(client, auth, asta, aid, by="karin", colour="red").status_code == 422
    assert (
        client.get(
            f"/v1/patients/{asta}/activities", params={"from": naive}, headers=auth("karin")
        ).status_code
        == 422
    )


def _ics(client: TestClient, url: str) -> Response:
    return client.get(urlparse(url).path)


def _events(response: Response) -> list[Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    return list(Calendar.from_ical(response.content).walk("VEVENT"))


def test_the_calendar_feed(
    client: TestClient, auth: Auth, session: Session, settings: Settings
) -> None:
    allan = patient_id(session, "allan")
    call = _book(client, auth, allan).json()
    home = _book(client, auth, allan, kind="home_visit", start=_at(4), end=_at(4, 1)).json()
    _patch(client, auth, allan, home["id"], status="cancelled")
    _book(client, auth, allan, start=_at(400))  # more than a year ahead: not in the feed

    made = client.post(f"/v1/patients/{allan}/calendar-link", headers=auth("allan"))
    assert made.status_code == 201, made.text
    url = made.json()["url"]
    assert url.startswith(settings.public_url + "/calendar/") and url.endswith(".ics")
    token = urlparse(url).path.removeprefix("/calendar/").removesuffix(".ics")
    stored = session.scalars(select(CalendarLink).where(CalendarLink.patient_id == allan)).one()
    assert stored.token_hash != token and token not in stored.token_hash

    answer = _ics(client, url)
    events = {str(e["UID"]): e for e in _events(answer)}
    assert set(events) == {f"{call['id']}@egenvard", f"{home['id']}@egenvard"}
    phone = events[f"{call['id']}@egenvard"]
    assert str(phone["SUMMARY"]) == "Samtal med Vårdcentralen Norra"
    start = phone.decoded("DTSTART")
    assert start == datetime.fromisoformat(_at()) and start.utcoffset() == timedelta(0)
    assert phone.decoded("DTEND") == start + timedelta(minutes=30)
    assert str(phone["STATUS"]) == "CONFIRMED"
    cancelled = events[f"{home['id']}@egenvard"]
    assert str(cancelled["STATUS"]) == "CANCELLED"
    assert str(cancelled["SUMMARY"]) == "Hembesök från Vårdcentralen Norra"
    assert int(cancelled["SEQUENCE"]) > int(phone["SEQUENCE"])
    # Times, kinds and the care unit only.
    text = answer.content.decode()
    for secret in ("Allan", "Andersson", "Eva", "Ek", "070-123", "mediciner", allan):
        assert secret not in text, secret
    for name in ("DESCRIPTION", "LOCATION", "ATTENDEE", "ORGANIZER", "CONTACT"):
        assert name not in text

    # A move raises the SEQUENCE, so calendars take the new time.
    _patch(client, auth, allan, call["id"], start=_at(2, 1))
    moved = {str(e["UID"]): e for e in _events(_ics(client, url))}[f"{call['id']}@egenvard"]
    assert int(moved["SEQUENCE"]) == int(phone["SEQUENCE"]) + 1

    # Every fetch is audited: the link as actor, Allan as subject; the access log reads it.
    rows = list(
        session.scalars(
            select(AuditEvent)
            .join(AuditSubject, AuditSubject.event_seq == AuditEvent.seq)
            .where(AuditSubject.patient_id == allan, AuditEvent.actor_handle == "calendar-link")
        )
    )
    assert len(rows) == 2
    assert all((r.actor_id, r.outcome, r.care_unit_id) == (None, "ok", None) for r in rows)
    log = client.get("/v1/patients/me/access-log", headers=auth("allan"))
    assert log.status_code == 200
    linked = [i for i in log.json()["items"] if i["actor"]["handle"] == "calendar-link"]
    assert len(linked) == 2 and linked[0]["actor"]["display_name"] is None
    assert audit.verify_chain(session, b"test-audit-key").intact

    # A new link ends the old one; turning it off ends the new one. Nobody else may.
    for handle in ("eva", "maria", "admin"):
        denied = client.post(f"/v1/patients/{allan}/calendar-link", headers=auth(handle))
        assert denied.status_code in (403, 404), handle
    renewed = client.post("/v1/patients/me/calendar-link", headers=auth("allan")).json()["url"]
    gone = _ics(client, url)
    assert gone.status_code == 404 and gone.headers["content-type"] == "application/problem+json"
    assert _ics(client, renewed).status_code == 200
    assert client.delete("/v1/patients/me/calendar-link", headers=auth("allan")).status_code == 204
    off = _ics(client, renewed)
    assert off.status_code == 404 and off.json() == gone.json()
    assert client.delete("/v1/patients/me/calendar-link", headers=auth("allan")).status_code == 204
    # Malformed tokens answer exactly like unknown ones, and write no audit row.
    before = audit_repository.count_events(session)
    for bad in ("short", "x" * 101, "a" * 30 + "%21", "a" * 43):
        malformed = client.get(f"/calendar/{bad}.ics")
        assert (malformed.status_code, malformed.json()) == (404, gone.json()), bad
    assert audit_repository.count_events(session) == before


def test_the_calendar_feed_is_rate_limited(
    settings: Settings, session: Session, auth: Auth
) -> None:
    """Unknown tokens per client address; fetches per link; a good link never pays for others."""
    limited = settings.model_copy(
        update={
            "calendar_failures_per_minute": 6,
            "calendar_failure_burst": 2,
            "calendar_fetches_per_minute": 6,
            "calendar_fetch_burst": 3,
        }
    )
    app = create_app(limited)
    monotonic = [1000.0]
    app.state.probing.monotonic = lambda: monotonic[0]
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            url = client.post("/v1/patients/me/calendar-link", headers=auth("allan")).json()["url"]
            unknown = "/calendar/" + "A" * 43 + ".ics"
            assert [client.get(unknown).status_code for _ in range(2)] == [404, 404]
            refused = client.get(unknown)
            assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
            # The good link still answers from the same address, until its own bucket is spent.
            assert [_ics(client, url).status_code for _ in range(4)] == [200, 200, 200, 429]
            monotonic[0] += 10  # one token back every 10 s
            assert _ics(client, url).status_code == 200
            assert client.get(unknown).status_code == 404
    finally:
        app.state.engine.dispose()


def _subscribe(session: Session, push: LocalPushService, handle: str, *patients: str) -> str:
    sub = f.subscription(session, f.user(session, handle), push.subscriber(), patient_ids=patients)
    session.commit()
    return sub.id


def _outbox(session: Session) -> list[OutboxMessage]:
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "activity_reminder"))
    return sorted(rows, key=lambda r: (r.created_at, r.user_id))


def test_a_reminder_an_hour_before_once(
    client: TestClient,
    auth: Auth,
    session: Session,
    settings: Settings,
    factory: sessionmaker[Session],
    push: LocalPushService,
) -> None:
    allan, asta = patient_id(session, "allan"), patient_id(session, "asta")
    _subscribe(session, push, "allan")
    _subscribe(session, push, "maria", asta)  # Maria has receive_advice for Asta
    call = _book(client, auth, allan, start=_at(1)).json()
    home = _book(
        client, auth, asta, by="karin", kind="home_visit", start=_at(1, 0.5), note="Kod 1234"
    ).json()
    dropped = _book(client, auth, allan, kind="visit", start=_at(1)).json()
    _patch(client, auth, allan, dropped["id"], status="cancelled")
    start = datetime.fromisoformat(call["start"])

    early = run_activity_reminders(factory, settings, start - timedelta(minutes=61))
    assert early == {} and _outbox(session) == []
    first = run_activity_reminders(factory, settings, start - timedelta(minutes=60))
    again = run_activity_reminders(factory, settings, start - timedelta(minutes=30))
    assert first == {"sent": 1} and again == {"already": 1, "sent": 1}  # Asta's is due at -30
    # Allan's call has begun: not reminded of any more; Asta's visit was claimed already.
    assert run_activity_reminders(factory, settings, start + timedelta(minutes=1)) == {"already": 1}

    rows = _outbox(session)
    assert len(rows) == 2
    local = start.astimezone(STOCKHOLM).strftime("%H:%M")
    asta_local = datetime.fromisoformat(home["start"]).astimezone(STOCKHOLM).strftime("%H:%M")
    titles = {r.user_id: r.payload["title"] for r in rows}
    assert titles == {
        _user_id(session, "allan"): f"Påminnelse: samtal med Vårdcentralen Norra kl. {local}",
        _user_id(session, "maria"): (
            f"Påminnelse (Asta): hembesök från Hemsjukvården Exempels kommun kl. {asta_local}"
        ),
    }
    for row in rows:
        assert "1234" not in str(row.payload) and PLACE not in str(row.payload)
        # Each was sent exactly an hour before its start (the job's times above are given):
        # it expires when the activity begins.
        assert row.urgency == "normal" and row.ttl_seconds == 3600
    claimed = session.scalars(select(ActivityReminder.activity_id)).all()
    assert sorted(claimed) == sorted([call["id"], home["id"]])  # never the cancelled one

    # Moved a day on: reminded again, an hour before the new time; English for English users.
    session.execute(User.__table__.update().where(User.handle == "allan").values(language="en"))
    session.commit()
    _patch(client, auth, allan, call["id"], start=_at(2))
    new_start = datetime.fromisoformat(_at(2))
    assert run_activity_reminders(factory, settings, new_start - timedelta(minutes=59)) == {
        "sent": 1
    }
    newest = _outbox(session)[-1]
    at = new_start.astimezone(STOCKHOLM).strftime("%H:%M")
    assert newest.payload["title"] == f"Reminder: phone call with Vårdcentralen Norra at {at}"


def test_a_reminder_in_the_quiet_hours_waits_for_the_morning(
    client: TestClient,
    auth: Auth,
    session: Session,
    settings: Settings,
    factory: sessionmaker[Session],
    push: LocalPushService,
) -> None:
    """A call at 07:30: its reminder, due at 06:30 (quiet until 07:00), goes out at 07:00."""
    allan = patient_id(session, "allan")
    _subscribe(session, push, "allan")
    day = (_now() + timedelta(days=2)).astimezone(STOCKHOLM).date()
    start = datetime.combine(day, datetime.min.time().replace(hour=7, minute=30), STOCKHOLM)
    made = _book(client, auth, allan, start=start.isoformat())
    assert made.status_code == 201, made.text
    due = start - timedelta(hours=1)
    assert run_activity_reminders(factory, settings, due) == {"sent": 1}
    sender = RecordingSender()
    stats = dispatch(factory, settings, due.astimezone(UTC), sender=sender, rng=random.Random(1))
    assert (stats.deferred, stats.sent, len(sender.sent)) == (1, 0, 0)
    (row,) = _outbox(session)
    morning = datetime.combine(day, datetime.min.time().replace(hour=7), STOCKHOLM)
    assert (row.status, row.next_attempt_at) == ("pending", morning.astimezone(UTC))
    stats = dispatch(factory, settings, morning.astimezone(UTC), sender=sender)
    assert stats.sent == 1 and len(sender.sent) == 1
