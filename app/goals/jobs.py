"""The goals' job: the nightly full recompute of every open goal (**goals-recompute**).

Incremental progress runs with every sync; this job recomputes in full, once a day per patient
(hourly runs skip a patient whose goals were all recomputed in full today, by this or another
worker), so a goal whose window moved on without new readings still shows today's state. The
patient's feed lock serialises it with syncs and with other workers.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.config import Settings
from app.feed import service as feed
from app.findings.outgoing import Outgoing, publish
from app.goals.forms import announcement
from app.goals.progress import refresh
from app.goals.repository import milestones_of, open_goals, patients_with_open_goals
from app.jobs import each
from app.localtime import local_today
from app.patients.models import Patient


def _with_open_goals(session: Session, _settings: Settings, _now: datetime) -> list[str]:
    return patients_with_open_goals(session)


@each("goals-recompute", _with_open_goals)
def recompute_all(
    session: Session, _settings: Settings, now: datetime, patient_id: str
) -> dict[str, int]:
    """Recompute one patient's open goals in full, unless done in full today already."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        return {}
    feed.lock_patient(session, patient_id)
    goals = open_goals(session, patient_id)
    today = local_today(patient, now).isoformat()
    if all((g.progress or {}).get("full_on") == today for g in goals):
        return {"skipped": 1}
    milestones = milestones_of(session, [g.id for g in goals])
    out = Outgoing()
    advice = 0
    for goal in goals:
        outcome = refresh(session, patient, goal, milestones[goal.id], now, full=True, out=out)
        advice += len(outcome.advice)
        if outcome.goal_changed:
            out.extend(announcement(goal, milestones[goal.id], outcome.milestones_changed))
    publish(session, patient, out, now)
    return {"patients": 1, "goals": len(goals), "advice": advice}
