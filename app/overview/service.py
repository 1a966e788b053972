"""The plan overview: goals, agreements, activities, the care contact, the story and advice.

One screen of the shared plan for the pages and for a national view. Each part is read with
a fixed number of queries, whatever the patient's history: the goals carry their stored
progress, agreements their events in one query, people are looked up together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.activities import repository as activities_repository
from app.activities import service as activities_service
from app.auth.policy import Access, advice_audience
from app.findings import service as findings_service
from app.goals import service as goals_service
from app.plans import contact, story
from app.plans import repository as plans_repository
from app.plans import service as plans_service

ADVICE_SHOWN = 5  # the latest advice; the rest is one tap away on the advice list
ACTIVITIES_SHOWN = 5  # the next planned activities


def overview(
    session: Session, access: Access, *, lang: str | None, now: datetime
) -> dict[str, Any]:
    """The whole plan of the access's patient, in the caller's language."""
    patient = access.patient
    plan = plans_service.current(session, patient.id)
    plan_dict = plans_service.to_dicts(session, [plan])[0] if plan is not None else None
    written = plans_repository.current_story(session, patient.id)
    language = findings_service.pick_language(lang, patient.language)
    audience = advice_audience(access)
    advice = findings_service.list_advice(session, patient.id, limit=ADVICE_SHOWN)
    return {
        "patient": {"id": patient.id, "display_name": patient.display_name},
        "plan": (
            {k: plan_dict[k] for k in ("version", "created_at", "created_by")}
            if plan_dict is not None
            else None
        ),
        "goals": goals_service.goals_with_milestones(session, patient.id),
        "agreements": plan_dict["agreements"] if plan_dict is not None else [],
        "activities": activities_service.activity_dicts(
            session, activities_repository.upcoming(session, patient.id, now, ACTIVITIES_SHOWN)
        ),
        "care_contact": contact.contact_dict(
            session, plans_repository.current_contact(session, patient.id)
        ),
        "story": story.story_dicts(session, [written])[0] if written else story.empty(),
        "advice": [findings_service.advice_dict(a, language, audience) for a in advice],
        "as_of": now.isoformat(),
    }
