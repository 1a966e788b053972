"""Stage 2: day aggregates to progress (incremental or full), and a measure's series."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, timedelta, tzinfo

import numpy as np

from rules.facts import ReadingFact
from rules.progress.days import aggregate_days
from rules.progress.goals import (
    BASELINE_GRACE_DAYS,
    MIN_TREND_POINTS,
    MIN_TREND_SPAN_DAYS,
    SUM,
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
from rules.progress.kept import KeptDays, walk_streak
from rules.progress.stats import meets, percent_complete, project, theil_sen_rows
from rules.progress.tables import (
    all_meet,
    build_table,
    daily_values,
    values_at,
    window_series,
)


def as_of_day(measure: Measure, today: date) -> date:
    """Return the day whose value is current: today, or yesterday for per-day totals."""
    return today - timedelta(days=1) if measure.aggregate is SUM else today


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
    # A full recomputation is an incremental one from an empty state, so the two run the same
    # code and agree to the bit. ``walked`` is the last day whose streak, baseline and
    # milestones the state has decided; only days after it or changed need a look.
    if prior is None:
        first = min(spec.start - timedelta(days=w - 1), keep_first)
        n = (today - first).days + 1
        kept = KeptDays.empty(spec, n)
        run_before, longest_before = 0, 0
        baseline, baseline_date = None, None
        reached: dict[str, date] = {}
        head: Streak | None = None
        walked = -1
    else:
        if prior.today > today:
            raise ValueError("a state from a later day cannot be continued")
        first = prior.first_day
        n = (today - first).days + 1
        kept = KeptDays.from_columns(spec, prior.columns, n)
        run_before, longest_before = prior.run_before, prior.longest_before
        baseline, baseline_date = prior.baseline, prior.baseline_date
        reached = dict(prior.reached)
        head = prior.streak
        walked = (as_of_day(measure, prior.today) - first).days
    lowest = kept.put(days, first.toordinal())
    changed_from = walked + 1 if lowest is None else min(walked + 1, lowest)

    as_of = as_of_day(measure, today)
    as_of_index = (as_of - first).days  # ≥ 0: first ≤ keep_first < as_of
    start_index = (spec.start - first).days
    new_first = max(first, keep_first)
    boundary = (new_first - first).days - 1  # the last index folded into the next state

    # Streaks, from the start, on each day's own value; the fold at the boundary is kept. The
    # state's streak on its as-of day goes on over the days after it, unless a changed day
    # lies on or before that day: then the kept days are walked again from the fold.
    fold = (run_before, longest_before) if boundary < 0 else None
    if head is None or changed_from <= walked:
        run, longest, folded = walk_streak(
            kept, spec, start_index, range(as_of_index + 1), run_before, longest_before, boundary
        )
    else:
        folded = None
        if 0 <= boundary <= walked:
            _, _, folded = walk_streak(
                kept, spec, start_index, range(boundary + 1), run_before, longest_before, boundary
            )
        run, longest, on_head = walk_streak(
            kept, spec, start_index, range(walked + 1, as_of_index + 1), head.current,
            head.longest, boundary,
        )  # fmt: skip
        folded = folded or on_head
    fold = fold or folded
    assert fold is not None  # the boundary lies before the as-of day, so a walk passed it
    streak = Streak(current=run, longest=longest)

    # Baseline: the start day's window, else the first value in the grace days after it. Days
    # before ``changed_from`` were looked at with the same data already.
    scan_from = max(start_index, w - 1, 0, changed_from)
    if baseline is None:
        for index in range(scan_from, min(as_of_index, start_index + BASELINE_GRACE_DAYS) + 1):
            found = kept.series(index)
            if found is not None:
                baseline, baseline_date = found, first + timedelta(days=index)
                break

    # Milestones: the first day from the start whose series value meets them.
    direction, inclusive = target.direction, target.inclusive
    for milestone in spec.milestones:
        if milestone.key in reached:
            continue
        for index in range(scan_from, as_of_index + 1):
            values = kept.series(index)
            if values is not None and all(
                meets(values[c], milestone.values[c], direction, inclusive) for c in values
            ):
                reached[milestone.key] = first + timedelta(days=index)
                break

    current = kept.series(as_of_index)
    trend = _trend(kept, as_of_index, spec.trend_days)
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
        columns=kept.columns(boundary + 1),
        baseline=baseline,
        baseline_date=baseline_date,
        run_before=fold[0],
        longest_before=fold[1],
        reached=reached,
        streak=streak,
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


def _trend(kept: KeptDays, as_of_index: int, trend_days: int) -> dict[str, float] | None:
    low = max(0, as_of_index - trend_days + 1)
    # Components with data on the same days (systolic and diastolic) share one pass of numpy.
    groups: dict[tuple[int, ...], list[tuple[str, list[float]]]] = {}
    for component in kept.components:
        xs, ys = kept.daily_points(component, low, as_of_index)
        if len(xs) < MIN_TREND_POINTS or xs[-1] - xs[0] < MIN_TREND_SPAN_DAYS:
            return None
        groups.setdefault(xs, []).append((component, ys))
    slopes: dict[str, float] = {}
    for days, members in groups.items():
        found = theil_sen_rows(days, [ys for _, ys in members])
        if found is None:
            return None
        for (component, _), slope in zip(members, found, strict=True):
            slopes[component] = slope * 7.0
    # In the measure's order of components (one component: already so).
    return slopes if len(slopes) == 1 else {c: slopes[c] for c in kept.components}


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
