"""The scheduled jobs called directly with a fixed clock, on both databases: measurement
reminders (DST-safe, skipped when measured, once), flag escalation (once), retention."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session, sessionmaker

import app
from app.clock import clock
from app.config import Settings
from app.db import transaction
from app.findings.jobs import run_escalation
from app.findings.models import Flag
from app.jobs.retention import clean_up, finished_before
from app.plans.jobs import due_slots, run_reminders
from app.plans.models import PlanVersion
from app.push.dispatcher import dispatch
from app.push.models import (
    DUE_STATUSES,
    FINAL_STATUSES,
    FINISHED,
    WAITING,
    OutboxMessage,
    OutboxStatus,
    PushSubscription,
    Reminder,
)
from app.push.sender import RecordingSender
from app.scrape import OUTBOX_BY_STATUS, DatabaseCollector
from rules.plan import ScheduleEntry
from tests.app.factories import batch
from tests.app.push import factories as f
from tests.app.push.push_service import LocalPushService
from tests.query_plans import plan

STOCKHOLM = ZoneInfo("Europe/Stockholm")
Auth = Callable[[str], dict[str, str]]


def utc(text: str) -> datetime:
    """An aware UTC time from ``YYYY-MM-DDTHH:MM``."""
    return datetime.fromisoformat(text + "+00:00")


def _outbox(factory: sessionmaker[Session], kind: str) -> list[OutboxMessage]:
    with transaction(factory) as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind))
        return sorted(rows, key=lambda r: (r.created_at, r.id))


def _reminders(factory: sessionmaker[Session]) -> list[Reminder]:
    with transaction(factory) as session:
        return list(session.scalars(select(Reminder).order_by(Reminder.due_at, Reminder.type)))


@pytest.fixture(autouse=True)
def only_asta_has_a_plan(factory: sessionmaker[Session]) -> None:
    """Asta's plan: weight at 07:30 and four types at 08:00; the other plans are set aside."""
    with transaction(factory) as session:
        asta = f.patient(session, "asta").id
        session.execute(delete(PlanVersion).where(PlanVersion.patient_id != asta))


@pytest.fixture
def asta_tablet(factory: sessionmaker[Session], push_service: LocalPushService) -> str:
    """Asta's tablet is subscribed."""
    with transaction(factory) as session:
        return f.subscription(session, f.user(session, "asta"), push_service.subscriber()).id


def test_reminders_follow_local_time_across_the_switch_to_summer_time(
    factory: sessionmaker[Session], settings: Settings, asta_tablet: str
) -> None:
    """07:30 in Stockholm is 06:30 UTC before 2027-03-28 and 05:30 UTC from that day on."""
    assert run_reminders(factory, settings, utc("2027-03-27T05:30")) == {}  # 06:30 CET
    run_reminders(factory, settings, utc("2027-03-27T06:30"))  # 07:30 CET
    for day in ("2027-03-28", "2027-03-29"):  # the switch day and the day after: CEST
        assert run_reminders(factory, settings, utc(f"{day}T05:29")).get("reminders", 0) == 0
        done = run_reminders(factory, settings, utc(f"{day}T05:30"))
        assert done == {"reminders": 1, "notifications": 1}
        # An hour later (where a fixed +01:00 would put 07:30) nothing more for weight.
        later = run_reminders(factory, settings, utc(f"{day}T06:30"))
        assert later.get("already", 0) == 1 and later.get("notifications", 0) == 1  # 08:00 ones
    weights = [r for r in _reminders(factory) if r.type == "weight"]
    assert [(r.local_date, r.local_time, r.due_at) for r in weights] == [
        ("2027-03-27", "07:30", utc("2027-03-27T06:30")),
        ("2027-03-28", "07:30", utc("2027-03-28T05:30")),
        ("2027-03-29", "07:30", utc("2027-03-29T05:30")),
    ]
    pushes = _outbox(factory, "reminder")
    titles = [p.payload["title"] for p in pushes]
    assert titles.count("Dags att väga dig") == 3
    eight = "Dags att mäta: blodtryck, puls, syremättnad, symtomskattning"
    assert titles.count(eight) == 2  # 08:00 on the 28th and the 29th (06:00 UTC)
    assert {p.subscription_id for p in pushes} == {asta_tablet}
    assert all(p.urgency == "normal" and p.ttl_seconds > 0 and p.topic for p in pushes)


