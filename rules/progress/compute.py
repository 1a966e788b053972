"""Stage 2: day aggregates to progress (incremental or full), and a measure's series."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, timedelta, tzinfo

import numpy as np
import numpy.typing as npt

from rules.facts import ReadingFact
from rules.progress.days import aggregate_days
from rules.progress.goals import (
    BASELINE_GRACE_DAYS,
    MIN_TREND_POINTS,
    MIN_TREND_SPAN_DAYS,
    Aggregate,
    Days,
    Direction,
    GoalProgress,
    GoalSpec,
    Measure,
    MilestoneProgress,
    MilestoneSpec,
    ProgressState,
    SeriesPoint,
    Status,
    Streak,
)
from rules.progress.stats import meets, percent_complete, project, theil_sen
from rules.progress.tables import (
    all_meet,
    build_table,
    columns_from,
    daily_values,
    extended_table,
    first_true,
    meeting_mask,
    update_table,
    values_at,
    window_series,
)


def as_of_day(measure: Measure, today: date) -> date:
    """Return the day whose value is current: today, or yesterday for per-day totals."""
    return today - timedelta(days=1) if measure.aggregate is Aggregate.SUM else today


def needs_full(spec: GoalSpec, state: ProgressState | None, changed_days: Iterable[date]) -> bool:
    """Tell whether changes on these days need a full recomputation rather than the state.

    They do when there is no state, when a changed day lies in a window that reaches before
    the state's first day, or on or before a day the state has already decided on (the
    baseline's day, a milestone's day).
    """
    if state is None:
        return True
    horizon = state.first_day + timedelta(days=spec.measure.window_days - 1)
    decided = [d for d in (state.baseline_date, *state.reached.values()) if d is not None]
    latest_decided = max(decided) if decided else None
    return any(
        day < horizon or (latest_decided is not None and day <= latest_decided)
        for day in changed_days
    )


def compute_progress(
    spec: GoalSpec, days: Days, today: date, prior: ProgressState | None = None
) -> GoalProgress:
    """Compute a goal's progress as of ``today`` (see the module docstring).

    Without ``prior``, ``days`` must hold every day from ``start − window_days + 1`` (and at
    least the last ``keep_days``) to today: a full recomputation. With ``prior``, ``days``
    holds the days whose readings changed since, each complete (an empty mapping for a day
    whose readings were all deleted); days before ``prior.first_day`` are ignored.
    """
    measure, target = spec.measure, spec.target
    w = measure.window_days
    keep_first = today - timedelta(days=spec.keep_days - 1)
    if prior is None:
        first = min(spec.start - timedelta(days=w - 1), keep_first)
        n = (today - first).days + 1
        tables = {c: build_table(days, c, first, n) for c in measure.components}
        run, longest = 0, 0
        baseline, baseline_date = None, None
        reached: dict[str, date] = {}
    else:
        if prior.today > today:
            raise ValueError("a state from a later day cannot be continued")
        first = prior.first_day
        n = (today - first).days + 1
        tables = {c: extended_table(prior.columns.get(c), n) for c in measure.components}
        for component, table in tables.items():
            update_table(table, days, component, first)
        run, longest = prior.run_before, prior.longest_before
        baseline, baseline_date = prior.baseline, prior.baseline_date
        reached = dict(prior.reached)

    series = {c: window_series(t, measure.aggregate, w) for c, t in tables.items()}
    daily = {c: daily_values(t, measure.aggregate) for c, t in tables.items()}
    as_of = as_of_day(measure, today)
    as_of_index = (as_of - first).days
    start_index = (spec.start - first).days
    new_first = max(first, keep_first)
    boundary = (new_first - first).days - 1  # the last index folded into the next state

    # Streaks, from the start, on each day's own value; the fold at the boundary is kept.
    met = meeting_mask(daily, target.values, spec).tolist()
    run_next, longest_next = run, longest  # kept as they are when nothing is folded
    for index in range(max(0, as_of_index + 1)):
        if index < start_index:
            run = 0
        else:
            run = run + 1 if met[index] else 0
            longest = max(longest, run)
        if index == boundary:
            run_next, longest_next = run, longest
    streak = Streak(current=run if as_of_index >= 0 else 0, longest=longest)

    # Baseline: the start day's window, else the first value in the grace days after it.
    valid_from = max(start_index, w - 1, 0)
    if baseline is None:
        has_value = np.logical_and.reduce([~np.isnan(a) for a in series.values()])
        found = first_true(
            has_value, valid_from, min(as_of_index, start_index + BASELINE_GRACE_DAYS)
        )
        if found is not None:
            baseline, baseline_date = values_at(series, found), first + timedelta(days=found)

    # Milestones: the first day from the start whose series value meets them.
    for milestone in spec.milestones:
        if milestone.key not in reached:
            mask = meeting_mask(series, milestone.values, spec)
            found = first_true(mask, valid_from, as_of_index)
            if found is not None:
                reached[milestone.key] = first + timedelta(days=found)

    current = values_at(series, as_of_index)
    trend = _trend(daily, as_of_index, spec.trend_days)
    percent = projected = None
    if baseline is not None and current is not None:
        percent = _percent(baseline, current, target.values, target.direction)
    if current is not None:
        projected = _projection(current, target.values, trend, as_of, target.direction)
    status, reason = _status(spec, today, as_of, baseline, current, trend, projected)

    milestones = tuple(
        MilestoneProgress(
            key=m.key,
            reached_on=reached.get(m.key),
            percent=(
                _percent(baseline, current, m.values, target.direction)
                if baseline is not None and current is not None
                else None
            ),
            projected_date=(
                None
                if current is None or m.key in reached
                else _projection(current, m.values, trend, as_of, target.direction)
            ),
        )
        for m in spec.milestones
    )
    state = ProgressState(
        today=today,
        first_day=new_first,
        columns={c: columns_from(t, boundary + 1) for c, t in tables.items()},
        baseline=baseline,
        baseline_date=baseline_date,
        run_before=run_next,
        longest_before=longest_next,
        reached=reached,
    )
    return GoalProgress(
        status=status,
        reason=reason,
        as_of=as_of,
        baseline=baseline,
        baseline_date=baseline_date,
        current=current,
        percent=percent,
        trend_per_week=trend,
        projected_date=projected,
        streak=streak,
        milestones=milestones,
        state=state,
    )


def _trend(
    daily: Mapping[str, npt.NDArray[np.float64]], as_of_index: int, trend_days: int
) -> dict[str, float] | None:
    low = max(0, as_of_index - trend_days + 1)
    slopes: dict[str, float] = {}
    for component, values in daily.items():
        window = values[low : as_of_index + 1] if as_of_index >= 0 else values[:0]
        xs = np.flatnonzero(~np.isnan(window))
        if len(xs) < MIN_TREND_POINTS or xs[-1] - xs[0] < MIN_TREND_SPAN_DAYS:
            return None
        slope = theil_sen(xs.astype(np.float64), window[xs])
        if slope is None:
            return None
        slopes[component] = slope * 7.0
    return slopes


def _percent(
    baseline: Mapping[str, float],
    current: Mapping[str, float],
    target: Mapping[str, float],
    direction: Direction,
) -> float:
    return min(percent_complete(baseline[c], current[c], target[c], direction) for c in target)


def _projection(
    current: Mapping[str, float],
    target: Mapping[str, float],
    trend: Mapping[str, float] | None,
    as_of: date,
    direction: Direction,
) -> date | None:
    if trend is None:
        return None
    latest: date | None = None
    for component, value in target.items():
        if meets(current[component], value, direction):
            continue
        day = project(current[component], value, trend[component], as_of, direction)
        if day is None:
            return None
        latest = day if latest is None else max(latest, day)
    return latest


def _status(
    spec: GoalSpec,
    today: date,
    as_of: date,
    baseline: Mapping[str, float] | None,
    current: Mapping[str, float] | None,
    trend: Mapping[str, float] | None,
    projected: date | None,
) -> tuple[Status, str]:
    if spec.start > as_of:
        return Status.INSUFFICIENT_DATA, "not_started"
    if baseline is None:
        return Status.INSUFFICIENT_DATA, "no_baseline"
    if current is None:
        return Status.INSUFFICIENT_DATA, "no_current_value"
    if all_meet(current, spec.target.values, spec):
        return Status.ACHIEVED, ""
    if spec.due is not None and today > spec.due:
        return Status.NOT_ACHIEVED, ""
    if trend is None:
        return Status.INSUFFICIENT_DATA, "no_trend"
    if projected is not None and (spec.due is None or projected <= spec.due):
        return Status.ON_TRACK, ""
    return Status.AT_RISK, ""


def full_progress(
    spec: GoalSpec, readings: Iterable[ReadingFact], tz: tzinfo, today: date
) -> GoalProgress:
    """Recompute a goal's progress from all its readings (from ``start − window + 1``)."""
    return compute_progress(spec, aggregate_days(readings, spec.measure.components, tz), today)


