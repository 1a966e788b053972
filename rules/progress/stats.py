"""Small pure functions: whether a value meets a target, the percentage complete, the trend
(Theil–Sen) and its projection.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from rules.progress.goals import ABOVE, BELOW, MAX_PROJECTION_DAYS, Direction

Floats = npt.NDArray[np.float64]


def meets(value: float, target: float, direction: Direction, inclusive: bool = True) -> bool:
    """Tell whether a value meets a target (≤ / ≥, strict when not inclusive)."""
    if direction is BELOW:
        return value <= target if inclusive else value < target
    return value >= target if inclusive else value > target


def percent_complete(baseline: float, current: float, target: float, direction: Direction) -> float:
    """Return the way from baseline to target covered, 0–100 (exactly 100 at the target)."""
    at_or_beyond = current <= target if direction is BELOW else current >= target
    if at_or_beyond:
        return 100.0
    span = target - baseline
    if span == 0 or (span > 0) != (direction is ABOVE):
        return 0.0  # the baseline already met the target, and the current value does not
    return min(100.0, max(0.0, (current - baseline) / span * 100.0))


@functools.lru_cache(maxsize=256)
def _pairs(
    xs: tuple[float, ...], rows: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], Floats]:
    """Each pair i < j of the points in each of ``rows`` rows of ys laid end to end: the flat
    indices of y[j] and y[i], and the x distance x[j] − x[i].

    Cached by the xs themselves: a trend's days are mostly the same few patterns (four weeks
    without a gap), and building the pairs was half the cost of a slope.
    """
    x = np.array(xs, dtype=np.float64)
    i, j = np.triu_indices(len(x), k=1)
    dx = x[j] - x[i]
    if np.any(dx == 0):
        raise ValueError("x values must be distinct")
    if rows == 1:
        return j, i, dx
    offsets = np.arange(rows)[:, np.newaxis] * len(x)
    return (j + offsets).ravel(), (i + offsets).ravel(), np.tile(dx, rows)


def theil_sen_rows(
    xs: Sequence[float], rows: Sequence[Sequence[float] | Floats]
) -> list[float] | None:
    """Return the Theil–Sen slope of each row of ys over the same distinct xs, or None.

    One pass of numpy for all the rows: the components of a goal (systolic and diastolic) share
    their days, and on a few dozen points numpy's cost per call, not per element, is most of a
    slope's.
    """
    n = len(xs)
    for ys in rows:
        if len(ys) != n:
            raise ValueError("xs and ys differ in length")
    if n < 2:
        return None
    if not rows:
        return []
    j, i, dx = _pairs(tuple(xs), len(rows))
    # The rows end to end in one flat array, so that each step is one call on 1-D arrays:
    # take along an axis, and lists of per-row medians, cost several times a flat take.
    y = np.array(rows[0] if len(rows) == 1 else rows, dtype=np.float64).ravel()
    slopes = y.take(j)  # (y[j] − y[i]) / (x[j] − x[i]), row after row
    slopes -= y.take(i)
    slopes /= dx
    # The median by sorting in place: np.median does the same with five times the overhead,
    # and on a few hundred slopes a sort costs less than a partition at two places.
    pairs = len(slopes) // len(rows)
    k = pairs // 2
    if len(rows) == 1:
        slopes.sort()
        return [float(slopes[k]) if pairs % 2 else (float(slopes[k - 1]) + float(slopes[k])) / 2]
    per_row = slopes.reshape(len(rows), pairs)
    per_row.sort(axis=1)
    if pairs % 2:
        return [float(v) for v in per_row[:, k].tolist()]
    lower, upper = per_row[:, k - 1].tolist(), per_row[:, k].tolist()
    return [(a + b) / 2 for a, b in zip(lower, upper, strict=True)]


def theil_sen(xs: Sequence[float] | Floats, ys: Sequence[float] | Floats) -> float | None:
    """Return the Theil–Sen slope (median pairwise slope) of points with distinct x, or None."""
    if len(xs) != len(ys):
        raise ValueError("xs and ys differ in length")
    slopes = theil_sen_rows([float(x) for x in xs], [ys])
    return None if slopes is None else slopes[0]


def project(
    current: float, target: float, slope_per_week: float | None, as_of: date, direction: Direction
) -> date | None:
    """Return the day the target is reached at the current trend, or None (see the module)."""
    if slope_per_week is None or slope_per_week == 0:
        return None
    toward = slope_per_week < 0 if direction is BELOW else slope_per_week > 0
    if not toward or meets(current, target, direction):
        return None
    days = (target - current) / (slope_per_week / 7.0)
    if not math.isfinite(days) or days > MAX_PROJECTION_DAYS:
        return None
    return as_of + timedelta(days=math.ceil(days))


__all__ = ["meets", "percent_complete", "project", "theil_sen", "theil_sen_rows"]
