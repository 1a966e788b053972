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
* **Incremental recomputation.** :class:`ProgressState` carries the day aggregates of the last
  ``keep_days`` days, the baseline, the streak run and the longest streak before those days,
  and the milestones reached. :func:`compute_progress` with a state and the re-aggregated days
  that changed gives exactly what a full recomputation gives, unless :func:`needs_full` says
  the changed days reach behind the state (late data for an old day, a deletion on or before
  the baseline's or a milestone's day); the caller then recomputes in full. Everything here is
  derived from the data: a deletion can move a baseline or un-reach a milestone. (The service
  keeps a milestone's ``achieved_at`` once set, unless a reading entered in error was all
  that reached it; :func:`first_met_day` answers the same for the goal's own target.)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from rules.facts import ReadingFact

MICRO = 1_000_000
"""Day aggregates are integers in millionths of the canonical unit."""

TREND_DAYS = 28
"""The trend is the slope over this many days ending on the as-of day (four weeks)."""

MIN_TREND_POINTS = 3
"""Days with data the trend needs, at least."""

MIN_TREND_SPAN_DAYS = 7
"""Days between the first and the last of them, at least."""

BASELINE_GRACE_DAYS = 14
"""When the start day's window is empty, the baseline is the first value this many days after."""

MAX_PROJECTION_DAYS = 3650
"""A projection further away than ten years is no projection."""

PANDAS_MIN_READINGS = 2000
"""Aggregate with pandas from this many readings (a CGM series); fewer go through a plain loop.

pandas costs about 3 ms per call before it has done anything, more than the whole computation
for a week of blood pressures; both paths give identical aggregates (a property test says so).
"""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_NO_LOW = np.iinfo(np.int64).max
_NO_HIGH = np.iinfo(np.int64).min


class Aggregate(StrEnum):
    """How the readings of a window become one value."""

    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    LAST = "last"
    SUM = "sum"  # a per-day total, averaged over the days of the window with data


class Direction(StrEnum):
    """Which side of the target is good."""

    BELOW = "below"
    ABOVE = "above"


class Status(StrEnum):
    """Achievement status (FHIR Goal keeps it apart from the lifecycle)."""

    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    ACHIEVED = "achieved"
    NOT_ACHIEVED = "not_achieved"
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True)
class Measure:
    """What is measured: a type, how a window aggregates, the window, the components."""

    type: str
    aggregate: Aggregate
    window_days: int
    components: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.window_days < 1:
            raise ValueError("window_days must be at least 1")
        if not self.components:
            raise ValueError("a measure needs at least one component")


@dataclass(frozen=True)
class Target:
    """Target values per component (canonical unit), the good direction, strictness."""

    values: Mapping[str, float]
    direction: Direction
    inclusive: bool = True


@dataclass(frozen=True)
class MilestoneSpec:
    """A step on the way: its own target values and due date."""

    key: str
    values: Mapping[str, float]
    due: date | None = None


@dataclass(frozen=True)
class GoalSpec:
    """Everything the math needs to know about a goal."""

    measure: Measure
    target: Target
    start: date
    due: date | None = None
    milestones: tuple[MilestoneSpec, ...] = ()
    trend_days: int = TREND_DAYS

    def __post_init__(self) -> None:
        if set(self.target.values) != set(self.measure.components):
            raise ValueError("the target needs a value for every component of the measure")
        for milestone in self.milestones:
            if set(milestone.values) != set(self.measure.components):
                raise ValueError(f"milestone {milestone.key}: a value for every component")
        if self.trend_days < 2:
            raise ValueError("trend_days must be at least 2")

    @property
    def keep_days(self) -> int:
        """Return how many days of aggregates an incremental state keeps."""
        return max(self.trend_days, self.measure.window_days) + self.measure.window_days + 1


@dataclass(frozen=True)
class DayAggregate:
    """One component's readings on one local day, in integer millionths."""

    count: int
    total: int
    low: int
    high: int
    last: int

    def value(self, aggregate: Aggregate) -> float:
        """Return the day's own value: mean, low, high, latest or total."""
        if aggregate is Aggregate.MEAN:
            return self.total / (self.count * MICRO)
        micros = {
            Aggregate.MIN: self.low,
            Aggregate.MAX: self.high,
            Aggregate.LAST: self.last,
            Aggregate.SUM: self.total,
        }[aggregate]
        return micros / MICRO


