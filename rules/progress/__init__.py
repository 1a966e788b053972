"""Goal progress, pure: a goal's measure as a daily series; percent, trend, projection, status.

Plain types go in and out (dates, floats, mappings, frozen dataclasses); numpy and pandas work
inside. ``today`` is always a parameter. The semantics of days, windows, edges and ties:

* **Days** are the patient's local days in an IANA zone, DST-safe (a local day is 23, 24 or
  25 hours long). A reading counts on the local day of its ``time``; an interval reading
  (steps) on the day it starts.
* **Day aggregates.** Per local day and component the readings reduce to a
  :class:`DayAggregate`: count, total, lowest, highest and latest value, all in integer
  millionths of the canonical unit (values are rounded half-even to 6 places, as unit
  conversion does). Sums are therefore exact, and a full and an incremental recomputation give
  bit-identical numbers.
* **The series.** The measure's value on day *d* aggregates the ``window_days`` local days
  ending on *d*: ``mean`` is the mean of every reading in the window; ``min``/``max`` the
  lowest/highest reading; ``last`` the latest reading; ``sum`` is a per-day total (steps)
  averaged over the days of the window that have data. A window without readings has no value.
* **current** is the series on the as-of day: today, except for ``sum`` measures, where it is
  yesterday (today's total is not complete yet). None when that window holds no reading.
* **baseline** is the series on the goal's start day or, when that window is empty, the first
  value in the :data:`BASELINE_GRACE_DAYS` days after it (``baseline_date`` says which day).
* **Meeting a target**: ``below`` means value ≤ target, ``above`` value ≥ target; with
  ``inclusive=False`` the comparison is strict (home BP "under 135/85": 135 does not meet it).
  A goal on several components (systolic and diastolic) meets when every component does.
* **percent** = (current − baseline) / (target − baseline) × 100, clamped to 0–100: 0 at the
  baseline, exactly 100 at the target, monotone in the target's direction (beyond the target
  stays 100; moving away from it stays 0). When the baseline is already at or beyond the target
  it is 100 at or beyond the target, else 0. Several components: the lowest. Strictness does
  not enter the percent; a strict goal at exactly its target shows 100 but is not achieved.
* **trend per week**: the Theil–Sen slope (median of the pairwise slopes, robust to a stray
  reading) of the days' own values (day mean, low, high, latest or total) over the
  ``trend_days`` days ending on the as-of day, × 7. It needs at least
  :data:`MIN_TREND_POINTS` days with data spanning at least :data:`MIN_TREND_SPAN_DAYS` days;
  otherwise there is no trend (None). A slope of exactly 0 is a trend that leads nowhere.
* **projected date** = as-of day + ⌈(target − current) / slope per day⌉ days, only while the
  slope moves toward the target and the target is not met yet; None without a trend, when flat
  or moving away, once met, or beyond :data:`MAX_PROJECTION_DAYS`. Several components: the
  latest of them, None if any is None.
* **status**, the first that applies: ``insufficient_data`` (not started yet, no baseline, no
  current value); ``achieved`` (current meets the target); ``not_achieved`` (the due date has
  passed); ``insufficient_data`` (no trend can be computed: the data-sufficiency rule above);
  ``on_track`` (projected on or before the due date, or projected at all when there is no due
  date); ``at_risk`` (flat, moving away, or projected after the due date).
* **streaks**: consecutive local days from the start whose own value meets the target (steps ≥
  7,000 on that day); ``current`` ends on the as-of day (0 if that day does not meet it),
  ``longest`` is the longest so far. A day without data breaks a streak.
* **milestones** are reached on the first day from the start whose series value meets the
  milestone's target (with the goal's direction and strictness).
* **Incremental recomputation.** :class:`ProgressState` carries, for the last ``keep_days``
  days, each day's reading count and what the measure reads of it (total, low, high or
  latest), the baseline, the streak run and the longest streak before those days and on the
  as-of day, and the milestones reached. A full recomputation is an incremental one from an
  empty state (the same code), and an incremental one looks only at the changed days and the
  days since the state's as-of day (the trend excepted: its four weeks are read each time).
  :func:`compute_progress` with a state and the re-aggregated days
  that changed gives exactly what a full recomputation gives, unless :func:`needs_full` says
  the changed days reach behind the state (late data for an old day, a deletion on or before
  the baseline's or a milestone's day); the caller then recomputes in full. Everything here is
  derived from the data: a deletion can move a baseline or un-reach a milestone. (The service
  keeps a milestone's ``achieved_at`` once set, unless a reading entered in error was all
  that reached it; :func:`first_met_day` answers the same for the goal's own target.)

Modules, each one job: :mod:`~rules.progress.goals` (the types and constants),
:mod:`~rules.progress.days` (stage 1: readings to day aggregates),
:mod:`~rules.progress.compute` (stage 2: day aggregates to progress),
:mod:`~rules.progress.kept` (stage 2's days as plain lists: windows and streaks),
:mod:`~rules.progress.tables` (a chart's series as arrays) and
:mod:`~rules.progress.stats` (targets, percentages, trend and projection).
"""

from rules.progress.compute import (
    as_of_day,
    compute_progress,
    first_met_day,
    full_progress,
    measure_series,
    needs_full,
)
from rules.progress.days import aggregate_days
from rules.progress.goals import (
    BASELINE_GRACE_DAYS,
    MAX_PROJECTION_DAYS,
    MICRO,
    MIN_TREND_POINTS,
    MIN_TREND_SPAN_DAYS,
    PANDAS_MIN_READINGS,
    STATE_VERSION,
    TREND_DAYS,
    Aggregate,
    DayAggregate,
    DayColumns,
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
    Target,
)
from rules.progress.stats import meets, percent_complete, project, theil_sen

__all__ = [
    "BASELINE_GRACE_DAYS",
    "MAX_PROJECTION_DAYS",
    "MICRO",
    "MIN_TREND_POINTS",
    "MIN_TREND_SPAN_DAYS",
    "PANDAS_MIN_READINGS",
    "STATE_VERSION",
    "TREND_DAYS",
    "Aggregate",
    "DayAggregate",
    "DayColumns",
    "Days",
    "Direction",
    "GoalProgress",
    "GoalSpec",
    "Measure",
    "MilestoneProgress",
    "MilestoneSpec",
    "ProgressState",
    "SeriesPoint",
    "Status",
    "Streak",
    "Target",
    "aggregate_days",
    "as_of_day",
    "compute_progress",
    "first_met_day",
    "full_progress",
    "measure_series",
    "meets",
    "needs_full",
    "percent_complete",
    "project",
    "theil_sen",
]
