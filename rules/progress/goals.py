"""The types of goal progress: a goal's measure, target and milestones, day aggregates, the
state kept between updates, and the progress computed; the constants of the method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple

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


# The members again as plain module constants, for the paths that run once per day of a goal:
# in Python 3.11 reading a member off its class goes through a descriptor (~150 ns, several
# times the comparison it serves).
MEAN, MIN, LAST, SUM = Aggregate.MEAN, Aggregate.MIN, Aggregate.LAST, Aggregate.SUM
BELOW, ABOVE = Direction.BELOW, Direction.ABOVE


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


# The results and the state are NamedTuples: immutable like the frozen dataclasses above, but
# built in a third of the time (a frozen dataclass sets each field through object.__setattr__),
# and an incremental update, ~120 µs, builds several of them (issue 17 §5, bench/progress.py).
class Streak(NamedTuple):
    """Consecutive days meeting the target: ending on the as-of day, and the longest."""

    current: int
    longest: int


class MilestoneProgress(NamedTuple):
    """Where one milestone stands."""

    key: str
    reached_on: date | None
    percent: float | None
    projected_date: date | None


STATE_VERSION = 3
"""The shape :meth:`ProgressState.to_dict` writes (version 1, unmarked, kept all five aggregates
of a day and no streak; version 2, the same shape as now, counted a day's steps from every
device, so a stored one is recomputed in full once, with one device a day)."""


class DayColumns(NamedTuple):
    """One component's days in a state: the reading count and what the measure reads of the day.

    ``values`` are in millionths: the total (mean, sum), the lowest (min), the highest (max) or
    the latest reading (last). Both are 0 on a day without data. (Plural names: a field named
    ``count`` would hide ``tuple.count``.)
    """

    counts: tuple[int, ...]
    values: tuple[int, ...]


class ProgressState(NamedTuple):
    """What an incremental recomputation carries forward (see the module docstring).

    ``columns`` hold the days from ``first_day`` to ``today``; ``run_before`` and
    ``longest_before`` the streak folded up to the day before ``first_day``; ``streak`` the
    streak on the as-of day of ``today`` (None: not known, walked again from ``first_day``).
    """

    today: date
    first_day: date
    columns: Mapping[str, DayColumns]
    baseline: Mapping[str, float] | None = None
    baseline_date: date | None = None
    run_before: int = 0
    longest_before: int = 0
    reached: Mapping[str, date] = MappingProxyType({})  # read-only: one shared default
    streak: Streak | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the state as JSON-ready plain types."""
        return {
            "version": STATE_VERSION,
            "today": self.today.isoformat(),
            "first_day": self.first_day.isoformat(),
            "columns": {
                c: {"count": cols.counts, "value": cols.values}  # tuples write as arrays
                for c, cols in self.columns.items()
            },
            "baseline": dict(self.baseline) if self.baseline is not None else None,
            "baseline_date": self.baseline_date.isoformat() if self.baseline_date else None,
            "run_before": self.run_before,
            "longest_before": self.longest_before,
            "reached": {k: v.isoformat() for k, v in sorted(self.reached.items())},
            "streak": [self.streak.current, self.streak.longest] if self.streak else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProgressState:
        """Read a state written by :meth:`to_dict` (ValueError: another version's shape)."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"a progress state of version {data.get('version', 1)}")
        baseline, baseline_date = data.get("baseline"), data.get("baseline_date")
        streak, reached = data.get("streak"), data.get("reached")
        day = date.fromisoformat
        # Positional, in the fields' order: keywords cost a NamedTuple twice the time.
        return cls(
            day(data["today"]),
            day(data["first_day"]),
            {
                c: DayColumns(tuple(cols["count"]), tuple(cols["value"]))
                for c, cols in data["columns"].items()
            },
            {k: float(v) for k, v in baseline.items()} if baseline else None,
            day(baseline_date) if baseline_date else None,
            int(data.get("run_before", 0)),
            int(data.get("longest_before", 0)),
            {k: day(v) for k, v in reached.items()} if reached else {},
            Streak(int(streak[0]), int(streak[1])) if streak else None,
        )

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> ProgressState | None:
        """Read a stored state, or None when it has an older shape (recompute in full then).

        An older state is not converted: a full recomputation is one read of the goal's days
        once per goal (the nightly job makes one for every open goal anyway) and gives the
        progress exactly (for a version-2 state, with a day's steps from one device), and a
        converter would be a second reading of the state to keep exact for a one-off.
        """
        if data.get("version") != STATE_VERSION:
            return None
        return cls.from_dict(data)


class GoalProgress(NamedTuple):
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


__all__ = [
    "Aggregate",
    "BASELINE_GRACE_DAYS",
    "DayAggregate",
    "DayColumns",
    "Days",
    "Direction",
    "GoalProgress",
    "GoalSpec",
    "MAX_PROJECTION_DAYS",
    "MICRO",
    "MIN_TREND_POINTS",
    "MIN_TREND_SPAN_DAYS",
    "Measure",
    "MilestoneProgress",
    "MilestoneSpec",
    "PANDAS_MIN_READINGS",
    "ProgressState",
    "STATE_VERSION",
    "SeriesPoint",
    "Status",
    "Streak",
    "TREND_DAYS",
    "Target",
]
