"""What matters to me: the patient's own words and questions for the next contact.

Written by the patient, or a proxy with the ``agree`` scope; read by the care team before a
visit. Every save is a new numbered version, so nothing the patient wrote is lost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.auth import people
from app.auth.policy import Access
from app.feed import service as feed
from app.plans import repository
from app.plans.models import StoryVersion


def story_dicts(session: Session, rows: list[StoryVersion]) -> list[dict[str, Any]]:
    """Story versions in their API form, their writers looked up in one query."""
    users = people.users_by_id(session, [r.written_by for r in rows])
    return [
        {
            "version": r.version,
            "what_matters": r.what_matters,
            "questions": list(r.questions),
            "written_at": r.written_at.isoformat(),
            "written_by": people.person_of(r.written_by, None, users),
        }
        for r in rows
    ]


def empty() -> dict[str, Any]:
    """The story before anyone has written one."""
    return {
        "version": 0,
        "what_matters": "",
        "questions": [],
        "written_at": None,
        "written_by": None,
    }


def write(
    session: Session, access: Access, *, what_matters: str, questions: list[str], now: datetime
) -> StoryVersion:
    """Save a new version of the story."""
    feed.lock_patient(session, access.patient.id)  # serialises version numbers per patient
    latest = repository.latest_story_number(session, access.patient.id)
    row = StoryVersion(
        patient_id=access.patient.id,
        version=(latest or 0) + 1,
        what_matters=what_matters,
        questions=questions,
        written_at=now,
        written_by=access.actor.id,
    )
    session.add(row)
    session.flush()
    feed.append(
        session,
        access.patient.id,
        entity="story",
        op="upsert",
        entity_id=row.id,
        data=story_dicts(session, [row])[0],
        now=now,
    )
    return row
