"""Computing and refreshing a goal's stored progress.

Progress is the pure math of :mod:`rules.progress`, kept in ``Goal.progress`` (JSON) together
with the incremental state it continues from. It is recomputed

- when a goal is created or changed (in full);
- on sync, for the open goals on the types a batch brought (:func:`recompute_for_readings`,
  called by the ingest): the readings that changed since the last computation are found
  through the patient's change feed (``feed_seq``), only their local days are re-aggregated,
  and the state does the rest; the math falls back to a full recomputation when the changes
  reach behind the state (late data from an offline phone, a deleted reading);
- nightly, in full, for every open goal (:func:`recompute_all`; the scheduler runs it).

A milestone reached gets ``achieved_at`` once and, on an active goal, a congratulation
(:mod:`app.goals.congratulations`); so does the goal the first time it is achieved. A reading
entered in error undoes what it alone caused (:func:`correct_goals`): the milestone or goal
goes back and its congratulation is withdrawn.

Services never commit; every write of a patient's goals takes the patient's feed lock first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.feed import service as feed
from app.findings.models import Advice
from app.findings.outgoing import Outgoing
from app.goals.congratulations import congratulate, withdraw_congratulations
from app.goals.forms import INTERNAL, announcement, progress_json, shown_percent
from app.goals.models import Goal, Milestone
from app.goals.repository import goals_in, milestones_of, open_goals_with_milestones
from app.goals.schemas import Lifecycle
from app.goals.spec import OPEN, goal_spec
from app.localtime import local_midnight, local_today, zone_of
from app.patients.models import Patient
from app.readings import repository as readings_repository
from app.readings.repository import counted_facts
from rules.facts import ReadingFact
from rules.progress import (
    DayAggregate,
    GoalProgress,
    GoalSpec,
    ProgressState,
    Status,
    aggregate_days,
    compute_progress,
    first_met_day,
    full_progress,
    needs_full,
)


@dataclass
class Outcome:
    """What refreshing a goal changed: advice given, the goal, milestones reached."""

    advice: list[Advice] = field(default_factory=list)
    goal_changed: bool = False
    milestones_changed: list[Milestone] = field(default_factory=list)


def _changed_days(
    session: Session, patient_id: str, type_: str, after_seq: int, tz: tzinfo
) -> set[date] | None:
    """Local days of this type's readings changed after a feed position (None: unknown)."""
    head = feed.last_seq(session, patient_id)  # held by a refresh: no statement then
    times = readings_repository.changed_times(session, patient_id, type_, after_seq, head)
    if times is None:
        return None  # the feed was trimmed behind us: nothing tells what changed
    return {t.astimezone(tz).date() for t in times}


