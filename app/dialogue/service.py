"""The dialogue: one thread per patient between the patient side and the care team.

The patient side is the patient and every proxy whose grant has the ``message`` scope; the
other side is every clinician of the patient's care teams. A message's ``read_at`` is set the
first time someone of the *other* side opens the thread: a clinician opening it marks the
patient side's messages read, the patient or a proxy with ``message`` marks the team's.

A message enters the patient's change feed (entity ``message``), and so do the read marks, so
the patient's app learns both through sync. A message is announced by push to the other side,
never with its text: a lock screen is not a private place.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.auth import people, policy
from app.auth.models import Scope, User
from app.auth.policy import Access, Actor, Relation
from app.auth.repository import team_clinicians
from app.dialogue import repository
from app.dialogue.models import Message, Side
from app.feed import service as feed
from app.patients.models import Patient
from app.push import repository as push_repository
from app.push import service as push_service
from app.push.models import PushSubscription

MESSAGE_TTL_SECONDS = int(timedelta(days=7).total_seconds())
_TITLES = {
    "team": {"sv": "Nytt meddelande från vården", "en": "New message from your care team"},
    "patient": {"sv": "Nytt meddelande från {name}", "en": "New message from {name}"},
}


def side_of(access: Access) -> Side:
    """Which side of the thread the caller writes and reads from."""
    return Side.CARE_TEAM if access.relation == Relation.CARE_TEAM else Side.PATIENT


def message_dict(message: Message, users: dict[str, User]) -> dict[str, Any]:
    """The API form of a message (also what the change feed keeps)."""
    return {
        "id": message.id,
        "patient_id": message.patient_id,
        "author": people.person_of(message.author_id, message.author_care_unit, users),
        "side": message.side,
        "body": message.body,
        "created_at": message.created_at.isoformat(),
        "read_at": message.read_at.isoformat() if message.read_at else None,
    }


def message_dicts(session: Session, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages in their API form, their authors looked up in one query."""
    users = people.users_by_id(session, [m.author_id for m in messages])
    return [message_dict(m, users) for m in messages]


def post_message(session: Session, access: Access, *, body: str, now: datetime) -> Message:
    """Add a message to the patient's thread, put it in the feed and tell the other side."""
    side = side_of(access)
    message = Message(
        patient_id=access.patient.id,
        author_id=access.actor.id,
        # The unit the clinician writes from, as it is named today; the patient side has none.
        author_care_unit=access.care_unit_name if side == Side.CARE_TEAM else None,
        side=side,
        body=body,
        created_at=now,
        read_at=None,
    )
    session.add(message)
    session.flush()
    feed.append(
        session,
        access.patient.id,
        entity="message",
        op="upsert",
        entity_id=message.id,
        data=message_dicts(session, [message])[0],
        now=now,
    )
    if side == Side.CARE_TEAM:
        _notify_patient_side(session, access.patient, message, now)
    else:
        _notify_care_team(session, access.patient, message, now)
    return message


def open_thread(
    session: Session, access: Access, *, limit: int, now: datetime
) -> tuple[list[Message], int]:
    """The latest ``limit`` messages, oldest first, after marking the other side's read.

    Returns the messages and how many of the other side's messages this opening marked read.
    """
    other = Side.PATIENT if side_of(access) == Side.CARE_TEAM else Side.CARE_TEAM
    unread = repository.unread_from(session, access.patient.id, other)
    for message in unread:
        message.read_at = now
    if unread:
        session.flush()
        feed.append_many(
            session,
            access.patient.id,
            [
                feed.ChangeEntry("message", "upsert", m.id, data)
                for m, data in zip(unread, message_dicts(session, unread), strict=True)
            ],
            now=now,
        )
    latest = repository.latest_messages(session, access.patient.id, limit)
    latest.reverse()
    return latest, len(unread)


def unread_for(
    session: Session, actor: Actor, patient_ids: Collection[str], now: datetime
) -> dict[str, int | None]:
    """Unread messages per patient, as the caller counts them; None where they may not message.

    For the care team: the patient side's messages no one of the team has opened yet. For
    the patient or a proxy with ``message``: the team's messages not yet opened. Two grouped
    queries at most, whatever the number of patients.
    """
    ids = set(patient_ids)
    if not ids:
        return {}
    team = policy.care_team_patient_ids(session, actor) & ids
    own = policy.message_patient_ids(session, actor, now) & ids - team
    counts: dict[str, int | None] = dict.fromkeys(ids)
    for side, group in ((Side.PATIENT, team), (Side.CARE_TEAM, own)):
        if not group:
            continue
        for patient_id in group:
            counts[patient_id] = 0
        counts.update(repository.unread_counts(session, group, side))
    return counts


def _notify_patient_side(
    session: Session, patient: Patient, message: Message, now: datetime
) -> None:
    for user in push_service.patient_side(session, patient, now, Scope.MESSAGE):
        lang = push_service.language_of(user)
        is_own = patient.user_id == user.id
        for sub in push_repository.active_subscriptions(session, user.id):
            if not is_own and patient.id not in sub.patient_ids:
                continue
            _enqueue(
                session, sub, patient, message, _TITLES["team"][lang], "/mina/meddelanden", now
            )


def _notify_care_team(session: Session, patient: Patient, message: Message, now: datetime) -> None:
    for clinician in team_clinicians(session, patient.id):
        lang = push_service.language_of(clinician)
        title = _TITLES["patient"][lang].format(name=patient.display_name)
        url = f"/vard/patienter/{patient.id}/meddelanden"
        for sub in push_repository.active_subscriptions(session, clinician.id):
            _enqueue(session, sub, patient, message, title, url, now)


def _enqueue(
    session: Session,
    sub: PushSubscription,
    patient: Patient,
    message: Message,
    title: str,
    url: str,
    now: datetime,
) -> None:
    push_service.enqueue(
        session,
        subscription=sub,
        patient_id=patient.id,
        kind="message",
        # Never the text: a title, ids and where to read it.
        payload={"title": title, "patient_id": patient.id, "message_id": message.id, "url": url},
        urgency="normal",
        ttl_seconds=MESSAGE_TTL_SECONDS,
        topic_=push_service.topic("message", patient.id.replace("-", "")[:24]),
        now=now,
    )
