"""Goals (mål) and milestones (delmål): create, edit, list and get (the use cases of the router).

Lifecycle (proposed / active / achieved / cancelled) is what people decide; achievement status
(on_track …) is what the data says (:mod:`app.goals.progress`).

Services never commit; every write of a patient's goals takes the patient's feed lock first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.db import new_id
from app.errors import Conflict, ErrorItem, NotFound, Unprocessable
from app.feed import service as feed
from app.findings.outgoing import Outgoing, publish
from app.goals.forms import announcement, goal_dict
from app.goals.models import Goal, Milestone
from app.goals.progress import refresh
from app.goals.repository import has_goals, list_goals, milestones_of
from app.goals.schemas import GoalIn, GoalPatch, Lifecycle, MeasureIn, MilestoneIn, TargetIn
from app.goals.spec import OPEN, validate
from app.localtime import local_today
from app.patients.models import Patient

_TRANSITIONS: dict[str, frozenset[str]] = {
    Lifecycle.PROPOSED: frozenset({Lifecycle.ACTIVE, Lifecycle.CANCELLED}),
    Lifecycle.ACTIVE: frozenset({Lifecycle.ACHIEVED, Lifecycle.CANCELLED}),
    Lifecycle.ACHIEVED: frozenset({Lifecycle.ACTIVE}),
    Lifecycle.CANCELLED: frozenset(),
}


def goals_with_milestones(session: Session, patient_id: str) -> list[dict[str, Any]]:
    """Every goal of the patient in its API form."""
    goals = list_goals(session, patient_id)
    milestones = milestones_of(session, [g.id for g in goals])
    return [goal_dict(g, milestones[g.id]) for g in goals]


def get_goal(session: Session, patient_id: str, goal_id: str) -> Goal:
    """A goal of this patient, or 404 (also for another patient's goal)."""
    goal = session.get(Goal, goal_id) if 0 < len(goal_id) <= 36 else None
    if goal is None or goal.patient_id != patient_id:
        raise NotFound("No such goal.")
    return goal


def _measure_json(measure: MeasureIn) -> dict[str, Any]:
    return {
        "type": measure.type.value,
        "aggregate": measure.aggregate.value,
        "window_days": measure.window_days,
        "component": measure.component,
    }


def _target_json(target: TargetIn) -> dict[str, Any]:
    value: Any = dict(target.value) if isinstance(target.value, dict) else target.value
    return {
        "value": value,
        "unit": target.unit,
        "direction": target.direction.value,
        "inclusive": target.inclusive,
    }


def _milestone_target(milestone: MilestoneIn) -> dict[str, Any]:
    value: Any = (
        dict(milestone.target.value)
        if isinstance(milestone.target.value, dict)
        else (milestone.target.value)
    )
    return {"value": value, "unit": milestone.target.unit}


def create_goal(
    session: Session, *, patient: Patient, body: GoalIn, author_id: str | None, now: datetime
) -> dict[str, Any]:
    """Validate and store a goal with its milestones; compute its progress."""
    start = body.start or local_today(patient, now)
    errors = validate(body.measure, body.target, body.milestones, start, body.due)
    if any(m.id is not None for m in body.milestones):
        errors.append(
            ErrorItem(
                loc="milestones", code="invalid", message="a new goal's milestones have no id"
            )
        )
    if body.lifecycle not in OPEN:
        errors.append(
            ErrorItem(loc="lifecycle", code="invalid", message="a new goal is proposed or active")
        )
    if errors:
        raise Unprocessable("The goal is not valid.", errors=errors)
    feed.lock_patient(session, patient.id)
    goal = Goal(
        id=new_id(),
        patient_id=patient.id,
        title=body.title,
        measure=_measure_json(body.measure),
        target=_target_json(body.target),
        start=start,
        due=body.due,
        lifecycle=body.lifecycle.value,
        personal=body.personal,
        agreements=list(body.agreements),
        progress=None,
        created_at=now,
        created_by=author_id,
        updated_at=now,
    )
    session.add(goal)
    session.flush()
    milestones = [
        Milestone(
            id=new_id(),
            goal_id=goal.id,
            title=m.title,
            target=_milestone_target(m),
            due=m.due,
            achieved_at=None,
        )
        for m in body.milestones
    ]
    session.add_all(milestones)
    session.flush()
    out = Outgoing()
    refresh(session, patient, goal, milestones, now, full=True, out=out)
    out.extend(announcement(goal, milestones, milestones))
    publish(session, patient, out, now)
    return goal_dict(goal, milestones)


def update_goal(
    session: Session, *, patient: Patient, goal: Goal, body: GoalPatch, now: datetime
) -> dict[str, Any]:
    """Apply a PATCH: fields given change, the lifecycle moves only along FHIR's arrows."""
    feed.lock_patient(session, patient.id)
    given = body.model_fields_set
    milestones = milestones_of(session, [goal.id])[goal.id]
    if goal.lifecycle == Lifecycle.CANCELLED:
        raise Conflict("A cancelled goal cannot be changed; create a new one.")
    if (
        body.lifecycle is not None
        and body.lifecycle != goal.lifecycle
        and body.lifecycle not in _TRANSITIONS[Lifecycle(goal.lifecycle)]
    ):
        raise Conflict(f"A goal cannot go from {goal.lifecycle} to {body.lifecycle.value}.")

    measure = body.measure or MeasureIn.model_validate(goal.measure)
    target = body.target or TargetIn.model_validate(goal.target)
    start = body.start if "start" in given and body.start else goal.start
    due = body.due if "due" in given else goal.due
    existing = {m.id: m for m in milestones}
    if body.milestones is not None:
        wanted = body.milestones
    else:
        wanted = [
            MilestoneIn.model_validate(
                {"id": m.id, "title": m.title, "target": m.target, "due": m.due}
            )
            for m in milestones
        ]
    errors = validate(measure, target, wanted, start, due)
    for index, item in enumerate(wanted):
        if item.id is not None and item.id not in existing:
            errors.append(
                ErrorItem(loc=f"milestones.{index}.id", code="unknown", message="no such milestone")
            )
    if errors:
        raise Unprocessable("The goal is not valid.", errors=errors)

    new_measure, new_target = _measure_json(measure), _target_json(target)
    if new_measure != goal.measure or new_target != goal.target or start != goal.start:
        goal.progress = None  # another measure or target: progress starts over
        for m in milestones:
            m.achieved_at = None
    goal.measure, goal.target, goal.start, goal.due = new_measure, new_target, start, due
    if body.title is not None:
        goal.title = body.title
    if body.agreements is not None:
        goal.agreements = list(body.agreements)
    if body.lifecycle is not None:
        goal.lifecycle = body.lifecycle.value

    changed: list[Milestone] = []
    deleted: list[Milestone] = []
    if body.milestones is not None:
        listed = {item.id for item in wanted if item.id is not None}
        deleted = [m for m in milestones if m.id not in listed]
        for item in wanted:
            row = existing.get(item.id) if item.id else None
            target_json = _milestone_target(item)
            if row is None:
                row = Milestone(
                    id=new_id(), goal_id=goal.id, title=item.title, target=target_json,
                    due=item.due, achieved_at=None,
                )  # fmt: skip
                session.add(row)
                changed.append(row)
            elif (row.title, row.target, row.due) != (item.title, target_json, item.due):
                if row.target != target_json:
                    row.achieved_at = None
                row.title, row.target, row.due = item.title, target_json, item.due
                changed.append(row)
        for row in deleted:
            session.delete(row)
        session.flush()
        milestones = milestones_of(session, [goal.id])[goal.id]
    goal.updated_at = now
    out = Outgoing()
    outcome = refresh(session, patient, goal, milestones, now, full=True, out=out)
    changed += [m for m in outcome.milestones_changed if m not in changed]
    out.extend(announcement(goal, milestones, changed, deleted=deleted))
    publish(session, patient, out, now)
    return goal_dict(goal, milestones)


def decide_goal(
    session: Session, *, patient: Patient, goal_id: str, decision: str, now: datetime
) -> dict[str, Any]:
    """The patient's (or a proxy's with ``agree``) answer to a proposed goal.

    ``agreed`` makes the goal active, ``declined`` cancels it, along the same arrows as a
    PATCH of its lifecycle; the same answer again changes nothing (a safe retry). Only a
    proposed goal is decided: any other answers 409.
    """
    goal = get_goal(session, patient.id, goal_id)
    wanted = {"agreed": Lifecycle.ACTIVE, "declined": Lifecycle.CANCELLED}[decision]
    if goal.lifecycle == wanted:
        return goal_dict(goal, milestones_of(session, [goal.id])[goal.id])
    if goal.lifecycle != Lifecycle.PROPOSED:
        raise Conflict(f"The goal is {goal.lifecycle}; only a proposed goal is agreed to.")
    body = GoalPatch.model_validate({"lifecycle": wanted.value})
    return update_goal(session, patient=patient, goal=goal, body=body, now=now)


def load_goals(
    session: Session,
    patient: Patient,
    goals: Sequence[Mapping[str, Any]],
    author_id: str | None,
    now: datetime,
) -> int:
    """Add goals (API bodies) to a patient who has none; how many were added."""
    if has_goals(session, patient.id):
        return 0
    for body in goals:
        create_goal(
            session, patient=patient, body=GoalIn.model_validate(body), author_id=author_id,
            now=now,
        )  # fmt: skip
    return len(goals)