def local_day_facts(
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


def compute(
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
                facts = local_day_facts(session, patient.id, spec.measure.type, min(changed),
                               max(changed), tz)  # fmt: skip
                aggregated = aggregate_days(facts, spec.measure.components, tz)
                days = {d: aggregated.get(d, {}) for d in changed}
            return compute_progress(spec, days, today, prior), False
    w = spec.measure.window_days
    first = min(spec.start - timedelta(days=w - 1), today - timedelta(days=spec.keep_days - 1))
    facts = local_day_facts(session, patient.id, spec.measure.type, first, today, tz)
    return full_progress(spec, facts, tz, today), True


def refresh(
    session: Session,
    patient: Patient,
    goal: Goal,
    milestones: Sequence[Milestone],
    now: datetime,
    *,
    full: bool,
    out: Outgoing,
) -> Outcome:
    """Recompute one goal's progress; mark milestones reached; congratulate on active goals."""
    today = local_today(patient, now)
    spec = goal_spec(goal, milestones)
    previous: dict[str, Any] = dict(goal.progress or {})
    prior = None
    if not full and previous.get("state"):
        prior = ProgressState.from_stored(previous["state"])
    head = feed.lock_patient(session, patient.id)
    seq = head.last_seq
    result, was_full = compute(session, patient, spec, today, prior, previous.get("feed_seq"))
    progress: dict[str, Any] = progress_json(spec, result)
    progress.update(
        updated_at=now.isoformat(),
        achieved_at=previous.get("achieved_at"),
        milestones={
            m.key: {
                "reached_on": m.reached_on.isoformat() if m.reached_on else None,
                "percent": shown_percent(m.percent),
                "projected_date": m.projected_date.isoformat() if m.projected_date else None,
            }
            for m in result.milestones
        },
        state=result.state.to_dict(),
        feed_seq=seq,
        full_on=today.isoformat() if was_full else previous.get("full_on"),
    )
    outcome = Outcome()
    active = goal.lifecycle == Lifecycle.ACTIVE
    # Kept on the object as if loaded (no change for the unit of work to flush), and written
    # by one UPDATE below: a sync refreshes its goals every time, and the unit of work's flush
    # of the one changed column cost more than the statement (bench/progress_service.py).
    set_committed_value(goal, "progress", progress)  # the congratulations explain from it
    for milestone in milestones:
        if milestone.achieved_at is None and milestone.id in result.state.reached:
            milestone.achieved_at = now
            outcome.milestones_changed.append(milestone)
            if active and (advice := congratulate(session, patient, goal, milestone, now, out)):
                outcome.advice.append(advice)
    if result.status is Status.ACHIEVED and not previous.get("achieved_at"):
        # A new dict: what the milestones' congratulations read above stays as it was.
        progress = {**progress, "achieved_at": now.isoformat()}
        set_committed_value(goal, "progress", progress)
        if active and (advice := congratulate(session, patient, goal, None, now, out)):
            outcome.advice.append(advice)

    def visible(p: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in p.items() if k not in (*INTERNAL, "updated_at")}

    outcome.goal_changed = visible(previous) != visible(progress) or bool(
        outcome.milestones_changed
    )
    session.execute(_WRITE_PROGRESS, {"goal": goal.id, "written": progress})
    session.flush()  # the milestones reached, if any
    return outcome


_GOALS = cast(Table, Goal.__table__)
_WRITE_PROGRESS = (
    update(_GOALS).where(_GOALS.c.id == bindparam("goal")).values(progress=bindparam("written"))
)


def correct_goals(
    session: Session, patient: Patient, types: Iterable[str], now: datetime, out: Outgoing
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
    goals = [g for g in goals_in(session, patient.id, kept) if g.measure.get("type") in wanted]
    if not goals:
        return []
    milestones = milestones_of(session, [g.id for g in goals])
    advice: list[Advice] = []
    for goal in goals:
        outcome = refresh(session, patient, goal, milestones[goal.id], now, full=True, out=out)
        advice += outcome.advice
        progress = dict(goal.progress or {})
        reached = {k for k, m in (progress.get("milestones") or {}).items() if m["reached_on"]}
        changed = list(outcome.milestones_changed)
        for milestone in milestones[goal.id]:
            if milestone.achieved_at is not None and milestone.id not in reached:
                milestone.achieved_at = None
                changed.append(milestone)
                withdraw_congratulations(session, patient, goal, milestone, now, out)
        undone = (
            progress.get("achieved_at") is not None
            and _met_since_start(session, patient, goal, milestones[goal.id], now) is None
        )
        if undone:
            progress["achieved_at"] = None
            goal.progress = progress
            if goal.lifecycle == Lifecycle.ACHIEVED:
                goal.lifecycle = Lifecycle.ACTIVE.value
            goal.updated_at = now
            withdraw_congratulations(session, patient, goal, None, now, out)
        session.flush()
        if outcome.goal_changed or changed or undone:
            out.extend(announcement(goal, milestones[goal.id], changed))
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
    facts = local_day_facts(session, patient.id, spec.measure.type, first, today, tz)
    return first_met_day(spec, facts, tz, today)


def recompute_for_readings(
    session: Session, patient: Patient, types: Iterable[str], now: datetime, out: Outgoing
) -> list[Advice]:
    """Bring the open goals on these measurement types up to date after a sync batch."""
    wanted = set(types)
    if not wanted:
        return []
    advice: list[Advice] = []
    for goal, milestones in open_goals_with_milestones(session, patient.id):
        if goal.measure.get("type") not in wanted:
            continue
        outcome = refresh(session, patient, goal, milestones, now, full=False, out=out)
        advice += outcome.advice
        if outcome.goal_changed:
            out.extend(announcement(goal, milestones, outcome.milestones_changed))
    return advice
