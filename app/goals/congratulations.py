"""Congratulations on a milestone or a goal reached, and their withdrawal after a correction.

A congratulation is advice (Swedish and English) with its evaluation record, through the same
advice and push path as the rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.findings import corrections as findings_corrections
from app.findings import repository as findings_repository
from app.findings import service as findings_service
from app.findings.models import Advice, Evaluation, EvaluationStatus
from app.findings.outgoing import Outgoing
from app.goals.models import Goal, Milestone
from app.patients.models import Patient
from app.plans import service as plans_service
from rules.language import Priority

MILESTONE_RULE = "goal-milestone"
ACHIEVED_RULE = "goal-achieved"
TEXTS_VERSION = 1
"""The congratulations' rule version: raise it when their texts below change."""
_CONGRATULATIONS = {
    MILESTONE_RULE: {
        "title": {
            "sv": "Grattis, du har nått ett delmål!",
            "en": "Well done, you have reached a milestone!",
        },
        "body": {
            "sv": "Du har nått delmålet ”{milestone}” på vägen mot ”{goal}”. "
            "Fortsätt så, du är på god väg.",
            "en": "You have reached the milestone “{milestone}” on the way to “{goal}”. "
            "Keep it up, you are well on your way.",
        },
    },
    ACHIEVED_RULE: {
        "title": {
            "sv": "Grattis, du har nått ditt mål!",
            "en": "Well done, you have reached your goal!",
        },
        "body": {
            "sv": "Du har nått målet ”{goal}”. Prata gärna med din vårdkontakt om hur du "
            "håller i det.",
            "en": "You have reached your goal “{goal}”. Talk to your care team about how to "
            "keep it up.",
        },
    },
}


def congratulate(
    session: Session,
    patient: Patient,
    goal: Goal,
    milestone: Milestone | None,
    now: datetime,
    out: Outgoing,
) -> Advice | None:
    """Advice (and a push) for a milestone or a goal reached, with its evaluation record."""
    rule = MILESTONE_RULE if milestone is not None else ACHIEVED_RULE
    texts = _CONGRATULATIONS[rule]
    names = {"goal": goal.title, "milestone": milestone.title if milestone else ""}
    plan = plans_service.current(session, patient.id)
    plan_version = plan.version if plan is not None else 0
    key = _congratulation_key(goal, milestone)
    earlier = findings_repository.evaluation_at(session, patient.id, rule, key, plan_version)
    if earlier is not None and earlier.status != EvaluationStatus.RETRACTED:
        return None  # congratulated once already (the key is unique per plan version)
    progress = goal.progress or {}
    explanation: dict[str, Any] = {
        "goal_id": goal.id,
        "goal_title": goal.title,
        "milestone_id": milestone.id if milestone else None,
        "milestone_title": milestone.title if milestone else None,
        "target": dict(milestone.target if milestone else goal.target),
        "reached_on": (
            (progress.get("milestones") or {}).get(milestone.id, {}).get("reached_on")
            if milestone
            else progress.get("as_of")
        ),
        "current": progress.get("current"),
        "unit": progress.get("unit"),
    }
    if earlier is not None:  # withdrawn after a correction, and reached again since
        evaluation = earlier
        evaluation.status, evaluation.retracted_at = EvaluationStatus.FIRED, None
        evaluation.explanation, evaluation.anchor_time = explanation, now
    else:
        evaluation = Evaluation(
            patient_id=patient.id,
            rule_id=rule,
            rule_version=TEXTS_VERSION,
            plan_version=plan_version,
            mode="active",
            anchor_reading_id=None,
            anchor_key=key,
            anchor_time=now,
            reading_ids=[],
            explanation=explanation,
            created_at=now,
        )
        session.add(evaluation)
    session.flush()
    return findings_service.issue_advice(
        session,
        patient,
        evaluation,
        priority=Priority.routine,
        title=texts["title"],
        body={lang: text.format(**names) for lang, text in texts["body"].items()},
        now=now,
        out=out,
    )


def _congratulation_key(goal: Goal, milestone: Milestone | None) -> str:
    rule = MILESTONE_RULE if milestone is not None else ACHIEVED_RULE
    return f"{rule}:{milestone.id if milestone is not None else goal.id}"


def withdraw_congratulations(
    session: Session,
    patient: Patient,
    goal: Goal,
    milestone: Milestone | None,
    now: datetime,
    out: Outgoing,
) -> None:
    """Retract the congratulation's evaluations and withdraw its advice (a correction)."""
    rule = MILESTONE_RULE if milestone is not None else ACHIEVED_RULE
    key = _congratulation_key(goal, milestone)
    evaluations = findings_repository.fired_evaluations(session, patient.id, rule, key)
    for evaluation in evaluations:
        evaluation.status, evaluation.retracted_at = EvaluationStatus.RETRACTED, now
    if not evaluations:
        return
    advice = findings_repository.advice_of_evaluations(session, [e.id for e in evaluations])
    findings_corrections.withdraw_advice(
        session,
        patient,
        advice,
        reason=findings_corrections.ENTERED_IN_ERROR,
        now=now,
        out=out,
    )