def first_met_day(
    spec: GoalSpec, readings: Iterable[ReadingFact], tz: tzinfo, today: date
) -> date | None:
    """Return the first day from the start whose series value meets the goal's target.

    The goal's own target read as a milestone: None when no day up to the as-of day meets
    it (after a correction: the goal was achieved only through readings now gone).
    """
    key = "\0goal"  # no milestone key can hold a NUL
    probe = replace(spec, milestones=(MilestoneSpec(key=key, values=spec.target.values),))
    return full_progress(probe, readings, tz, today).state.reached.get(key)


def measure_series(measure: Measure, days: Days, first: date, last: date) -> list[SeriesPoint]:
    """Return the measure on each local day of [first, last] (days from first − window + 1)."""
    w = measure.window_days
    table_first = first - timedelta(days=w - 1)
    n = (last - table_first).days + 1
    if n <= 0:
        return []
    tables = {c: build_table(days, c, table_first, n) for c in measure.components}
    series = {c: window_series(t, measure.aggregate, w) for c, t in tables.items()}
    daily = {c: daily_values(t, measure.aggregate) for c, t in tables.items()}
    counts = np.sum([t.count for t in tables.values()], axis=0)
    return [
        SeriesPoint(
            day=table_first + timedelta(days=index),
            value=values_at(series, index),
            daily=values_at(daily, index),
            count=int(counts[index]),
        )
        for index in range(w - 1, n)
    ]


__all__ = [
    "as_of_day",
    "compute_progress",
    "first_met_day",
    "full_progress",
    "measure_series",
    "needs_full",
]
