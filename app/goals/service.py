"""Goals (mål) and milestones (delmål): create, edit, progress, summaries and weekly reports.

Progress is the pure math of :mod:`rules.progress`, kept in ``Goal.progress`` (JSON) together
with the incremental state it continues from. It is recomputed

- when a goal is created or changed (in full);
- on sync, for the open goals on the types a batch brought (:func:`recompute_for_readings`,
  called by the ingest): the readings that changed since the last computation are found
  through the patient's change feed (``feed_seq``), only their local days are re-aggregated,
  and the state does the rest; the math falls back to a full recomputation when the changes
  reach behind the state (late data from an offline phone, a deleted reading);
- nightly, in full, for every open goal (:func:`recompute_all`; the scheduler runs it).

Lifecycle (proposed / active / achieved / cancelled) is what people decide; achievement status
(on_track …) is what the data says. A milestone reached gets ``achieved_at`` once and, on an
active goal, a congratulation as advice (Swedish and English) through the same advice and push
path as the rules; so does the goal the first time it is achieved. A reading entered in error
undoes what it alone caused (:func:`correct_goals`): the milestone or goal goes back and its
congratulation is withdrawn. Progress values are in the
type's canonical unit (``progress.unit``); the target keeps the unit it was given in.

Services never commit; every write of a patient's goals takes the patient's feed lock first.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.bounds import EARLIEST_DAY, LATEST_DAY
from app.db import new_id, transaction
from app.errors import Conflict, NotFound, Unprocessable
from app.findings import corrections as findings_corrections
from app.findings import service as findings_service
from app.findings.models import Advice, Evaluation, EvaluationStatus
from app.goals import charts
from app.goals.models import Goal, Milestone
from app.goals.schemas import GoalIn, GoalPatch, Lifecycle, MeasureIn, MilestoneIn, TargetIn
from app.patients.models import Patient
from app.plans import service as plans_service
from app.push import service as push_service
from app.readings import feed
from app.readings.models import Change, Reading, ReadingStatus
from rules.catalogue import (
    MeasurementType,
    UnknownUnit,
    is_accepted_unit,
    plausible_range,
    spec_for,
    to_canonical,
)
from rules.cgm import MMOL_L, GlucoseSample, agp_profile, cgm_metrics, samples_from_readings
from rules.facts import ReadingFact
from rules.progress import (
    MICRO,
    Aggregate,
    DayAggregate,
    Direction,
    GoalProgress,
    GoalSpec,
    Measure,
    MilestoneSpec,
    ProgressState,
    SeriesPoint,
    Status,
    Target,
    aggregate_days,
    compute_progress,
    first_met_day,
    full_progress,
    measure_series,
    needs_full,
)

log = logging.getLogger("selfcare.goals")

OPEN = (Lifecycle.PROPOSED.value, Lifecycle.ACTIVE.value)
"""Goals whose progress is kept up to date."""

MAX_SERIES_DAYS = 366
MIN_CHART_DAYS = 28
MILESTONE_RULE = "goal-milestone"
ACHIEVED_RULE = "goal-achieved"
_ID_CHUNK = 500

_TRANSITIONS: dict[str, frozenset[str]] = {
    Lifecycle.PROPOSED: frozenset({Lifecycle.ACTIVE, Lifecycle.CANCELLED}),
    Lifecycle.ACTIVE: frozenset({Lifecycle.ACHIEVED, Lifecycle.CANCELLED}),
    Lifecycle.ACHIEVED: frozenset({Lifecycle.ACTIVE}),
    Lifecycle.CANCELLED: frozenset(),
}

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


# --- time ----------------------------------------------------------------------------------------


def zone_of(patient: Patient) -> tzinfo:
    """The patient's IANA zone."""
    return ZoneInfo(patient.timezone or "Europe/Stockholm")


