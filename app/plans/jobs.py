"""Measurement reminders from the plan's schedule, in the patient's local time.

A schedule entry (``{"type": "weight", "times": ["07:30"], "days": "daily"}``) is due at that
wall-clock time in the patient's IANA zone on each matching local day (``weekdays``: Monday to
Friday; ``weekly``: Mondays). Times are turned into UTC per day, so 07:30 stays 07:30 across
the switch to and from summer time. A reminder goes out when the job runs between the due
time and ``reminder_window_minutes`` after it (a worker that was down all morning does not
remind at noon), unless a reading of that type already exists on that local day. Each
(patient, type, local date, time) is claimed once by inserting its ``reminders`` row under a
unique key; types due at the same time become one push.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.auth.models import User
from app.config import Settings
from app.db import new_id
from app.jobs import each
from app.localtime import zone_named
from app.patients.models import Patient
from app.plans import repository as plans_repository
from app.plans import service as plans_service
from app.push import repository as push_repository
from app.push import service as push_service
from app.push.models import Reminder
from app.push.quiet_hours import local_to_utc, parse_hh_mm
from app.readings.repository import counts_by_type
from rules.catalogue import display_name
from rules.language import Priority
from rules.plan import ScheduleEntry

REMINDER_TTL_SECONDS = 2 * 3600

WEIGH_YOURSELF = {"sv": "Dags att väga dig", "en": "Time to weigh yourself"}
TIME_TO_MEASURE = {"sv": "Dags att mäta: {}", "en": "Time to measure: {}"}


@dataclass(frozen=True)
class Slot:
    """Types due at one scheduled local time on one local day."""

    local_date: date
    local_time: str
    due_at: datetime
    types: tuple[str, ...]


def runs_on(days: str, day: date) -> bool:
    """Whether a schedule entry's ``days`` includes a local day."""
    if days == "weekdays":
        return day.weekday() < 5
    if days == "weekly":
        return day.weekday() == 0
    return True


def due_slots(
    schedule: list[ScheduleEntry], zone: ZoneInfo, now: datetime, window: timedelta
) -> list[Slot]:
    """The scheduled times that are due at ``now`` (due ≤ now < due + window), by slot."""
    today = now.astimezone(zone).date()
    found: dict[tuple[date, str], tuple[datetime, list[str]]] = {}
    for day in (today - timedelta(days=1), today):  # a window may reach back past midnight
        for entry in schedule:
            if not runs_on(entry.days, day):
                continue
            for text in entry.times:
                at = parse_hh_mm(text)
                if at is None:
                    continue
                due = local_to_utc(day, at, zone)
                if due <= now < due + window:
                    types = found.setdefault((day, text), (due, []))[1]
                    if entry.type not in types:
                        types.append(entry.type)
    return [
        Slot(day, text, due, tuple(types)) for (day, text), (due, types) in sorted(found.items())
    ]


def reminder_title(types: tuple[str, ...], lang: str) -> str:
    """The push title for types due at once, in sv or en."""
    if types == ("weight",):
        return WEIGH_YOURSELF[lang]
    names = [display_name(t, lang) for t in types]
    return TIME_TO_MEASURE[lang].format(", ".join(names))


def measured_on(session: Session, patient_id: str, type_: str, day: date, zone: ZoneInfo) -> bool:
    """Whether a counted reading of the type exists on the patient's local day."""
    start = local_to_utc(day, datetime.min.time(), zone)
    end = local_to_utc(day + timedelta(days=1), datetime.min.time(), zone)
    return bool(counts_by_type(session, patient_id, start, end, type_))


def remind_patient(
    session: Session, settings: Settings, patient_id: str, now: datetime
) -> Counter[str]:
    """Claim and send the patient's due reminders (call inside a transaction)."""
    done: Counter[str] = Counter()
    patient = session.get(Patient, patient_id)
    if patient is None:
        return done
    try:
        plan = plans_service.current_spec(session, patient_id)
    except ValidationError:
        return done  # a plan the current code cannot read reminds of nothing
    if plan is None or not plan.schedule:
        return done
    zone = zone_named(patient.timezone)
    window = timedelta(minutes=settings.reminder_window_minutes)
    user = session.get(User, patient.user_id) if patient.user_id else None
    subscriptions = (
        push_repository.active_subscriptions(session, user.id)
        if user is not None and user.active
        else []
    )
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    for slot in due_slots(plan.schedule, zone, now, window):
        claimed: list[tuple[str, str]] = []  # (reminder id, type)
        for type_ in slot.types:
            skipped = measured_on(session, patient_id, type_, slot.local_date, zone)
            status = "skipped" if skipped else ("sent" if subscriptions else "no_device")
            reminder_id = session.scalar(
                insert(Reminder)
                .values(
                    id=new_id(),
                    patient_id=patient_id,
                    type=type_,
                    local_date=slot.local_date.isoformat(),
                    local_time=slot.local_time,
                    due_at=slot.due_at,
                    status=status,
                    notifications=0 if skipped else len(subscriptions),
                    created_at=now,
                )
                .on_conflict_do_nothing(
                    index_elements=["patient_id", "type", "local_date", "local_time"]
                )
                .returning(Reminder.id)
            )
            if reminder_id is None:
                done["already"] += 1  # another run (or worker) claimed it
            elif skipped:
                done["skipped"] += 1
            else:
                claimed.append((reminder_id, type_))
        if not claimed or user is None:
            continue
        types = tuple(t for _, t in claimed)
        lang = push_service.language_of(user)
        for sub in subscriptions:
            push_service.enqueue(
                session,
                subscription=sub,
                patient_id=patient_id,
                kind="reminder",
                payload={
                    "title": reminder_title(types, lang),
                    "reminder_id": claimed[0][0],
                    "patient_id": patient_id,
                    "priority": Priority.routine,
                    "url": f"/patients/{patient_id}/readings/new?types={','.join(types)}",
                },
                urgency="normal",
                ttl_seconds=REMINDER_TTL_SECONDS,
                topic_=push_service.topic("remind", slot.local_time.replace(":", "")),
                now=now,
            )
            done["notifications"] += 1
        done["reminders"] += len(claimed)
    session.flush()
    return done


def patients_with_plans(session: Session, _settings: Settings, _now: datetime) -> list[str]:
    """Every patient that has a plan, by id."""
    return plans_repository.patients_with_plans(session)


@each("measurement-reminders", patients_with_plans)
def run_reminders(
    session: Session, settings: Settings, now: datetime, patient_id: str
) -> dict[str, int]:
    """The reminder job for one patient (each in a transaction of its own)."""
    return dict(remind_patient(session, settings, patient_id, now))
