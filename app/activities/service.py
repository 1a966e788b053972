"""Activities (tider och aktiviteter): booked by the care team, moved, cancelled, marked done.

An activity is a visit, a phone call, a video meeting, a home visit or a test, with who (a
clinician of one of the patient's care teams) and where or how. A planned activity is always
in the future when it is booked or moved. Every change is kept (``activity_changes``: the
changed fields before and after) and enters the patient's change feed (entity ``activity``),
so the patient's app learns it through sync.

The patient's calendar subscribes to an ``.ics`` feed behind an unguessable link: a random
token of 256 bits of which only the sha256 is stored; one link per patient is active, a new
one ends the old. The feed names only times, kinds and the care unit: whoever reads a phone's
calendar, or the calendar service that fetches it, learns nothing more.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from icalendar import Calendar, Event
from sqlalchemy.orm import Session

from app.activities import repository
from app.activities.models import Activity, ActivityChange, CalendarLink, Kind, Status
from app.activities.schemas import ActivityIn, ActivityPatchIn
from app.auth import people
from app.auth.models import Role, User
from app.auth.policy import Access, Actor, Relation, relation_to
from app.config import Settings
from app.errors import Conflict, ErrorItem, NotFound, Unprocessable
from app.feed import service as feed
from app.patients.models import Patient

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
FEED_PAST = timedelta(days=30)
FEED_AHEAD = timedelta(days=365)
# A calendar needs an end; an activity booked without one lasts this long there.
DEFAULT_DURATION = timedelta(minutes=30)

# "{unit}" is the care unit of ``who``; without one, the care in general.
PHRASES: dict[str, dict[str, str]] = {
    "sv": {
        Kind.VISIT: "besök hos {unit}",
        Kind.PHONE: "samtal med {unit}",
        Kind.VIDEO: "videosamtal med {unit}",
        Kind.HOME_VISIT: "hembesök från {unit}",
        Kind.TEST: "provtagning hos {unit}",
    },
    "en": {
        Kind.VISIT: "visit to {unit}",
        Kind.PHONE: "phone call with {unit}",
        Kind.VIDEO: "video call with {unit}",
        Kind.HOME_VISIT: "home visit from {unit}",
        Kind.TEST: "test at {unit}",
    },
}
NO_UNIT = {"sv": "vården", "en": "your care team"}


def kind_phrase(kind: str, care_unit: str | None, lang: str) -> str:
    """What the activity is, in words: "samtal med Vårdcentralen Norra" (lower case first)."""
    lang = lang if lang in PHRASES else "sv"
    template = PHRASES[lang].get(kind, PHRASES[lang][Kind.VISIT])
    return template.format(unit=care_unit or NO_UNIT[lang])


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def activity_dict(activity: Activity, users: dict[str, User]) -> dict[str, Any]:
    """The API form of an activity (also what the change feed keeps)."""
    return {
        "id": activity.id,
        "patient_id": activity.patient_id,
        "kind": activity.kind,
        "start": _iso(activity.start),
        "end": _iso(activity.end),
        "who": people.person_of(activity.who_id, activity.who_care_unit, users),
        "where_or_how": activity.where_or_how,
        "status": activity.status,
        "note": activity.note,
        "created_at": _iso(activity.created_at),
        "created_by": activity.created_by,
        "updated_at": _iso(activity.updated_at),
    }


def activity_dicts(session: Session, activities: Sequence[Activity]) -> list[dict[str, Any]]:
    """Activities in their API form, the people named looked up in one query."""
    users = people.users_by_id(session, [a.who_id for a in activities])
    return [activity_dict(a, users) for a in activities]


def _invalid(loc: str, code: str, message: str) -> Unprocessable:
    return Unprocessable(message, errors=[ErrorItem(loc=loc, code=code, message=message)])


def _who(
    session: Session, access: Access, who: str | None, now: datetime
) -> tuple[str, str | None]:
    """The clinician responsible and their care unit for this patient (default: the caller)."""
    if who is None or who == access.actor.id:
        return access.actor.id, access.care_unit_name
    user = session.get(User, who)
    # The one policy says whether they are on the patient's care team, and from which unit.
    their = (
        relation_to(session, Actor(user=user), access.patient, now)
        if user is not None and user.role == Role.CLINICIAN
        else None
    )
    if their is None or their.relation != Relation.CARE_TEAM:
        raise _invalid(
            "who", "not_in_team", "who must be a clinician of one of the patient's care teams."
        )
    return their.actor.id, their.care_unit_name


def _state(activity: Activity) -> dict[str, Any]:
    return {
        "kind": activity.kind,
        "start": _iso(activity.start),
        "end": _iso(activity.end),
        "who": activity.who_id,
        "where_or_how": activity.where_or_how,
        "note": activity.note,
        "status": activity.status,
    }


def _publish(
    session: Session, activity: Activity, by: str, before: dict[str, Any], now: datetime
) -> None:
    """Keep the change (the fields that changed, before and after) and put it in the feed."""
    after = _state(activity)
    # A new activity keeps every field; a change, the fields it changed.
    changed = [k for k in after if not before or before.get(k) != after[k]]
    session.add(
        ActivityChange(
            activity_id=activity.id,
            changed_by=by,
            changed_at=now,
            before={k: before[k] for k in changed} if before else {},
            after={k: after[k] for k in changed},
        )
    )
    session.flush()
    feed.append(
        session,
        activity.patient_id,
        entity="activity",
        op="upsert",
        entity_id=activity.id,
        data=activity_dicts(session, [activity])[0],
        now=now,
    )


def create(session: Session, access: Access, body: ActivityIn, now: datetime) -> Activity:
    """Book an activity for the patient (the care team), in the future."""
    if body.start <= now:
        raise _invalid("start", "in_past", "A planned activity must start in the future.")
    who_id, unit = _who(session, access, body.who, now)
    activity = Activity(
        patient_id=access.patient.id,
        kind=body.kind,
        start=body.start.astimezone(UTC),
        end=body.end.astimezone(UTC) if body.end is not None else None,
        who_id=who_id,
        who_care_unit=unit,
        where_or_how=body.where_or_how,
        note=body.note,
        status=Status.PLANNED,
        sequence=0,
        created_at=now,
        created_by=access.actor.id,
        updated_at=now,
        updated_by=access.actor.id,
    )
    session.add(activity)
    session.flush()
    _publish(session, activity, access.actor.id, {}, now)
    return activity


def get(session: Session, patient_id: str, activity_id: str) -> Activity:
    """One of the patient's activities; another patient's answers like a missing one."""
    activity = session.get(Activity, activity_id) if len(activity_id) <= 36 else None
    if activity is None or activity.patient_id != patient_id:
        raise NotFound("No such activity.")
    return activity


def change(
    session: Session, access: Access, activity_id: str, body: ActivityPatchIn, now: datetime
) -> Activity:
    """Move, cancel, mark done or reopen an activity; every change is kept."""
    activity = get(session, access.patient.id, activity_id)
    given = body.model_fields_set
    for name in ("start", "where_or_how", "status"):
        if name in given and getattr(body, name) is None:
            raise _invalid(name, "null", f"{name} cannot be null.")
    start = body.start.astimezone(UTC) if body.start is not None else activity.start
    end = activity.end
    if "end" in given:
        end = body.end.astimezone(UTC) if body.end is not None else None
    status = body.status or Status(activity.status)
    moved = start != activity.start or end != activity.end
    if moved and activity.status != Status.PLANNED and status != Status.PLANNED:
        raise Conflict(f"A {activity.status} activity cannot be moved.")
    if end is not None and end <= start:
        raise _invalid("end", "before_start", "end must be after start.")
    planning = moved or activity.status != Status.PLANNED
    if status == Status.PLANNED and planning and start <= now:
        raise _invalid("start", "in_past", "A planned activity must start in the future.")
    before = _state(activity)
    activity.start, activity.end, activity.status = start, end, status
    if body.where_or_how is not None:
        activity.where_or_how = body.where_or_how
    if "note" in given:
        activity.note = body.note
    if _state(activity) == before:
        return activity  # nothing changed: no history, no feed entry
    activity.sequence += 1
    activity.updated_at, activity.updated_by = now, access.actor.id
    session.flush()
    _publish(session, activity, access.actor.id, before, now)
    return activity


# --- the calendar link and its .ics feed ----------------------------------------------------


def token_hash(token: str) -> str:
    """How a calendar token is stored and looked up."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_calendar_link(session: Session, settings: Settings, access: Access, now: datetime) -> str:
    """Make the patient's calendar link, ending the one before; its URL (shown once)."""
    # The feed lock serialises two renewals at once, so one link stays active.
    feed.lock_patient(session, access.patient.id)
    for link in repository.active_links(session, access.patient.id):
        link.ended_at = now
    token = secrets.token_urlsafe(32)
    session.add(
        CalendarLink(
            patient_id=access.patient.id,
            token_hash=token_hash(token),
            created_at=now,
            created_by=access.actor.id,
            ended_at=None,
        )
    )
    session.flush()
    return f"{settings.public_url.rstrip('/')}/calendar/{token}.ics"