def test_no_reminder_when_already_measured_today(
    factory: sessionmaker[Session],
    settings: Settings,
    client: TestClient,
    auth: Auth,
    asta_tablet: str,
) -> None:
    """Asta weighed herself at 06:50 local: the 07:30 reminder is skipped, the 08:00 one not."""
    clock.fixed = utc("2027-03-29T05:00")
    weight = {
        "client_id": "w-1",
        "type": "weight",
        "time": "2027-03-29T06:50:00+02:00",
        "value": 71.5,
        "unit": "kg",
    }
    synced = client.post("/v1/patients/me/sync", json=batch(weight), headers=auth("asta"))
    assert synced.json()["results"][0]["status"] == "created", synced.text
    done = run_reminders(factory, settings, utc("2027-03-29T05:31"))
    assert done == {"skipped": 1}
    assert run_reminders(factory, settings, utc("2027-03-29T06:01"))["notifications"] == 1
    (weight_row,) = [r for r in _reminders(factory) if r.type == "weight"]
    assert weight_row.status == "skipped"
    assert [p.payload["title"] for p in _outbox(factory, "reminder")] == [
        "Dags att mäta: blodtryck, puls, syremättnad, symtomskattning"
    ]


def test_reminders_are_claimed_once_by_concurrent_runs(
    factory: sessionmaker[Session], settings: Settings, asta_tablet: str
) -> None:
    """Four runs at once (threads, one database): one reminder per slot and type, one push."""
    now = utc("2027-03-29T06:05")  # both 07:30 and 08:00 are due
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            run_reminders(factory, settings, now)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    keys = [(r.type, r.local_date, r.local_time) for r in _reminders(factory)]
    assert len(keys) == len(set(keys)) == 5
    assert len(_outbox(factory, "reminder")) == 2


def test_late_or_deviceless_reminders(factory: sessionmaker[Session], settings: Settings) -> None:
    """Past the window nothing is sent; without a subscription the claim is kept, no push."""
    short = settings.model_copy(update={"reminder_window_minutes": 20})
    assert run_reminders(factory, short, utc("2027-03-29T05:50")) == {}  # 07:50: 07:30 missed
    assert run_reminders(factory, short, utc("2027-03-29T06:05")) == {"reminders": 4}
    rows = _reminders(factory)
    assert len(rows) == 4 and {r.status for r in rows} == {"no_device"}
    assert _outbox(factory, "reminder") == []


def test_due_slots_days_and_the_spring_gap() -> None:
    """weekdays skip the weekend; 02:30 on the switch day (it does not exist) is due once."""
    schedule = [
        ScheduleEntry(type="weight", times=["02:30"], days="daily"),
        ScheduleEntry(type="steps", times=["02:30"], days="weekdays"),
        ScheduleEntry(type="peak_flow", times=["02:30"], days="weekly"),
    ]
    window = timedelta(minutes=90)
    sunday = [s for m in range(0, 240, 5) for s in due_slots(
        schedule, STOCKHOLM, utc("2027-03-28T00:00") + timedelta(minutes=m), window
    )]  # fmt: skip
    assert {(s.local_date.isoformat(), s.types, s.due_at) for s in sunday} == {
        ("2027-03-28", ("weight",), utc("2027-03-28T01:30"))  # 03:30 summer time
    }
    monday = due_slots(schedule, STOCKHOLM, utc("2027-03-29T00:45"), window)
    assert [s.types for s in monday] == [("weight", "steps", "peak_flow")]


def test_overdue_flags_escalate_once_to_the_patients_teams(
    factory: sessionmaker[Session],
    push_settings: Settings,
    push_service: LocalPushService,
    client: TestClient,
    auth: Auth,
) -> None:
    """Eva and Karin (Asta's teams) are notified once; Olof is not; not-due flags wait."""
    now = f.T0
    with transaction(factory) as session:
        subs = {
            handle: f.subscription(session, f.user(session, handle), push_service.subscriber()).id
            for handle in ("eva", "karin", "olof")
        }
        asta = f.patient(session, "asta")
        overdue = f.overdue_flag(session, asta, due=now - timedelta(minutes=1)).id
        waiting = f.overdue_flag(session, asta, severity="low", due=now + timedelta(hours=1)).id
        acked = f.overdue_flag(session, asta, due=now - timedelta(hours=1))
        acked.status = "acknowledged"
        acked_id = acked.id

    assert run_escalation(factory, push_settings, now) == {"flags": 1, "notifications": 2}
    assert run_escalation(factory, push_settings, now + timedelta(minutes=5)) == {}
    with transaction(factory) as session:
        flags = {fl.id: fl for fl in session.scalars(select(Flag))}
    assert flags[overdue].escalated_at == now
    assert flags[waiting].escalated_at is None and flags[acked_id].escalated_at is None
    pushes = _outbox(factory, "escalation")
    assert {p.subscription_id for p in pushes} == {subs["eva"], subs["karin"]}
    assert {p.payload["title"] for p in pushes} == {"Ej kvitterad flagga: Låg syremättnad"}
    assert {(p.urgency, p.payload["priority"], p.payload["flag_id"]) for p in pushes} == {
        ("high", "urgent", overdue)
    }

    sender = RecordingSender()
    assert dispatch(factory, push_settings, now, sender=sender).sent == 2
    worklist = client.get("/v1/flags", headers=auth("eva")).json()["items"]
    shown = next(item for item in worklist if item["id"] == overdue)
    assert shown["overdue"] is True and shown["escalated_at"] == now.isoformat()
    # The waiting low flag escalates when its own deadline passes, also once.
    later = now + timedelta(hours=2)
    assert run_escalation(factory, push_settings, later) == {"flags": 1, "notifications": 2}
    assert run_escalation(factory, push_settings, later) == {}


