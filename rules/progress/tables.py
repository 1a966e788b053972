"""Stage 2's arrays: day aggregates as columns over a range of days, window series over them,
and where a target is met.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from rules.progress.goals import COLUMNS, MICRO, Aggregate, DayColumns, Days, Direction, GoalSpec
from rules.progress.stats import meets

_NO_LOW = np.iinfo(np.int64).max
_NO_HIGH = np.iinfo(np.int64).min


@dataclass(frozen=True)
class _Table:
    """Dense per-day arrays of one component over [first, first + n)."""

    count: npt.NDArray[np.int64]
    total: npt.NDArray[np.int64]
    low: npt.NDArray[np.int64]
    high: npt.NDArray[np.int64]
    last: npt.NDArray[np.int64]


def build_table(days: Days, component: str, first: date, n: int) -> _Table:
    """Return a component's day aggregates as dense arrays over [first, first + n)."""
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


def extended_table(columns: DayColumns | None, n: int) -> _Table:
    """A state's columns as arrays, padded with empty days up to ``n``."""
    arrays = []
    for name in COLUMNS:
        values = np.zeros(n, np.int64)
        if columns is not None:
            stored = getattr(columns, name)[:n]
            values[: len(stored)] = stored
        arrays.append(values)
    return _Table(*arrays)


def update_table(table: _Table, days: Days, component: str, first: date) -> None:
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


def columns_from(table: _Table, start: int) -> DayColumns:
    """Return the table's columns from a day index on."""
    count, total, low, high, last = (
        tuple(getattr(table, name)[start:].tolist()) for name in COLUMNS
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


def window_series(table: _Table, aggregate: Aggregate, w: int) -> npt.NDArray[np.float64]:
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


def daily_values(table: _Table, aggregate: Aggregate) -> npt.NDArray[np.float64]:
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


def all_meet(values: Mapping[str, float], target: Mapping[str, float], spec: GoalSpec) -> bool:
    """Tell whether every component of the target is met."""
    t = spec.target
    return all(meets(values[c], target[c], t.direction, t.inclusive) for c in target)


def meeting_mask(
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


def first_true(mask: npt.NDArray[np.bool_], low: int, high: int) -> int | None:
    """Return the first index in [low, high] where the mask holds, or None."""
    low = max(low, 0)
    if high < low:
        return None
    hits = np.flatnonzero(mask[low : high + 1])
    return low + int(hits[0]) if len(hits) else None


def values_at(arrays: Mapping[str, npt.NDArray[np.float64]], index: int) -> dict[str, float] | None:
    """Return every component's value at a day index (None: any is missing)."""
    if index < 0:
        return None
    values = {c: float(a[index]) for c, a in arrays.items() if index < len(a)}
    if len(values) != len(arrays) or any(math.isnan(v) for v in values.values()):
        return None
    return values


__all__ = [
    "all_meet",
    "build_table",
    "columns_from",
    "daily_values",
    "extended_table",
    "first_true",
    "meeting_mask",
    "update_table",
    "values_at",
    "window_series",
]
