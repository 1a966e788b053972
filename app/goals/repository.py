"""Reading goals and milestones from the database."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from app.goals.models import Goal, Milestone
from app.goals.spec import OPEN


def list_goals(session: Session, patient_id: str) -> list[Goal]:
    """A patient's goals, oldest first."""
    return list(
        session.scalars(
            select(Goal).where(Goal.patient_id == patient_id).order_by(Goal.created_at, Goal.id)
        )
    )


# Built once: every sync that brings a goal's type asks it, and building the statement each
# time cost as much as running it (bench/progress_service.py).
_MILESTONE_ORDER = (Milestone.due.is_(None), Milestone.due, Milestone.title, Milestone.id)
"""Earliest due first, those without a date last."""

_MILESTONES_OF = (
    select(Milestone)
    .where(Milestone.goal_id.in_(bindparam("goal_ids", expanding=True)))
    .order_by(*_MILESTONE_ORDER)
)


def milestones_of(session: Session, goal_ids: Sequence[str]) -> dict[str, list[Milestone]]:
    """The milestones of goals, by goal id, earliest due first."""
    out: dict[str, list[Milestone]] = {goal_id: [] for goal_id in goal_ids}
    if not goal_ids:
        return out
    rows = session.scalars(_MILESTONES_OF, {"goal_ids": list(goal_ids)})
    for row in rows:
        out[row.goal_id].append(row)
    return out


def open_goals(session: Session, patient_id: str) -> list[Goal]:
    """A patient's open goals, oldest first."""
    return goals_in(session, patient_id, OPEN)


_GOALS_IN = (
    select(Goal)
    .where(
        Goal.patient_id == bindparam("patient_id"),
        Goal.lifecycle.in_(bindparam("lifecycles", expanding=True)),
    )
    .order_by(Goal.created_at, Goal.id)
)


def goals_in(session: Session, patient_id: str, lifecycles: Collection[str]) -> list[Goal]:
    """A patient's goals in these lifecycle states, oldest first."""
    params = {"patient_id": patient_id, "lifecycles": sorted(lifecycles)}
    return list(session.scalars(_GOALS_IN, params))


_OPEN_WITH_MILESTONES = (
    select(Goal, Milestone)
    .outerjoin(Milestone, Milestone.goal_id == Goal.id)
    .where(
        Goal.patient_id == bindparam("patient_id"),
        Goal.lifecycle.in_(bindparam("lifecycles", expanding=True)),
    )
    .order_by(Goal.created_at, Goal.id, *_MILESTONE_ORDER)
)


def open_goals_with_milestones(
    session: Session, patient_id: str
) -> list[tuple[Goal, list[Milestone]]]:
    """A patient's open goals, oldest first, each with its milestones (earliest due first).

    One statement: a sync that brings a goal's type reads them, and two round trips were a
    fifth of its goal refresh on PostgreSQL (bench/progress_service.py).
    """
    params = {"patient_id": patient_id, "lifecycles": sorted(OPEN)}
    out: dict[str, tuple[Goal, list[Milestone]]] = {}
    for goal, milestone in session.execute(_OPEN_WITH_MILESTONES, params):
        _, milestones = out.setdefault(goal.id, (goal, []))
        if milestone is not None:
            milestones.append(milestone)
    return list(out.values())


def patients_with_open_goals(session: Session) -> list[str]:
    """The ids of patients with an open goal, in order."""
    return list(
        session.scalars(
            select(Goal.patient_id)
            .where(Goal.lifecycle.in_(OPEN))
            .distinct()
            .order_by(Goal.patient_id)
        )
    )


def has_goals(session: Session, patient_id: str) -> bool:
    """Whether the patient has any goal."""
    count = session.scalar(
        select(func.count()).select_from(Goal).where(Goal.patient_id == patient_id)
    )
    return bool(count)
