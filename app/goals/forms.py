"""The API forms of goals, milestones and progress, and their entries in the change feed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from app.feed import service as feed
from app.goals.models import Goal, Milestone
from rules.catalogue import spec_for
from rules.progress import GoalProgress, GoalSpec

INTERNAL = ("state", "milestones", "full_on", "feed_seq")


def shape(spec: GoalSpec, values: Mapping[str, float] | None, places: int) -> Any:
    """One number for a one-component measure, else an object per component."""
    if values is None:
        return None
    if len(spec.measure.components) == 1:
        return round(values[spec.measure.components[0]], places)
    return {c: round(v, places) for c, v in values.items()}


def shown_percent(percent: float | None) -> float | None:
    """One decimal; 100.0 only when the target is reached (99.96 shows 99.9)."""
    if percent is None:
        return None
    return 100.0 if percent >= 100.0 else min(round(percent, 1), 99.9)


def progress_json(spec: GoalSpec, result: GoalProgress) -> dict[str, Any]:
    """The public progress of a computation (no state)."""
    unit = spec_for(spec.measure.type)
    return {
        "baseline": shape(spec, result.baseline, 2),
        "baseline_date": result.baseline_date.isoformat() if result.baseline_date else None,
        "current": shape(spec, result.current, 2),
        "as_of": result.as_of.isoformat(),
        "percent": shown_percent(result.percent),
        "status": result.status.value,
        "reason": result.reason,
        "trend_per_week": shape(spec, result.trend_per_week, 3),
        "projected_date": result.projected_date.isoformat() if result.projected_date else None,
        "streak": {"current": result.streak.current, "longest": result.streak.longest},
        "unit": unit.canonical_unit if unit else None,
    }


def milestone_dict(milestone: Milestone, progress: Mapping[str, Any] | None) -> dict[str, Any]:
    """The API form of a milestone, with where it stands."""
    standing = ((progress or {}).get("milestones") or {}).get(milestone.id, {})
    return {
        "id": milestone.id,
        "goal_id": milestone.goal_id,
        "title": milestone.title,
        "target": dict(milestone.target),
        "due": milestone.due.isoformat() if milestone.due else None,
        "achieved_at": milestone.achieved_at.isoformat() if milestone.achieved_at else None,
        "reached_on": standing.get("reached_on"),
        "percent": standing.get("percent"),
        "projected_date": standing.get("projected_date"),
    }


def goal_dict(goal: Goal, milestones: Sequence[Milestone]) -> dict[str, Any]:
    """The API form of a goal (DESIGN §4.4)."""
    target = goal.target
    progress = goal.progress
    return {
        "id": goal.id,
        "patient_id": goal.patient_id,
        "title": goal.title,
        "measure": dict(goal.measure),
        "target": {
            "value": target["value"],
            "unit": target["unit"],
            "direction": target["direction"],
            "inclusive": target.get("inclusive", True),
        },
        "start": goal.start.isoformat(),
        "due": goal.due.isoformat() if goal.due else None,
        "lifecycle": goal.lifecycle,
        "personal": goal.personal,
        "agreements": list(goal.agreements),
        "milestones": [milestone_dict(m, progress) for m in milestones],
        "progress": (
            {k: v for k, v in progress.items() if k not in INTERNAL} if progress else None
        ),
        "created_at": goal.created_at.isoformat(),
        "created_by": goal.created_by,
        "updated_at": goal.updated_at.isoformat(),
    }


def announcement(
    goal: Goal,
    milestones: Sequence[Milestone],
    changed: Iterable[Milestone],
    *,
    deleted: Iterable[Milestone] = (),
) -> list[feed.ChangeEntry]:
    """The change-feed entries of the goal and its changed milestones, the goal first."""
    entries = [feed.ChangeEntry("goal", "upsert", goal.id, goal_dict(goal, milestones))]
    entries += [
        feed.ChangeEntry("milestone", "upsert", m.id, milestone_dict(m, goal.progress))
        for m in changed
    ]
    entries += [
        feed.ChangeEntry("milestone", "delete", m.id, {"id": m.id, "goal_id": m.goal_id})
        for m in deleted
    ]
    return entries
