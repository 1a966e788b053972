"""Stage 2's days as plain lists: a goal's days from a first day, their own and window values,
and the streak walked over them.

Plain Python rather than numpy: a recomputation after a day's readings reads a handful of days
(the new day's window, the trend's four weeks), and numpy's cost per call on arrays of a few
dozen days was most of it. The numbers are those of :mod:`~rules.progress.tables` (which draws
a chart's series with numpy): the same integer sums divided once, and an integer below 2**53
(any sum of readings in millionths) converts to a float exactly, so numpy's int64 division
and Python's give the same float.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter

from rules.progress.goals import (
    LAST,
    MEAN,
    MICRO,
    MIN,
    SUM,
    Aggregate,
    DayAggregate,
    DayColumns,
    Days,
    GoalSpec,
)
from rules.progress.stats import meets

PICK: Mapping[Aggregate, Callable[[DayAggregate], int]] = {
    Aggregate.MEAN: attrgetter("total"),
    Aggregate.SUM: attrgetter("total"),
    Aggregate.MIN: attrgetter("low"),
    Aggregate.MAX: attrgetter("high"),
    Aggregate.LAST: attrgetter("last"),
}
"""What a state keeps of a day's aggregate for each kind of measure (see DayColumns)."""


class KeptDays:
    """A goal's days from index 0 on: per component, the reading count and the kept value."""

    __slots__ = ("_cache", "aggregate", "components", "counts", "values", "w")

    def __init__(
        self, spec: GoalSpec, counts: dict[str, list[int]], values: dict[str, list[int]]
    ) -> None:
        self.aggregate = spec.measure.aggregate
        self.w = spec.measure.window_days
        self.components = spec.measure.components
        self.counts = counts
        self.values = values
        self._cache: dict[int, dict[str, float] | None] = {}

    @classmethod
    def empty(cls, spec: GoalSpec, n: int) -> KeptDays:
        """Return n days without data."""
        components = spec.measure.components
        return cls(spec, {c: [0] * n for c in components}, {c: [0] * n for c in components})

    @classmethod
    def from_columns(cls, spec: GoalSpec, columns: Mapping[str, DayColumns], n: int) -> KeptDays:
        """Return a state's columns padded with days without data up to n days."""
        counts: dict[str, list[int]] = {}
        values: dict[str, list[int]] = {}
        for c in spec.measure.components:
            stored = columns.get(c)
            count = list(stored.counts) if stored is not None else []
            value = list(stored.values) if stored is not None else []
            count += [0] * (n - len(count))  # the days since the state's, without data yet
            value += [0] * (n - len(value))
            del count[n:], value[n:]
            counts[c], values[c] = count, value
        return cls(spec, counts, values)

    def put(self, days: Days, first_ordinal: int) -> int | None:
        """Overwrite the days given (complete; an empty mapping clears a day); the first index.

        Days outside the kept range are ignored. Returns the lowest index written, or None.
        """
        pick = PICK[self.aggregate]
        n = len(next(iter(self.counts.values())))
        lowest: int | None = None
        for day, comps in days.items():
            index = day.toordinal() - first_ordinal
            if not 0 <= index < n:
                continue
            lowest = index if lowest is None else min(lowest, index)
            for c in self.components:
                agg = comps.get(c)
                if agg is None or agg.count <= 0:
                    self.counts[c][index] = self.values[c][index] = 0
                else:
                    self.counts[c][index] = agg.count
                    self.values[c][index] = pick(agg)
        self._cache.clear()
        return lowest

    def columns(self, start: int) -> dict[str, DayColumns]:
        """Return the days from an index on as a state's columns."""
        return {
            c: DayColumns(tuple(self.counts[c][start:]), tuple(self.values[c][start:]))
            for c in self.components
        }

    def daily(self, component: str, index: int) -> float | None:
        """Return a day's own value (mean, low, high, latest or total), None without data."""
        count = self.counts[component][index]
        if not count:
            return None
        if self.aggregate is MEAN:
            return self.values[component][index] / (count * MICRO)
        return self.values[component][index] / MICRO

    def daily_points(
        self, component: str, low: int, high: int
    ) -> tuple[tuple[int, ...], list[float]]:
        """Return the days in [low, high] with data (as offsets from low) and their values."""
        counts = self.counts[component][low : high + 1]
        values = self.values[component][low : high + 1]
        if 0 in counts:
            xs = tuple(x for x, count in enumerate(counts) if count)
            counts, values = [counts[x] for x in xs], [values[x] for x in xs]
        else:  # every day has data, the usual case
            xs = _offsets(len(counts))
        if self.aggregate is MEAN:
            return xs, [v / (c * MICRO) for c, v in zip(counts, values, strict=True)]
        return xs, [v / MICRO for v in values]

    def meets_on(self, index: int, target: Mapping[str, float], spec: GoalSpec) -> bool:
        """Tell whether the day's own value meets the target in every component."""
        t, mean = spec.target, self.aggregate is MEAN
        for c in self.components:
            count = self.counts[c][index]
            if not count:
                return False
            micros = self.values[c][index]
            value = micros / (count * MICRO) if mean else micros / MICRO  # as daily()
            if not meets(value, target[c], t.direction, t.inclusive):
                return False
        return True

    def series(self, index: int) -> dict[str, float] | None:
        """Return every component's value over the window ending on a day (None: any empty).

        A window that would reach before index 0 is cut there, as the series' tables are.
        """
        if index in self._cache:
            return self._cache[index]
        low, high = max(0, index - self.w + 1), index + 1
        out: dict[str, float] = {}
        for c in self.components:
            value = _window_value(self.aggregate, self.counts[c], self.values[c], low, high)
            if value is None:
                self._cache[index] = None
                return None
            out[c] = value
        self._cache[index] = out
        return out


@functools.lru_cache(maxsize=64)
def _offsets(n: int) -> tuple[int, ...]:
    """0 … n − 1, the same tuple each time (the trend's usual days, a key of its pairs' cache)."""
    return tuple(range(n))


def _window_value(
    aggregate: Aggregate, counts: Sequence[int], values: Sequence[int], low: int, high: int
) -> float | None:
    if aggregate is MEAN:
        readings = sum(counts[low:high])
        return sum(values[low:high]) / (readings * MICRO) if readings else None
    if aggregate is SUM:  # the mean of the day totals of the days with data
        days_with_data = high - low - counts[low:high].count(0)
        return sum(values[low:high]) / (days_with_data * MICRO) if days_with_data else None
    if aggregate is LAST:
        for k in range(high - 1, low - 1, -1):
            if counts[k]:
                return values[k] / MICRO
        return None
    present = [v for c, v in zip(counts[low:high], values[low:high], strict=True) if c]
    if not present:
        return None
    return (min(present) if aggregate is MIN else max(present)) / MICRO


def walk_streak(
    kept: KeptDays,
    spec: GoalSpec,
    start_index: int,
    days: range,
    run: int,
    longest: int,
    fold_at: int,
) -> tuple[int, int, tuple[int, int] | None]:
    """Carry a streak over the days of a range: (run, longest, the two on day fold_at or None).

    Days before the start index hold no streak; a day meeting the target lengthens the run,
    any other (a day without data too) ends it.
    """
    target = spec.target.values
    fold = None
    for index in days:
        if index < start_index:
            run = 0
        else:
            run = run + 1 if kept.meets_on(index, target, spec) else 0
            longest = max(longest, run)
        if index == fold_at:
            fold = (run, longest)
    return run, longest, fold


__all__ = ["PICK", "KeptDays", "walk_streak"]