Days = Mapping[date, Mapping[str, DayAggregate]]


@dataclass(frozen=True)
class Streak:
    """Consecutive days meeting the target: ending on the as-of day, and the longest."""

    current: int
    longest: int


@dataclass(frozen=True)
class MilestoneProgress:
    """Where one milestone stands."""

    key: str
    reached_on: date | None
    percent: float | None
    projected_date: date | None


_COLUMNS = ("count", "total", "low", "high", "last")


@dataclass(frozen=True)
class DayColumns:
    """One component's day aggregates on consecutive days (all 0 on a day without data)."""

    count: tuple[int, ...]
    total: tuple[int, ...]
    low: tuple[int, ...]
    high: tuple[int, ...]
    last: tuple[int, ...]


@dataclass(frozen=True)
class ProgressState:
    """What an incremental recomputation carries forward (see the module docstring).

    ``columns`` hold the day aggregates of every day from ``first_day`` to ``today``.
    """

    today: date
    first_day: date
    columns: Mapping[str, DayColumns]
    baseline: Mapping[str, float] | None = None
    baseline_date: date | None = None
    run_before: int = 0
    longest_before: int = 0
    reached: Mapping[str, date] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the state as JSON-ready plain types."""
        return {
            "today": self.today.isoformat(),
            "first_day": self.first_day.isoformat(),
            "columns": {
                c: {name: list(getattr(cols, name)) for name in _COLUMNS}
                for c, cols in self.columns.items()
            },
            "baseline": dict(self.baseline) if self.baseline is not None else None,
            "baseline_date": self.baseline_date.isoformat() if self.baseline_date else None,
            "run_before": self.run_before,
            "longest_before": self.longest_before,
            "reached": {k: v.isoformat() for k, v in sorted(self.reached.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProgressState:
        """Read a state written by :meth:`to_dict`."""
        baseline = data.get("baseline")
        return cls(
            today=date.fromisoformat(data["today"]),
            first_day=date.fromisoformat(data["first_day"]),
            columns={
                c: DayColumns(*(tuple(map(int, cols[name])) for name in _COLUMNS))
                for c, cols in data["columns"].items()
            },
            baseline={k: float(v) for k, v in baseline.items()} if baseline else None,
            baseline_date=(
                date.fromisoformat(data["baseline_date"]) if data.get("baseline_date") else None
            ),
            run_before=int(data.get("run_before", 0)),
            longest_before=int(data.get("longest_before", 0)),
            reached={k: date.fromisoformat(v) for k, v in data.get("reached", {}).items()},
        )


@dataclass(frozen=True)
class GoalProgress:
    """The progress of one goal as of one day, and the state to continue from."""

    status: Status
    reason: str  # why the status is insufficient_data ("" otherwise)
    as_of: date
    baseline: Mapping[str, float] | None
    baseline_date: date | None
    current: Mapping[str, float] | None
    percent: float | None
    trend_per_week: Mapping[str, float] | None
    projected_date: date | None
    streak: Streak
    milestones: tuple[MilestoneProgress, ...]
    state: ProgressState


@dataclass(frozen=True)
class SeriesPoint:
    """One local day of a measure: the series (windowed) value, the day's own value, count."""

    day: date
    value: Mapping[str, float] | None
    daily: Mapping[str, float] | None
    count: int


# --- small pure functions ---------------------------------------------------------------------


def meets(value: float, target: float, direction: Direction, inclusive: bool = True) -> bool:
    """Tell whether a value meets a target (≤ / ≥, strict when not inclusive)."""
    if direction is Direction.BELOW:
        return value <= target if inclusive else value < target
    return value >= target if inclusive else value > target


def percent_complete(baseline: float, current: float, target: float, direction: Direction) -> float:
    """Return the way from baseline to target covered, 0–100 (exactly 100 at the target)."""
    at_or_beyond = current <= target if direction is Direction.BELOW else current >= target
    if at_or_beyond:
        return 100.0
    span = target - baseline
    if span == 0 or (span > 0) != (direction is Direction.ABOVE):
        return 0.0  # the baseline already met the target, and the current value does not
    return min(100.0, max(0.0, (current - baseline) / span * 100.0))