def local_today(patient: Patient, now: datetime) -> date:
    """The patient's local date at ``now``."""
    return now.astimezone(zone_of(patient)).date()


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The start of a local day, in UTC."""
    return datetime.combine(day, time(0), tz).astimezone(UTC)


# --- validation and the goal as the math sees it -------------------------------------------------


def _error(loc: str, code: str, message: str) -> dict[str, str]:
    return {"loc": loc, "code": code, "message": message}


def components_of(type_: str, component: str | None) -> tuple[str, ...]:
    """The components a measure looks at: the one named, or every component of the type."""
    spec = spec_for(type_)
    if spec is None:
        return ()
    if component is None:
        return spec.components
    return (component,) if component in spec.components else ()


def _canonical(
    type_: str,
    value: float | Mapping[str, float],
    unit: str,
    components: tuple[str, ...],
    loc: str,
    errors: list[dict[str, str]],
) -> dict[str, float]:
    """Target values per component in the canonical unit; problems go to ``errors``."""
    if not is_accepted_unit(type_, unit):
        errors.append(_error(f"{loc}.unit", "unknown_unit", f"{unit!r} is not a unit of {type_}"))
        return {}
    if isinstance(value, Mapping):
        values = dict(value)
    elif len(components) == 1:
        values = {components[0]: value}
    else:
        values = {}
    if set(values) != set(components):
        errors.append(
            _error(
                f"{loc}.value",
                "invalid",
                f"give one number, or an object with exactly {', '.join(components)}",
            )
        )
        return {}
    out: dict[str, float] = {}
    for component, number in values.items():
        try:
            canonical = to_canonical(type_, Decimal(str(number)), unit)
        except (UnknownUnit, ValueError) as exc:
            errors.append(_error(f"{loc}.value", "invalid", str(exc)))
            continue
        bounds = plausible_range(type_, component)
        if bounds is not None and not bounds[0] <= canonical <= bounds[1]:
            errors.append(
                _error(
                    f"{loc}.value",
                    "implausible",
                    f"{component} {number} {unit} is outside {bounds[0]}–{bounds[1]}",
                )
            )
            continue
        out[component] = float(canonical)
    return out


def _validate(
    measure: MeasureIn,
    target: TargetIn,
    milestones: Sequence[MilestoneIn],
    start: date,
    due: date | None,
) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    components = components_of(measure.type, measure.component)
    if not components:
        errors.append(
            _error(
                "measure.component",
                "unknown_component",
                f"{measure.type} has the components "
                f"{', '.join(components_of(measure.type, None))}",
            )
        )
        return errors
    _canonical(measure.type, target.value, target.unit, components, "target", errors)
    if due is not None and due < start:
        errors.append(_error("due", "before_start", "the due date is before the start"))
    for index, milestone in enumerate(milestones):
        loc = f"milestones.{index}"
        _canonical(
            measure.type,
            milestone.target.value,
            milestone.target.unit,
            components,
            f"{loc}.target",
            errors,
        )
        if milestone.due is not None and milestone.due < start:
            errors.append(_error(f"{loc}.due", "before_start", "the due date is before the start"))
    return errors


def _start_of(goal: Goal) -> date:
    return date.fromisoformat(goal.target["start"])


def goal_spec(goal: Goal, milestones: Sequence[Milestone]) -> GoalSpec:
    """A stored goal as the progress math sees it (target values in the canonical unit)."""
    m, t = goal.measure, goal.target
    components = components_of(m["type"], m.get("component"))
    errors: list[dict[str, str]] = []
    values = _canonical(m["type"], t["value"], t["unit"], components, "target", errors)
    specs = []
    for milestone in milestones:
        target = milestone.target
        specs.append(
            MilestoneSpec(
                key=milestone.id,
                values=_canonical(
                    m["type"], target["value"], target["unit"], components, "m", errors
                ),
                due=milestone.due,
            )
        )
    if errors:
        raise ValueError(f"goal {goal.id} is stored invalid: {errors}")
    return GoalSpec(
        measure=Measure(m["type"], Aggregate(m["aggregate"]), int(m["window_days"]), components),
        target=Target(values, Direction(t["direction"]), bool(t.get("inclusive", True))),
        start=_start_of(goal),
        due=goal.due,
        milestones=tuple(specs),
    )


# --- API forms ---------------------------------------------------------------------------------

_INTERNAL = ("state", "milestones", "full_on", "feed_seq")


def _shape(spec: GoalSpec, values: Mapping[str, float] | None, places: int) -> Any:
    """One number for a one-component measure, else an object per component."""
    if values is None:
        return None
    if len(spec.measure.components) == 1:
        return round(values[spec.measure.components[0]], places)
    return {c: round(v, places) for c, v in values.items()}


def _shown_percent(percent: float | None) -> float | None:
    """One decimal; 100.0 only when the target is reached (99.96 shows 99.9)."""
    if percent is None:
        return None
    return 100.0 if percent >= 100.0 else min(round(percent, 1), 99.9)


def progress_json(spec: GoalSpec, result: GoalProgress) -> dict[str, Any]:
    """The public progress of a computation (no state)."""
    unit = spec_for(spec.measure.type)
    return {
        "baseline": _shape(spec, result.baseline, 2),
        "baseline_date": result.baseline_date.isoformat() if result.baseline_date else None,
        "current": _shape(spec, result.current, 2),
        "as_of": result.as_of.isoformat(),
        "percent": _shown_percent(result.percent),
        "status": result.status.value,
        "reason": result.reason,
        "trend_per_week": _shape(spec, result.trend_per_week, 3),
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
        "start": target["start"],
        "due": goal.due.isoformat() if goal.due else None,
        "lifecycle": goal.lifecycle,
        "personal": goal.personal,
        "agreements": list(goal.agreements),
        "milestones": [milestone_dict(m, progress) for m in milestones],
        "progress": (
            {k: v for k, v in progress.items() if k not in _INTERNAL} if progress else None
        ),
        "created_at": goal.created_at.isoformat(),
        "created_by": goal.created_by,
        "updated_at": goal.updated_at.isoformat(),
    }


# --- reads ---------------------------------------------------------------------------------------


def list_goals(session: Session, patient_id: str) -> list[Goal]:
    """A patient's goals, oldest first."""
    return list(
        session.scalars(
            select(Goal).where(Goal.patient_id == patient_id).order_by(Goal.created_at, Goal.id)
        )
    )


