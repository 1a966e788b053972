"""Activity reminders: a push ``activity_reminder_minutes`` before a planned activity starts.

The job finds planned activities starting within the lead time (not yet started: a worker
that was down does not remind of a call that has begun) and claims each (activity, start
time) once by inserting its ``activity_reminders`` row under a unique key; moving the
activity gives it a new start, which re-arms the reminder. A cancelled or done activity is
not planned and is never reminded of.

The push goes to the patient and to every proxy whose grant has ``receive_advice`` (a proxy
only on subscriptions made for this patient), as a routine push: inside the recipient's
quiet hours the dispatcher holds it until they end, and it expires when the activity starts.
Its title says the kind, the care unit and the local time, in the recipient's language —
"Påminnelse: samtal med Vårdcentralen Norra kl. 10:00" — never the note or the place.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.activities import repository
from app.activities.models import Activity, ActivityReminder, Status
from app.activities.service import kind_phrase
from app.auth.models import Scope, User
from app.config import Settings
from app.jobs import each
from app.localtime import zone_named
from app.patients.models import Patient
from app.push import repository as push_repository
from app.push import service as push_service
from rules.language import Priority

MIN_TTL_SECONDS = 60
TITLES = {
    "sv": {"own": "Påminnelse: {what} kl. {at}", "proxy": "Påminnelse ({name}): {what} kl. {at}"},
    "en": {"own": "Reminder: {what} at {at}", "proxy": "Reminder ({name}): {what} at {at}"},
}


def reminder_title(activity: Activity, patient: Patient, user: User) -> str:
    """The push title for one recipient: kind, care unit and local time, nothing else."""
    lang = push_service.language_of(user)
    at = activity.start.astimezone(zone_named(patient.timezone)).strftime("%H:%M")
    whose = "own" if patient.user_id == user.id else "proxy"
    # A relative acting for several people needs to know whose appointment it is.
    first_name = patient.display_name.split(" ")[0]
    what = kind_phrase(activity.kind, activity.who_care_unit, lang)
    return TITLES[lang][whose].format(what=what, at=at, name=first_name)


def remind_activity(session: Session, activity_id: str, now: datetime, lead: timedelta) -> str:
    """Claim and send one activity's reminder (call inside a transaction); what happened."""
    activity = session.get(Activity, activity_id)
    # Looked at again in this transaction: it may have been moved or cancelled since.
    if activity is None or activity.status != Status.PLANNED:
        return "not_planned"
    if not now < activity.start <= now + lead:
        return "not_due"
    patient = session.get(Patient, activity.patient_id)
    if patient is None:
        return "not_planned"
    reminder_id = repository.claim_reminder(session, activity, now)
    if reminder_id is None:
        return "already"  # another run (or worker) claimed this start time
    ttl = max(MIN_TTL_SECONDS, int((activity.start - now).total_seconds()))
    sent = 0
    for user in push_service.patient_side(session, patient, now, Scope.RECEIVE_ADVICE):
        is_own = patient.user_id == user.id
        title = reminder_title(activity, patient, user)
        for sub in push_repository.active_subscriptions(session, user.id):
            if not is_own and patient.id not in sub.patient_ids:
                continue
            push_service.enqueue(
                session,
                subscription=sub,
                patient_id=patient.id,
                kind="activity_reminder",
                payload={
                    "title": title,
                    "activity_id": activity.id,
                    "reminder_id": reminder_id,
                    "patient_id": patient.id,
                    "priority": Priority.routine,
                    "url": f"/patients/{patient.id}/activities/{activity.id}",
                },
                urgency="normal",
                ttl_seconds=ttl,
                topic_=push_service.topic("activity", activity.id.replace("-", "")[:23]),
                now=now,
            )
            sent += 1
    reminder = session.get(ActivityReminder, reminder_id)
    if reminder is not None:
        reminder.notifications = sent
    session.flush()
    return "sent" if sent else "no_device"


def _due(session: Session, settings: Settings, now: datetime) -> list[str]:
    return repository.due_activity_ids(
        session, now, timedelta(minutes=settings.activity_reminder_minutes)
    )


@each("activity-reminders", _due)
def run_activity_reminders(
    session: Session, settings: Settings, now: datetime, activity_id: str
) -> dict[str, int]:
    """The activity reminder job for one activity (each in a transaction of its own)."""
    lead = timedelta(minutes=settings.activity_reminder_minutes)
    return {remind_activity(session, activity_id, now, lead): 1}
