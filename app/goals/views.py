"""A goal's measure per local day with its fresh progress: the series and the chart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.errors import ErrorItem, Unprocessable
from app.goals import charts
from app.goals.forms import progress_json, shape
from app.goals.models import Goal, Milestone
from app.goals.progress import compute, local_day_facts
from app.goals.repository import milestones_of
from app.goals.service import get_goal
from app.goals.spec import goal_spec
from app.localtime import local_today, zone_of
from app.patients.models import Patient
from rules.catalogue import spec_for
from rules.progress import (
    GoalProgress,
    GoalSpec,
    ProgressState,
    SeriesPoint,
    aggregate_days,
    measure_series,
)

MAX_SERIES_DAYS = 366
MIN_CHART_DAYS = 28


@dataclass(frozen=True)
class GoalView:
    """A goal's measure over a range of days, with its fresh progress (nothing is stored)."""

    goal: Goal
    milestones: list[Milestone]
    spec: GoalSpec
    first: date
    last: date
    series: list[SeriesPoint]
    result: GoalProgress


def goal_view(
    session: Session,
    patient: Patient,
    goal: Goal,
    first: date,
    last: date,
    as_of: date,
    now: datetime,
) -> GoalView:
    """The measure on [first, last] and the progress as of a day (computed, never stored).

    As of today the stored state carries on (only the days changed since are read); as of
    an earlier day (a past week's report) the progress is recomputed from the start.
    """
    milestones = milestones_of(session, [goal.id])[goal.id]
    spec = goal_spec(goal, milestones)
    tz = zone_of(patient)
    w = spec.measure.window_days
    facts = local_day_facts(
        session, patient.id, spec.measure.type, first - timedelta(days=w - 1), last, tz
    )
    series = measure_series(
        spec.measure, aggregate_days(facts, spec.measure.components, tz), first, last
    )
    stored = goal.progress or {}
    prior = None
    if as_of == local_today(patient, now) and stored.get("state"):
        prior = ProgressState.from_stored(stored["state"])
    result, _ = compute(session, patient, spec, as_of, prior, stored.get("feed_seq"))
    return GoalView(goal, milestones, spec, first, last, series, result)


def _range(goal: Goal, first: date | None, last: date | None, today: date) -> tuple[date, date]:
    last = last or today
    first = first or min(goal.start, last - timedelta(days=MIN_CHART_DAYS - 1))
    if first > last:
        raise Unprocessable(
            "The range is empty.",
            errors=[ErrorItem(loc="from", code="after_to", message="from is after to")],
        )
    if (last - first).days + 1 > MAX_SERIES_DAYS:
        raise Unprocessable(
            "The range is too long.",
            errors=[
                ErrorItem(loc="from", code="too_long", message=f"at most {MAX_SERIES_DAYS} days")
            ],
        )
    return first, last


def view_dict(view: GoalView) -> dict[str, Any]:
    """The goal's series answer: target, days, milestones, progress and projection."""
    spec, result = view.spec, view.result
    projection = None
    if result.projected_date is not None and result.current is not None:
        projection = {
            "from": {"date": result.as_of.isoformat(), "value": shape(spec, result.current, 2)},
            "to": {
                "date": result.projected_date.isoformat(),
                "value": shape(spec, spec.target.values, 2),
            },
        }
    return {
        "goal_id": view.goal.id,
        "title": view.goal.title,
        "measure": dict(view.goal.measure),
        "target": {
            "value": shape(spec, spec.target.values, 2),
            "direction": spec.target.direction.value,
            "inclusive": spec.target.inclusive,
        },
        "unit": progress_json(spec, result)["unit"],
        "from": view.first.isoformat(),
        "to": view.last.isoformat(),
        "series": [
            {
                "date": p.day.isoformat(),
                "value": shape(spec, p.value, 2),
                "daily": shape(spec, p.daily, 2),
                "count": p.count,
            }
            for p in view.series
        ],
        "milestones": [
            {
                "id": m.id,
                "title": m.title,
                "target": shape(spec, s.values, 2),
                "due": m.due.isoformat() if m.due else None,
                "achieved_at": m.achieved_at.isoformat() if m.achieved_at else None,
            }
            for m, s in zip(view.milestones, spec.milestones, strict=True)
        ],
        "progress": progress_json(spec, result),
        "projection": projection,
    }


def progress_series(
    session: Session,
    *,
    patient: Patient,
    goal_id: str,
    first: date | None,
    last: date | None,
    now: datetime,
) -> dict[str, Any]:
    """The goal's measure per local day with target, milestones and projection (for charts)."""
    goal = get_goal(session, patient.id, goal_id)
    today = local_today(patient, now)
    first, last = _range(goal, first, last, today)
    return view_dict(goal_view(session, patient, goal, first, last, today, now))


def chart_goal(view: GoalView) -> charts.GoalChart:
    """The goal view in the chart's terms: days, values, target, milestones, projection."""
    spec, result = view.spec, view.result
    unit = spec_for(spec.measure.type)
    return charts.GoalChart(
        title=view.goal.title,
        unit=unit.canonical_unit if unit else "",
        components=spec.measure.components,
        days=[p.day for p in view.series],
        values=[p.value for p in view.series],
        daily=[p.daily for p in view.series],
        target=dict(spec.target.values),
        milestones=[
            charts.ChartMilestone(m.title, dict(s.values), m.due, m.achieved_at is not None)
            for m, s in zip(view.milestones, spec.milestones, strict=True)
        ],
        as_of=result.as_of,
        current=dict(result.current) if result.current else None,
        projected_date=result.projected_date,
        due=spec.due,
        status=result.status.value,
        percent=result.percent,
    )


def goal_chart_png(
    session: Session,
    *,
    patient: Patient,
    goal_id: str,
    first: date | None,
    last: date | None,
    now: datetime,
    lang: str,
) -> bytes:
    """The goal drawn in a language: the measure, the target, milestones, projection (PNG)."""
    goal = get_goal(session, patient.id, goal_id)
    today = local_today(patient, now)
    first, last = _range(goal, first, last, today)
    view = goal_view(session, patient, goal, first, last, today, now)
    return charts.goal_png(chart_goal(view), lang=lang)