def test_retention_removes_only_what_is_old_and_finished(
    factory: sessionmaker[Session], settings: Settings, push_service: LocalPushService
) -> None:
    """Finished outbox rows and ended subscriptions past retention go; the rest stays."""
    now = f.T0
    old = now - timedelta(days=settings.retention_days + 1)
    with transaction(factory) as session:
        asta, target = f.user(session, "asta"), f.patient(session, "asta")
        live = f.subscription(session, asta, push_service.subscriber())
        dead = f.subscription(session, asta, push_service.subscriber())
        dead.status, dead.ended_at = "dead", old
        recent_dead = f.subscription(session, asta, push_service.subscriber())
        recent_dead.status, recent_dead.ended_at = "dead", now - timedelta(days=1)
        kept: set[str] = set()
        for status, finished in (("sent", old), ("dead", old), ("gone", old)):
            row = f.message(session, live, target, now=old)
            row.status, row.finished_at = status, finished
        for status, finished in (("sent", now - timedelta(days=1)), ("pending", None)):
            row = f.message(session, live, target, now=old)
            row.status, row.finished_at = status, finished
            session.flush()
            kept.add(row.id)
        live_id, recent_id = live.id, recent_dead.id

    assert clean_up(factory, settings, now) == {"outbox": 3, "subscriptions": 1, "reminders": 0}
    assert clean_up(factory, settings, now) == {"outbox": 0, "subscriptions": 0, "reminders": 0}
    with transaction(factory) as session:
        assert set(session.scalars(select(OutboxMessage.id))) == kept
        assert set(session.scalars(select(PushSubscription.id))) == {live_id, recent_id}


def test_the_outbox_is_counted_and_trimmed_off_the_indexes_of_its_two_halves(
    factory: sessionmaker[Session], settings: Settings, push_service: LocalPushService
) -> None:
    """Every status is either waiting or final; the metrics count each status from the index
    of its half, and the retention finds old finished rows by their index (not by reading
    every row of a table that keeps three months of pushes)."""
    assert FINAL_STATUSES.isdisjoint(DUE_STATUSES)
    assert FINAL_STATUSES | set(DUE_STATUSES) == set(OutboxStatus)
    with transaction(factory) as session:
        asta, target = f.user(session, "asta"), f.patient(session, "asta")
        live = f.subscription(session, asta, push_service.subscriber())
        for n, status in enumerate(("pending", "sending", "sent", "sent", "dead", "cancelled")):
            row = f.message(session, live, target, n)
            row.status = status
            row.finished_at = None if status in DUE_STATUSES else f.T0
    counted = {
        sample.labels["status"]: sample.value
        for family in DatabaseCollector(factory).collect()
        if family.name == "selfcare_push_outbox_messages"
        for sample in family.samples
    }
    assert counted == {"pending": 1, "sending": 1, "sent": 2, "dead": 1, "cancelled": 1}

    waiting, finished = OUTBOX_BY_STATUS
    with transaction(factory) as session:
        connection = session.connection()
        sqlite = connection.dialect.name == "sqlite"
        steps = [
            # SQLite counts the waiting rows off the index alone (its status is in it).
            ("COVERING INDEX ix_outbox_due" if sqlite else "ix_outbox_due", waiting),
            ("ix_outbox_finished", finished),
            ("ix_outbox_finished", finished_before(f.T0)),
        ]
        for index, statement in steps:
            shown = plan(connection, statement, {})
            assert index in shown, shown

    # The retention deletes without fetching the deleted rows back.
    deleting: list[str] = []
    engine = factory.kw["bind"]

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM OUTBOX"):
            deleting.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        later = f.T0 + timedelta(days=settings.retention_days + 1)
        assert clean_up(factory, settings, later)["outbox"] == 4
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(deleting) == 1 and "RETURNING" not in deleting[0].upper(), deleting


def _migration(name: str) -> Any:
    path = Path(app.__file__).parent / "migrations" / "versions" / name
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    return migration


def test_the_migrations_write_the_halves_as_the_models_do() -> None:
    """Migrations 0020 and 0021 keep their own copy of the halves' SQL (a migration must not
    change when the models do); ``alembic check`` does not compare a partial index's
    condition, and 0021's backfill must touch the finished rows, no other."""
    due = _migration("20261207_0020_outbox_due.py")
    assert (due.WAITING, due.FINISHED) == (WAITING, FINISHED)
    assert _migration("20261207_0021_outbox_finished_backfill.py").FINISHED == FINISHED