def milestones_of(session: Session, goal_ids: Sequence[str]) -> dict[str, list[Milestone]]:
    """The milestones of goals, by goal id, earliest due first."""
    out: dict[str, list[Milestone]] = {goal_id: [] for goal_id in goal_ids}
    if not goal_ids:
        return out
    rows = session.scalars(
        select(Milestone)
        .where(Milestone.goal_id.in_(list(goal_ids)))
        .order_by(Milestone.due.is_(None), Milestone.due, Milestone.title, Milestone.id)
    )
    for row in rows:
        out[row.goal_id].append(row)
    return out


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


# --- writes --------------------------------------------------------------------------------------


def _measure_json(measure: MeasureIn) -> dict[str, Any]:
    return {
        "type": measure.type.value,
        "aggregate": measure.aggregate.value,
        "window_days": measure.window_days,
        "component": measure.component,
    }


def _target_json(target: TargetIn, start: date) -> dict[str, Any]:
    value: Any = dict(target.value) if isinstance(target.value, dict) else target.value
    return {
        "value": value,
        "unit": target.unit,
        "direction": target.direction.value,
        "inclusive": target.inclusive,
        # The goal's start (FHIR Goal.startDate) lives here: the table has no column for it.
        "start": start.isoformat(),
    }


def _milestone_target(milestone: MilestoneIn) -> dict[str, Any]:
    value: Any = dict(milestone.target.value) if isinstance(milestone.target.value, dict) else (
        milestone.target.value
    )
    return {"value": value, "unit": milestone.target.unit}


@dataclass
class _Outcome:
    advice: list[Advice] = field(default_factory=list)
    goal_changed: bool = False
    milestones_changed: list[Milestone] = field(default_factory=list)


def _announce(
    session: Session,
    patient_id: str,
    goal: Goal,
    milestones: Sequence[Milestone],
    changed: Iterable[Milestone],
    now: datetime,
    *,
    deleted: Iterable[Milestone] = (),
) -> None:
    """Put the goal and its changed milestones in the change feed, the goal first."""
    entries = [feed.ChangeEntry("goal", "upsert", goal.id, goal_dict(goal, milestones))]
    entries += [
        feed.ChangeEntry("milestone", "upsert", m.id, milestone_dict(m, goal.progress))
        for m in changed
    ]
    entries += [
        feed.ChangeEntry("milestone", "delete", m.id, {"id": m.id, "goal_id": m.goal_id})
        for m in deleted
    ]
    feed.append_many(session, patient_id, entries, now=now)