def end_calendar_link(session: Session, access: Access, now: datetime) -> None:
    """Turn the patient's calendar link off (nothing to do when there is none)."""
    for link in repository.active_links(session, access.patient.id):
        link.ended_at = now
    session.flush()


def link_by_token(session: Session, token: str) -> CalendarLink | None:
    """The active link with this token, or None (malformed, unknown or ended alike)."""
    if not TOKEN_PATTERN.match(token):
        return None
    return repository.active_link_with_hash(session, token_hash(token))


def calendar_ics(session: Session, patient: Patient, now: datetime) -> bytes:
    """The patient's .ics: times, kinds and care units only (no names, notes or places)."""
    lang = patient.language if patient.language in PHRASES else "sv"
    calendar = Calendar()
    calendar.add("prodid", "-//Egenvard sync//activities//SV")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", "Egenvård" if lang == "sv" else "Self-care")
    activities = repository.list_activities(
        session, patient.id, start_from=now - FEED_PAST, to=now + FEED_AHEAD
    )
    for activity in activities:
        start = activity.start.astimezone(UTC)
        end = (activity.end or start + DEFAULT_DURATION).astimezone(UTC)
        summary = kind_phrase(activity.kind, activity.who_care_unit, lang)
        event = Event()
        event.add("uid", f"{activity.id}@egenvard")
        event.add("dtstamp", activity.updated_at.astimezone(UTC))
        event.add("dtstart", start)
        event.add("dtend", end)
        event.add("sequence", activity.sequence)
        event.add("summary", summary[:1].upper() + summary[1:])
        event.add("status", "CANCELLED" if activity.status == Status.CANCELLED else "CONFIRMED")
        calendar.add_component(event)
    return bytes(calendar.to_ical())
