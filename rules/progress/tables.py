"""A measure's series as arrays: day aggregates as columns over a range of days and the window
series over them (a chart's days; progress itself reads :mod:`~rules.progress.kept`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from rules.progress.goals import MICRO, Aggregate, Days, GoalSpec
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
    "daily_values",
    "values_at",
    "window_series",
]