@functools.lru_cache(maxsize=128)
def _pairs(n: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    i, j = np.triu_indices(n, k=1)
    return i, j


def theil_sen(
    xs: Sequence[float] | npt.NDArray[np.float64], ys: Sequence[float] | npt.NDArray[np.float64]
) -> float | None:
    """Return the Theil–Sen slope (median pairwise slope) of points with distinct x, or None."""
    if len(xs) != len(ys):
        raise ValueError("xs and ys differ in length")
    if len(xs) < 2:
        return None
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    i, j = _pairs(len(x))
    dx = x[j] - x[i]
    if np.any(dx == 0):
        raise ValueError("x values must be distinct")
    return float(np.median((y[j] - y[i]) / dx))


def project(
    current: float, target: float, slope_per_week: float | None, as_of: date, direction: Direction
) -> date | None:
    """Return the day the target is reached at the current trend, or None (see the module)."""
    if slope_per_week is None or slope_per_week == 0:
        return None
    toward = slope_per_week < 0 if direction is Direction.BELOW else slope_per_week > 0
    if not toward or meets(current, target, direction):
        return None
    days = (target - current) / (slope_per_week / 7.0)
    if not math.isfinite(days) or days > MAX_PROJECTION_DAYS:
        return None
    return as_of + timedelta(days=math.ceil(days))


# --- stage 1: readings to day aggregates ------------------------------------------------------


def _micro(value: Decimal) -> int:
    return int((value * MICRO).to_integral_value(rounding=ROUND_HALF_EVEN))


def aggregate_days(
    readings: Iterable[ReadingFact], components: Sequence[str], tz: tzinfo
) -> dict[date, dict[str, DayAggregate]]:
    """Reduce readings to day aggregates per local day and component (latest = by time, id)."""
    rows = sorted(readings, key=lambda r: (r.time, r.id))
    if len(rows) >= PANDAS_MIN_READINGS:
        return _aggregate_frame(rows, components, tz)
    return _aggregate_loop(rows, components, tz)


def _aggregate_loop(
    rows: Sequence[ReadingFact], components: Sequence[str], tz: tzinfo
) -> dict[date, dict[str, DayAggregate]]:
    acc: dict[date, dict[str, list[int]]] = {}
    for reading in rows:
        per_day = acc.setdefault(reading.time.astimezone(tz).date(), {})
        for component in components:
            raw = reading.values.get(component)
            if raw is None:
                continue
            m = _micro(raw)
            agg = per_day.get(component)
            if agg is None:
                per_day[component] = [1, m, m, m, m]
            else:
                agg[0] += 1
                agg[1] += m
                agg[2] = min(agg[2], m)
                agg[3] = max(agg[3], m)
                agg[4] = m
    return {
        day: {c: DayAggregate(*a) for c, a in comps.items()} for day, comps in acc.items() if comps
    }


def _aggregate_frame(
    rows: Sequence[ReadingFact], components: Sequence[str], tz: tzinfo
) -> dict[date, dict[str, DayAggregate]]:
    micros = np.fromiter(
        ((r.time - _EPOCH) // _MICROSECOND for r in rows), dtype=np.int64, count=len(rows)
    )
    local = pd.to_datetime(micros, unit="us", utc=True).tz_convert(tz).tz_localize(None)
    day_numbers = local.to_numpy().astype("datetime64[D]").astype(np.int64)
    out: dict[date, dict[str, DayAggregate]] = {}
    for component in components:
        present = [i for i, r in enumerate(rows) if component in r.values]
        if not present:
            continue
        frame = pd.DataFrame(
            {
                "day": day_numbers[present],
                "v": np.array([_micro(rows[i].values[component]) for i in present], np.int64),
            }
        )
        grouped = frame.groupby("day", sort=True)["v"].agg(["count", "sum", "min", "max", "last"])
        for number, n, total, low, high, last in grouped.itertuples(name=None):
            day = _EPOCH_DAY + timedelta(days=int(number))
            out.setdefault(day, {})[component] = DayAggregate(
                int(n), int(total), int(low), int(high), int(last)
            )
    return out


# --- stage 2: day aggregates to progress ------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    """Dense per-day arrays of one component over [first, first + n)."""

    count: npt.NDArray[np.int64]
    total: npt.NDArray[np.int64]
    low: npt.NDArray[np.int64]
    high: npt.NDArray[np.int64]
    last: npt.NDArray[np.int64]


def _table(days: Days, component: str, first: date, n: int) -> _Table:
    count = np.zeros(n, np.int64)
    total = np.zeros(n, np.int64)
    low = np.zeros(n, np.int64)
    high = np.zeros(n, np.int64)
    last = np.zeros(n, np.int64)
    for day, comps in days.items():
        index = (day - first).days
        agg = comps.get(component)
        if agg is None or not 0 <= index < n or agg.count <= 0:
            continue
        count[index], total[index] = agg.count, agg.total
        low[index], high[index], last[index] = agg.low, agg.high, agg.last
    return _Table(count, total, low, high, last)


def _extended(columns: DayColumns | None, n: int) -> _Table:
    """A state's columns as arrays, padded with empty days up to ``n``."""
    arrays = []
    for name in _COLUMNS:
        values = np.zeros(n, np.int64)
        if columns is not None:
            stored = getattr(columns, name)[:n]
            values[: len(stored)] = stored
        arrays.append(values)
    return _Table(*arrays)


def _update(table: _Table, days: Days, component: str, first: date) -> None:
    """Overwrite the days given (complete; an empty mapping clears a day) in place."""
    n = len(table.count)
    for day, comps in days.items():
        index = (day - first).days
        if not 0 <= index < n:
            continue
        agg = comps.get(component)
        if agg is None or agg.count <= 0:
            for array in (table.count, table.total, table.low, table.high, table.last):
                array[index] = 0
        else:
            table.count[index], table.total[index] = agg.count, agg.total
            table.low[index], table.high[index], table.last[index] = agg.low, agg.high, agg.last


def _columns(table: _Table, start: int) -> DayColumns:
    count, total, low, high, last = (
        tuple(getattr(table, name)[start:].tolist()) for name in _COLUMNS
    )
    return DayColumns(count, total, low, high, last)


def _windows(values: npt.NDArray[np.int64], w: int, fill: int) -> npt.NDArray[np.int64]:
    padded = np.concatenate([np.full(w - 1, fill, np.int64), values])
    return np.lib.stride_tricks.sliding_window_view(padded, w)


def _window_sums(values: npt.NDArray[np.int64], w: int) -> npt.NDArray[np.int64]:
    """Return, per day, the sum over the window of w days ending on it (exact in int64)."""
    sums = np.cumsum(values)
    out = sums.copy()
    out[w:] -= sums[:-w]
    return out


def _series(table: _Table, aggregate: Aggregate, w: int) -> npt.NDArray[np.float64]:
    """Return the windowed value of every day (nan where the window holds no reading)."""
    n = len(table.count)
    out = np.full(n, np.nan)
    counts = _window_sums(table.count, w)
    has = counts > 0
    if aggregate is Aggregate.MEAN:
        out[has] = _window_sums(table.total, w)[has] / (counts[has] * MICRO)
    elif aggregate is Aggregate.SUM:  # the mean of the day totals of the days with data
        days_with_data = _window_sums((table.count > 0).astype(np.int64), w)
        out[has] = _window_sums(table.total, w)[has] / (days_with_data[has] * MICRO)
    elif aggregate is Aggregate.LAST:
        latest = np.maximum.accumulate(np.where(table.count > 0, np.arange(n), -1))
        out[has] = table.last[latest[has]] / MICRO
    else:
        empty = table.count == 0
        if aggregate is Aggregate.MIN:
            lows = np.where(empty, _NO_LOW, table.low)
            out[has] = _windows(lows, w, _NO_LOW).min(axis=1)[has] / MICRO
        else:
            highs = np.where(empty, _NO_HIGH, table.high)
            out[has] = _windows(highs, w, _NO_HIGH).max(axis=1)[has] / MICRO
    return out


def _daily(table: _Table, aggregate: Aggregate) -> npt.NDArray[np.float64]:
    """Return each day's own value (nan without data)."""
    out = np.full(len(table.count), np.nan)
    has = table.count > 0
    if aggregate is Aggregate.MEAN:
        out[has] = table.total[has] / (table.count[has] * MICRO)
    else:
        micros = {
            Aggregate.MIN: table.low,
            Aggregate.MAX: table.high,
            Aggregate.LAST: table.last,
            Aggregate.SUM: table.total,
        }[aggregate]
        out[has] = micros[has] / MICRO
    return out


def _all_meet(values: Mapping[str, float], target: Mapping[str, float], spec: GoalSpec) -> bool:
    t = spec.target
    return all(meets(values[c], target[c], t.direction, t.inclusive) for c in target)


def _meeting(
    arrays: Mapping[str, npt.NDArray[np.float64]], target: Mapping[str, float], spec: GoalSpec
) -> npt.NDArray[np.bool_]:
    """Return, per day, whether every component has a value that meets its target."""
    t = spec.target
    out = np.ones(len(next(iter(arrays.values()))), dtype=bool)
    for component, values in arrays.items():
        goal = target[component]
        if t.direction is Direction.BELOW:
            ok = values <= goal if t.inclusive else values < goal
        else:
            ok = values >= goal if t.inclusive else values > goal
        out &= ok & ~np.isnan(values)  # nan compares False anyway; said for the reader
    return out


def _first(mask: npt.NDArray[np.bool_], low: int, high: int) -> int | None:
    """Return the first index in [low, high] where the mask holds, or None."""
    low = max(low, 0)
    if high < low:
        return None
    hits = np.flatnonzero(mask[low : high + 1])
    return low + int(hits[0]) if len(hits) else None


def _at(arrays: Mapping[str, npt.NDArray[np.float64]], index: int) -> dict[str, float] | None:
    if index < 0:
        return None
    values = {c: float(a[index]) for c, a in arrays.items() if index < len(a)}
    if len(values) != len(arrays) or any(math.isnan(v) for v in values.values()):
        return None
    return values


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
        tables = {c: _table(days, c, first, n) for c in measure.components}
        run, longest = 0, 0
        baseline, baseline_date = None, None
        reached: dict[str, date] = {}
    else:
        if prior.today > today:
            raise ValueError("a state from a later day cannot be continued")
        first = prior.first_day
        n = (today - first).days + 1
        tables = {c: _extended(prior.columns.get(c), n) for c in measure.components}
        for component, table in tables.items():
            _update(table, days, component, first)
        run, longest = prior.run_before, prior.longest_before
        baseline, baseline_date = prior.baseline, prior.baseline_date
        reached = dict(prior.reached)

    series = {c: _series(t, measure.aggregate, w) for c, t in tables.items()}
    daily = {c: _daily(t, measure.aggregate) for c, t in tables.items()}
    as_of = as_of_day(measure, today)
    as_of_index = (as_of - first).days
    start_index = (spec.start - first).days
    new_first = max(first, keep_first)
    boundary = (new_first - first).days - 1  # the last index folded into the next state

    # Streaks, from the start, on each day's own value; the fold at the boundary is kept.
    met = _meeting(daily, target.values, spec).tolist()
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
        found = _first(has_value, valid_from, min(as_of_index, start_index + BASELINE_GRACE_DAYS))
        if found is not None:
            baseline, baseline_date = _at(series, found), first + timedelta(days=found)

    # Milestones: the first day from the start whose series value meets them.
    for milestone in spec.milestones:
        if milestone.key not in reached:
            mask = _meeting(series, milestone.values, spec)
            found = _first(mask, valid_from, as_of_index)
            if found is not None:
                reached[milestone.key] = first + timedelta(days=found)

    current = _at(series, as_of_index)
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
        columns={c: _columns(t, boundary + 1) for c, t in tables.items()},
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
    if _all_meet(current, spec.target.values, spec):
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
    tables = {c: _table(days, c, table_first, n) for c in measure.components}
    series = {c: _series(t, measure.aggregate, w) for c, t in tables.items()}
    daily = {c: _daily(t, measure.aggregate) for c, t in tables.items()}
    counts = np.sum([t.count for t in tables.values()], axis=0)
    return [
        SeriesPoint(
            day=table_first + timedelta(days=index),
            value=_at(series, index),
            daily=_at(daily, index),
            count=int(counts[index]),
        )
        for index in range(w - 1, n)
    ]


__all__ = [
    "BASELINE_GRACE_DAYS",
    "MAX_PROJECTION_DAYS",
    "MICRO",
    "MIN_TREND_POINTS",
    "MIN_TREND_SPAN_DAYS",
    "PANDAS_MIN_READINGS",
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