def create_goal(
    session: Session, *, patient: Patient, body: GoalIn, author_id: str | None, now: datetime
) -> dict[str, Any]:
    """Validate and store a goal with its milestones; compute its progress."""
    start = body.start or local_today(patient, now)
    errors = _validate(body.measure, body.target, body.milestones, start, body.due)
    if any(m.id is not None for m in body.milestones):
        errors.append(_error("milestones", "invalid", "a new goal's milestones have no id"))
    if body.lifecycle not in OPEN:
        errors.append(_error("lifecycle", "invalid", "a new goal is proposed or active"))
    if errors:
        raise Unprocessable("The goal is not valid.", errors=errors)
    feed.lock_patient(session, patient.id)
    goal = Goal(
        id=new_id(),
        patient_id=patient.id,
        title=body.title,
        measure=_measure_json(body.measure),
        target=_target_json(body.target, start),
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
    _refresh(session, patient, goal, milestones, now, full=True)
    _announce(session, patient.id, goal, milestones, milestones, now)
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
    if body.lifecycle is not None and body.lifecycle != goal.lifecycle:
        if body.lifecycle not in _TRANSITIONS[Lifecycle(goal.lifecycle)]:
            raise Conflict(f"A goal cannot go from {goal.lifecycle} to {body.lifecycle.value}.")

    measure = body.measure or MeasureIn.model_validate(goal.measure)
    stored_target = {k: v for k, v in goal.target.items() if k != "start"}
    target = body.target or TargetIn.model_validate(stored_target)
    start = body.start if "start" in given and body.start else _start_of(goal)
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
    errors = _validate(measure, target, wanted, start, due)
    for index, item in enumerate(wanted):
        if item.id is not None and item.id not in existing:
            errors.append(_error(f"milestones.{index}.id", "unknown", "no such milestone"))
    if errors:
        raise Unprocessable("The goal is not valid.", errors=errors)

    new_measure, new_target = _measure_json(measure), _target_json(target, start)
    if new_measure != goal.measure or new_target != goal.target:
        goal.progress = None  # another measure or target: progress starts over
        for m in milestones:
            m.achieved_at = None
    goal.measure, goal.target, goal.due = new_measure, new_target, due
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
    outcome = _refresh(session, patient, goal, milestones, now, full=True)
    changed += [m for m in outcome.milestones_changed if m not in changed]
    _announce(session, patient.id, goal, milestones, changed, now, deleted=deleted)
    return goal_dict(goal, milestones)


# --- progress ------------------------------------------------------------------------------------


def _changed_days(
    session: Session, patient_id: str, type_: str, after_seq: int, tz: tzinfo
) -> set[date] | None:
    """Local days of this type's readings changed after a feed position (None: unknown)."""
    oldest = session.scalar(select(func.min(Change.seq)).where(Change.patient_id == patient_id))
    if oldest is not None and oldest > after_seq + 1:
        return None  # the feed was trimmed behind us: nothing tells what changed
    ids = list(
        session.scalars(
            select(Change.entity_id).where(
                Change.patient_id == patient_id, Change.seq > after_seq, Change.entity == "reading"
            )
        )
    )
    days: set[date] = set()
    for offset in range(0, len(ids), _ID_CHUNK):
        chunk = set(ids[offset : offset + _ID_CHUNK])
        times = session.scalars(
            select(Reading.time).where(Reading.id.in_(chunk), Reading.type == type_)
        )
        days.update(t.astimezone(tz).date() for t in times)
    return days


def counted_facts(
    session: Session, patient_id: str, types: set[str], start: datetime, end: datetime
) -> list[ReadingFact]:
    """Readings that count (final, not another source's duplicate) with ``start ≤ time < end``."""
    c = Reading.__table__.c
    query = (
        select(
            c.id, c.type, c.time, c["values"], c.unit, c.original_values, c.original_unit,
            c.end_time, c.context,
        )
        .where(
            c.patient_id == patient_id,
            c.type.in_(sorted(types)),
            c.time >= start,
            c.time < end,
            c.status == ReadingStatus.FINAL,
            c.duplicate_of.is_(None),
        )
        .order_by(c.time, c.id)
    )  # fmt: skip
    return [
        ReadingFact(
            id=row["id"],
            type=row["type"],
            time=row["time"],
            values={k: Decimal(v) for k, v in row["values"].items()},
            unit=row["unit"],
            original_values={k: Decimal(v) for k, v in row["original_values"].items()},
            original_unit=row["original_unit"],
            end_time=row["end_time"],
            context=row["context"] or {},
        )
        for row in session.execute(query).mappings()
    ]


def _facts(
    session: Session, patient_id: str, type_: str, first: date, last: date, tz: tzinfo
) -> list[ReadingFact]:
    """Counted readings of a type on the local days [first, last]."""
    return counted_facts(
        session,
        patient_id,
        {type_},
        local_midnight(first, tz),
        local_midnight(last + timedelta(days=1), tz),
    )


def _compute(
    session: Session, patient: Patient, spec: GoalSpec, today: date, prior: ProgressState | None,
    after_seq: int | None,
) -> tuple[GoalProgress, bool]:  # fmt: skip
    """Progress as of today, incrementally when the state allows; (result, was it full)."""
    tz = zone_of(patient)
    if prior is not None and after_seq is not None and prior.today <= today:
        changed = _changed_days(session, patient.id, spec.measure.type, after_seq, tz)
        if changed is not None and not needs_full(spec, prior, changed):
            days: dict[date, Mapping[str, DayAggregate]] = {}
            if changed:
                facts = _facts(session, patient.id, spec.measure.type, min(changed),
                               max(changed), tz)  # fmt: skip
                aggregated = aggregate_days(facts, spec.measure.components, tz)
                days = {d: aggregated.get(d, {}) for d in changed}
            return compute_progress(spec, days, today, prior), False
    w = spec.measure.window_days
    first = min(spec.start - timedelta(days=w - 1), today - timedelta(days=spec.keep_days - 1))
    facts = _facts(session, patient.id, spec.measure.type, first, today, tz)
    return full_progress(spec, facts, tz, today), True


def _refresh(
    session: Session,
    patient: Patient,
    goal: Goal,
    milestones: Sequence[Milestone],
    now: datetime,
    *,
    full: bool,
) -> _Outcome:
    """Recompute one goal's progress; mark milestones reached; congratulate on active goals."""
    today = local_today(patient, now)
    spec = goal_spec(goal, milestones)
    previous: dict[str, Any] = dict(goal.progress or {})
    prior = None
    if not full and previous.get("state"):
        prior = ProgressState.from_dict(previous["state"])
    head = feed.lock_patient(session, patient.id)
    seq = head.last_seq
    result, was_full = _compute(session, patient, spec, today, prior, previous.get("feed_seq"))
    progress: dict[str, Any] = progress_json(spec, result)
    progress.update(
        updated_at=now.isoformat(),
        achieved_at=previous.get("achieved_at"),
        milestones={
            m.key: {
                "reached_on": m.reached_on.isoformat() if m.reached_on else None,
                "percent": _shown_percent(m.percent),
                "projected_date": m.projected_date.isoformat() if m.projected_date else None,
            }
            for m in result.milestones
        },
        state=result.state.to_dict(),
        feed_seq=seq,
        full_on=today.isoformat() if was_full else previous.get("full_on"),
    )
    outcome = _Outcome()
    active = goal.lifecycle == Lifecycle.ACTIVE
    goal.progress = progress  # the congratulations explain themselves from it
    for milestone in milestones:
        if milestone.achieved_at is None and milestone.id in result.state.reached:
            milestone.achieved_at = now
            outcome.milestones_changed.append(milestone)
            if active and (advice := _congratulate(session, patient, goal, milestone, now)):
                outcome.advice.append(advice)
    if result.status is Status.ACHIEVED and not previous.get("achieved_at"):
        # A new dict, never the one assigned above: a flush in between (the milestone's
        # congratulation) makes that one the committed value, and mutating it in place
        # would hide the change from the flush.
        progress = {**progress, "achieved_at": now.isoformat()}
        goal.progress = progress
        if active and (advice := _congratulate(session, patient, goal, None, now)):
            outcome.advice.append(advice)

    def visible(p: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in p.items() if k not in (*_INTERNAL, "updated_at")}

    outcome.goal_changed = visible(previous) != visible(progress) or bool(
        outcome.milestones_changed
    )
    goal.progress = dict(progress)
    session.flush()
    return outcome


def _congratulate(
    session: Session, patient: Patient, goal: Goal, milestone: Milestone | None, now: datetime
) -> Advice | None:
    """Advice (and a push) for a milestone or a goal reached, with its evaluation record."""
    rule = MILESTONE_RULE if milestone is not None else ACHIEVED_RULE
    texts = _CONGRATULATIONS[rule]
    names = {"goal": goal.title, "milestone": milestone.title if milestone else ""}
    plan = plans_service.current(session, patient.id)
    plan_version = plan.version if plan is not None else 0
    key = _congratulation_key(goal, milestone)
    earlier = session.scalars(
        select(Evaluation).where(
            Evaluation.patient_id == patient.id,
            Evaluation.rule_id == rule,
            Evaluation.anchor_key == key,
            Evaluation.plan_version == plan_version,
        )
    ).first()
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
            rule_version=1,
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
    advice = Advice(
        patient_id=patient.id,
        evaluation_id=evaluation.id,
        rule_id=rule,
        rule_version=1,
        priority="routine",
        title=dict(texts["title"]),
        body={lang: text.format(**names) for lang, text in texts["body"].items()},
        reading_ids=[],
        notify=True,
        created_at=now,
    )
    session.add(advice)
    session.flush()
    feed.append(
        session,
        patient.id,
        entity="advice",
        op="upsert",
        entity_id=advice.id,
        data=findings_service.advice_dict(advice, patient.language),
        now=now,
    )
    push_service.enqueue_advice(session, advice, patient, now)
    return advice


def _congratulation_key(goal: Goal, milestone: Milestone | None) -> str:
    rule = MILESTONE_RULE if milestone is not None else ACHIEVED_RULE
    return f"{rule}:{milestone.id if milestone is not None else goal.id}"


def _withdraw_congratulations(
    session: Session, patient: Patient, goal: Goal, milestone: Milestone | None, now: datetime
) -> None:
    """Retract the congratulation's evaluations and withdraw its advice (a correction)."""
    rule = MILESTONE_RULE if milestone is not None else ACHIEVED_RULE
    evaluations = list(
        session.scalars(
            select(Evaluation).where(
                Evaluation.patient_id == patient.id,
                Evaluation.rule_id == rule,
                Evaluation.anchor_key == _congratulation_key(goal, milestone),
                Evaluation.status == EvaluationStatus.FIRED,
            )
        )
    )
    for evaluation in evaluations:
        evaluation.status, evaluation.retracted_at = EvaluationStatus.RETRACTED, now
    if not evaluations:
        return
    advice = session.scalars(
        select(Advice).where(Advice.evaluation_id.in_([e.id for e in evaluations]))
    )
    findings_corrections.withdraw_advice(
        session, patient, list(advice), reason=findings_corrections.ENTERED_IN_ERROR, now=now
    )


def correct_goals(
    session: Session, patient: Patient, types: Iterable[str], now: datetime
) -> list[Advice]:
    """Undo what readings entered in error caused on the goals of their types.

    Each goal on these types that is open or achieved is recomputed in full at once. A
    milestone the data no longer shows reached loses ``achieved_at``; a goal whose target
    no day since its start meets any more loses ``progress.achieved_at`` and, when it was
    marked achieved, goes back to active. Their congratulations are withdrawn. What is
    still reached without the readings stands (achievement follows the data, not the day).
    """
    wanted = set(types)
    kept = (*OPEN, Lifecycle.ACHIEVED.value)
    goals = [
        g
        for g in session.scalars(
            select(Goal)
            .where(Goal.patient_id == patient.id, Goal.lifecycle.in_(kept))
            .order_by(Goal.created_at, Goal.id)
        )
        if g.measure.get("type") in wanted
    ]
    if not goals:
        return []
    milestones = milestones_of(session, [g.id for g in goals])
    advice: list[Advice] = []
    for goal in goals:
        outcome = _refresh(session, patient, goal, milestones[goal.id], now, full=True)
        advice += outcome.advice
        progress = dict(goal.progress or {})
        reached = {k for k, m in (progress.get("milestones") or {}).items() if m["reached_on"]}
        changed = list(outcome.milestones_changed)
        for milestone in milestones[goal.id]:
            if milestone.achieved_at is not None and milestone.id not in reached:
                milestone.achieved_at = None
                changed.append(milestone)
                _withdraw_congratulations(session, patient, goal, milestone, now)
        undone = progress.get("achieved_at") is not None and _met_since_start(
            session, patient, goal, milestones[goal.id], now
        ) is None
        if undone:
            progress["achieved_at"] = None
            goal.progress = progress
            if goal.lifecycle == Lifecycle.ACHIEVED:
                goal.lifecycle = Lifecycle.ACTIVE.value
            goal.updated_at = now
            _withdraw_congratulations(session, patient, goal, None, now)
        session.flush()
        if outcome.goal_changed or changed or undone:
            _announce(session, patient.id, goal, milestones[goal.id], changed, now)
    return advice


def _met_since_start(
    session: Session, patient: Patient, goal: Goal, milestones: Sequence[Milestone], now: datetime
) -> date | None:
    """The first day from the goal's start whose value meets its target, or None."""
    spec = goal_spec(goal, milestones)
    today = local_today(patient, now)
    w = spec.measure.window_days
    first = min(spec.start - timedelta(days=w - 1), today - timedelta(days=spec.keep_days - 1))
    tz = zone_of(patient)
    facts = _facts(session, patient.id, spec.measure.type, first, today, tz)
    return first_met_day(spec, facts, tz, today)


def _open_goals(session: Session, patient_id: str) -> list[Goal]:
    return list(
        session.scalars(
            select(Goal)
            .where(Goal.patient_id == patient_id, Goal.lifecycle.in_(OPEN))
            .order_by(Goal.created_at, Goal.id)
        )
    )


def recompute_for_readings(
    session: Session, patient: Patient, types: Iterable[str], now: datetime
) -> list[Advice]:
    """Bring the open goals on these measurement types up to date after a sync batch."""
    wanted = set(types)
    if not wanted:
        return []
    goals = [g for g in _open_goals(session, patient.id) if g.measure.get("type") in wanted]
    if not goals:
        return []
    milestones = milestones_of(session, [g.id for g in goals])
    advice: list[Advice] = []
    for goal in goals:
        outcome = _refresh(session, patient, goal, milestones[goal.id], now, full=False)
        advice += outcome.advice
        if outcome.goal_changed:
            _announce(
                session, patient.id, goal, milestones[goal.id], outcome.milestones_changed, now
            )
    return advice


def recompute_all(factory: sessionmaker[Session], now: datetime) -> dict[str, int]:
    """Nightly: recompute every open goal in full, one transaction per patient.

    The patient's feed lock serialises this with syncs and with other workers; a patient
    whose goals were all recomputed in full today (by another worker) is skipped.
    """
    with transaction(factory) as session:
        patient_ids = list(
            session.scalars(
                select(Goal.patient_id).where(Goal.lifecycle.in_(OPEN)).distinct().order_by(
                    Goal.patient_id
                )
            )
        )
    counts = {"patients": 0, "goals": 0, "advice": 0, "skipped": 0, "failed": 0}
    for patient_id in patient_ids:
        try:
            with transaction(factory) as session:
                patient = session.get(Patient, patient_id)
                if patient is None:
                    continue
                feed.lock_patient(session, patient_id)
                goals = _open_goals(session, patient_id)
                today = local_today(patient, now).isoformat()
                if all((g.progress or {}).get("full_on") == today for g in goals):
                    counts["skipped"] += 1
                    continue
                milestones = milestones_of(session, [g.id for g in goals])
                for goal in goals:
                    outcome = _refresh(session, patient, goal, milestones[goal.id], now, full=True)
                    counts["advice"] += len(outcome.advice)
                    if outcome.goal_changed:
                        _announce(session, patient_id, goal, milestones[goal.id],
                                  outcome.milestones_changed, now)  # fmt: skip
                counts["goals"] += len(goals)
                counts["patients"] += 1
        except Exception:  # one patient's failure must not stop the night's run
            log.exception("goal progress of patient %s failed", patient_id)
            counts["failed"] += 1
    return counts


# --- series, charts ----------------------------------------------------------------------------


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


def _view(
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
    facts = _facts(session, patient.id, spec.measure.type, first - timedelta(days=w - 1), last, tz)
    series = measure_series(
        spec.measure, aggregate_days(facts, spec.measure.components, tz), first, last
    )
    stored = goal.progress or {}
    prior = None
    if as_of == local_today(patient, now) and stored.get("state"):
        prior = ProgressState.from_dict(stored["state"])
    result, _ = _compute(session, patient, spec, as_of, prior, stored.get("feed_seq"))
    return GoalView(goal, milestones, spec, first, last, series, result)


def _range(goal: Goal, first: date | None, last: date | None, today: date) -> tuple[date, date]:
    last = last or today
    first = first or min(_start_of(goal), last - timedelta(days=MIN_CHART_DAYS - 1))
    if first > last:
        raise Unprocessable(
            "The range is empty.",
            errors=[_error("from", "after_to", "from is after to")],
        )
    if (last - first).days + 1 > MAX_SERIES_DAYS:
        raise Unprocessable(
            "The range is too long.",
            errors=[_error("from", "too_long", f"at most {MAX_SERIES_DAYS} days")],
        )
    return first, last


def _view_dict(view: GoalView) -> dict[str, Any]:
    spec, result = view.spec, view.result
    projection = None
    if result.projected_date is not None and result.current is not None:
        projection = {
            "from": {"date": result.as_of.isoformat(), "value": _shape(spec, result.current, 2)},
            "to": {
                "date": result.projected_date.isoformat(),
                "value": _shape(spec, spec.target.values, 2),
            },
        }
    return {
        "goal_id": view.goal.id,
        "title": view.goal.title,
        "measure": dict(view.goal.measure),
        "target": {
            "value": _shape(spec, spec.target.values, 2),
            "direction": spec.target.direction.value,
            "inclusive": spec.target.inclusive,
        },
        "unit": progress_json(spec, result)["unit"],
        "from": view.first.isoformat(),
        "to": view.last.isoformat(),
        "series": [
            {
                "date": p.day.isoformat(),
                "value": _shape(spec, p.value, 2),
                "daily": _shape(spec, p.daily, 2),
                "count": p.count,
            }
            for p in view.series
        ],
        "milestones": [
            {
                "id": m.id,
                "title": m.title,
                "target": _shape(spec, s.values, 2),
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
    return _view_dict(_view(session, patient, goal, first, last, today, now))


def _chart_goal(view: GoalView) -> charts.GoalChart:
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
    view = _view(session, patient, goal, first, last, today, now)
    return charts.goal_png(_chart_goal(view), lang=lang)


# --- summaries -----------------------------------------------------------------------------------


def _round(value: float | Decimal | None, places: int = 4) -> float | None:
    if value is None:
        return None
    number = float(value)
    return round(number, places) if math.isfinite(number) else None


def cgm_summary(
    samples: Sequence[GlucoseSample],
    *,
    tz: tzinfo,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    """The CGM fields of DESIGN §4.4 (CLINICAL §3, via rules.cgm) and the hourly AGP profile."""
    metrics = cgm_metrics(samples, unit=MMOL_L, start=start, end=end)
    inside = [
        s for s in samples if (start is None or s.time >= start) and (end is None or s.time < end)
    ]
    return {
        "n": metrics.n,
        "wear_percent": _round(metrics.wear_percent),
        "mean": _round(metrics.mean),
        "sd": _round(metrics.sd),
        "cv": _round(metrics.cv),
        "tir": _round(metrics.tir),
        "tbr_3_9": _round(metrics.tbr_3_9),
        "tbr_3_0": _round(metrics.tbr_3_0),
        "tar_10_0": _round(metrics.tar_10_0),
        "tar_13_9": _round(metrics.tar_13_9),
        "gmi_percent": _round(metrics.gmi_percent),
        "gmi_mmol_mol": _round(metrics.gmi_mmol_mol),
        "gri": _round(metrics.gri),
        "unit": MMOL_L,
        "agp": [
            {
                "hour": h.hour,
                "n": h.n,
                "p5": _round(h.p5),
                "p25": _round(h.p25),
                "p50": _round(h.p50),
                "p75": _round(h.p75),
                "p95": _round(h.p95),
            }
            for h in agp_profile(inside, tz=tz, unit=MMOL_L)
        ],
    }


def _day_summary(
    comps: Mapping[str, DayAggregate], components: tuple[str, ...], interval: bool
) -> dict[str, Any]:
    def per(pick: str) -> Any:
        values: dict[str, float] = {}
        for c in components:
            agg = comps.get(c)
            if agg is None:
                return None
            micros = {"mean": agg.total / agg.count, "min": agg.low, "max": agg.high,
                      "last": agg.last, "sum": agg.total}[pick]  # fmt: skip
            values[c] = round(micros / MICRO, 4)
        return values[components[0]] if len(components) == 1 else values

    out: dict[str, Any] = {
        "count": max((a.count for a in comps.values()), default=0),
        "mean": per("mean"),
        "min": per("min"),
        "max": per("max"),
        "last": per("last"),
    }
    if interval:
        out["sum"] = per("sum")
    return out


def _merge(aggs: Iterable[DayAggregate]) -> DayAggregate | None:
    merged: DayAggregate | None = None
    for a in aggs:
        merged = a if merged is None else DayAggregate(
            merged.count + a.count, merged.total + a.total, min(merged.low, a.low),
            max(merged.high, a.high), a.last,
        )  # fmt: skip
    return merged


def summary(
    session: Session, *, patient: Patient, type_: MeasurementType, days: int, now: datetime
) -> dict[str, Any]:
    """CGM metrics over the last ``days`` × 24 h, or for other types count/mean/min/max/last per
    local day."""
    tz = zone_of(patient)
    if type_ is MeasurementType.cgm_glucose:
        start = now - timedelta(days=days)
        facts = counted_facts(session, patient.id, {type_.value}, start, now)
        body = cgm_summary(samples_from_readings(facts), tz=tz, start=start, end=now)
        return {"type": type_.value, "days": days, "from": start.isoformat(),
                "to": now.isoformat(), **body}  # fmt: skip
    today = local_today(patient, now)
    first = today - timedelta(days=days - 1)
    return _daily_summary(session, patient, type_.value, first, today)


def _daily_summary(
    session: Session, patient: Patient, type_: str, first: date, last: date
) -> dict[str, Any]:
    tz = zone_of(patient)
    spec = spec_for(type_)
    assert spec is not None
    components = spec.components
    facts = _facts(session, patient.id, type_, first, last, tz)
    aggregated = aggregate_days(facts, components, tz)
    per_day = []
    day = first
    while day <= last:
        aggregates = aggregated.get(day, {})
        per_day.append(
            {"date": day.isoformat(), **_day_summary(aggregates, components, spec.interval)}
        )
        day += timedelta(days=1)
    ordered = [aggregated[d] for d in sorted(aggregated)]
    overall = {
        c: merged
        for c in components
        if (merged := _merge(a[c] for a in ordered if c in a)) is not None
    }
    return {
        "type": type_,
        "unit": spec.canonical_unit,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "total": _day_summary(overall, components, spec.interval),
        "days": per_day,
    }


# --- the weekly report ---------------------------------------------------------------------------


def parse_week(week: str) -> tuple[date, date]:
    """Monday and Sunday of an ISO week such as ``2026-W47`` (422 when it is no week)."""
    try:
        year, number = week.split("-W")
        monday = date.fromisocalendar(int(year), int(number), 1)
        if not EARLIEST_DAY <= monday <= LATEST_DAY - timedelta(days=6):
            raise ValueError(week)  # the week's Sunday and its series stay within the bounds
    except ValueError as exc:
        raise Unprocessable(
            "The week is not valid.",
            errors=[_error("week", "invalid", "an ISO week like 2026-W47, in 1901–2100")],
        ) from exc
    return monday, monday + timedelta(days=6)


def last_week(patient: Patient, now: datetime) -> str:
    """The patient's last complete ISO week (the report's default)."""
    year, number, _ = (local_today(patient, now) - timedelta(days=7)).isocalendar()
    return f"{year}-W{number:02d}"


@dataclass(frozen=True)
class Report:
    """The weekly report as data, and what the picture needs."""

    body: dict[str, Any]
    goals: list[GoalView]
    cgm_samples: list[GlucoseSample]


def _report(session: Session, patient: Patient, week: str | None, now: datetime) -> Report:
    week = week or last_week(patient, now)
    monday, sunday = parse_week(week)
    today = local_today(patient, now)
    if monday > today:
        raise Unprocessable(
            "The week has not begun.", errors=[_error("week", "future", "a week not in the future")]
        )
    as_of = min(sunday, today)
    tz = zone_of(patient)
    goals = [
        g for g in list_goals(session, patient.id)
        if g.lifecycle != Lifecycle.CANCELLED and _start_of(g) <= sunday
    ]  # fmt: skip
    views = [_view(session, patient, g, monday, as_of, as_of, now) for g in goals]
    start = local_midnight(monday, tz)
    end = min(local_midnight(sunday + timedelta(days=1), tz), now)
    cgm_facts = counted_facts(session, patient.id, {"cgm_glucose"}, start, end)
    samples = samples_from_readings([f for f in cgm_facts if f.time < end])
    counts: dict[str, int] = {}
    rows = session.execute(
        select(Reading.type, func.count())
        .where(
            Reading.patient_id == patient.id,
            Reading.time >= start,
            Reading.time < end,
            Reading.status == ReadingStatus.FINAL,
            Reading.duplicate_of.is_(None),
        )
        .group_by(Reading.type)
    )
    for type_, count in rows:
        counts[str(type_)] = int(count)
    body = {
        "patient": {"id": patient.id, "display_name": patient.display_name},
        "week": f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02d}",
        "from": monday.isoformat(),
        "to": sunday.isoformat(),
        "as_of": as_of.isoformat(),
        "readings": dict(sorted(counts.items())),
        "goals": [
            {
                "id": v.goal.id,
                "title": v.goal.title,
                "lifecycle": v.goal.lifecycle,
                "measure": dict(v.goal.measure),
                "progress": progress_json(v.spec, v.result),
                "series": _view_dict(v)["series"],
            }
            for v in views
        ],
        "cgm": (
            {"from": start.isoformat(), "to": end.isoformat(),
             **cgm_summary(samples, tz=tz, start=start, end=end)}
            if samples
            else None
        ),
    }  # fmt: skip
    return Report(body, views, samples)


def weekly_report(
    session: Session, *, patient: Patient, week: str | None, now: datetime
) -> dict[str, Any]:
    """The week's report: each goal as of the week's end, and the CGM picture if there is one."""
    return _report(session, patient, week, now).body


def weekly_report_png(
    session: Session, *, patient: Patient, week: str | None, now: datetime, lang: str
) -> bytes:
    """The week's report drawn in a language: a panel per goal; AGP and time in ranges."""
    report = _report(session, patient, week, now)
    cgm = report.body["cgm"]
    year, number = (int(part) for part in report.body["week"].split("-W"))
    return charts.report_png(
        title=charts.week_title(patient.display_name, year, number, lang),
        goals=[_chart_goal(v) for v in report.goals],
        cgm=(
            charts.CgmPicture(
                agp=[(h["hour"], h["p5"], h["p25"], h["p50"], h["p75"], h["p95"])
                     for h in cgm["agp"]],
                ranges=(cgm["tbr_3_0"], cgm["tbr_3_9"], cgm["tir"], cgm["tar_10_0"],
                        cgm["tar_13_9"]),
            )
            if cgm and cgm["n"]
            else None
        ),  # fmt: skip
        lang=lang,
    )


def load_goals(
    session: Session,
    patient: Patient,
    goals: Sequence[Mapping[str, Any]],
    author_id: str | None,
    now: datetime,
) -> int:
    """Add goals (API bodies) to a patient who has none; how many were added."""
    if session.scalar(select(func.count()).select_from(Goal).where(Goal.patient_id == patient.id)):
        return 0
    for body in goals:
        create_goal(
            session, patient=patient, body=GoalIn.model_validate(body), author_id=author_id,
            now=now,
        )  # fmt: skip
    return len(goals)
