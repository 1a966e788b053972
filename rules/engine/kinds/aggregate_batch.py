"""Whether a window aggregate holds at many anchors at once, in numpy, where that is exact.

A late week of readings re-checks every anchor of the week (ten thousand in a dense one), and
most of them do not fire. Asked one by one, each anchor's window cost some twenty Python calls
(its start, its range, its rows, its units, its sum): a fifth of such a sync. Here the windows
of all anchors are found with one ``searchsorted``, their sums from integer prefix sums and
their least and greatest values from a sparse table, and :meth:`AggregateCheck.holds` reads
the answer. A firing anchor is still assessed on its own, since only a firing is explained.

The answer is the scalar assessment's to the bit, or none: values and sums are exact integers
at one exponent (a mean holds when ``total <op> threshold × n``, compared without division, as
the scalar path does), and whatever this does not cover exactly is left to the scalar path:
readings in more than one unit, a value or threshold too large for 62 bits, a window whose
first dates are dropped across a clock set back over midnight.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from rules.engine.comparison import number_param
from rules.engine.history import Component, History, Series
from rules.facts import MICROSECOND, ReadingFact, micros_of
from rules.language import Match, Op, ResolvedParam
from rules.ranges import coefficient

if TYPE_CHECKING:
    from rules.engine.kinds.aggregate import AggregateCheck

BATCH_MIN = 64
"""Fewer anchors than this are assessed one by one: the arrays would cost more than they save."""

_LIMIT = 2**62  # the largest magnitude kept in int64, with room for one subtraction

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


def held_at(
    check: AggregateCheck, anchors: Sequence[ReadingFact], history: History
) -> dict[str, bool]:
    """Return, by anchor id, whether the check holds there; anchors left out are not known."""
    fields = check.fields
    chosen = [a for a in anchors if check.selects(a)]
    if len(chosen) < BATCH_MIN:
        return {}
    series = history.series(check.types, check.context)
    index_of = series.index_of
    found = [index_of.get(a.id) for a in chosen]
    if None in found:
        return {}  # not one of the series' readings (cannot be: the same types and context)
    positions = np.array(found, dtype=np.int64)
    history.visit(len(chosen))
    low, high = _windows(check, series, positions, history)
    kept, known = _kept(check, series, low, high)
    held = _enough(check, high - kept)
    results: list[Bools] = []
    for condition in fields.conditions:
        component = series.component(condition.component)
        first, last = component.upto_array[kept], component.upto_array[high]
        rows = last - first
        if fields.aggregate == "count":
            results.append(_each_int(rows, _count_holds(condition.op, check, condition.param)))
            continue
        scaled = _scaled(component, check.params[condition.param])
        if scaled is None:
            return {}
        prefix, threshold = scaled
        if fields.aggregate == "mean":  # total <op> threshold × n: no division, as the scalar
            compared = condition.op.each(prefix[last] - prefix[first], threshold * rows)
        else:
            extreme = _extremes(np.diff(prefix), first, last, lowest=fields.aggregate == "min")
            compared = condition.op.each(extreme, threshold)
        results.append((rows > 0) & compared)
    either = fields.match is Match.any
    held &= np.logical_or.reduce(results) if either else np.logical_and.reduce(results)
    return {
        a.id: bool(h) for a, h, k in zip(chosen, held.tolist(), known.tolist(), strict=True) if k
    }


def _count_holds(op: Op, check: AggregateCheck, param: str) -> Callable[[int], bool]:
    """Return whether a count of readings meets a condition, as the scalar path compares it."""
    threshold = number_param(check.params, param)
    return lambda n: op.holds(Decimal(n), threshold)


def _windows(
    check: AggregateCheck, series: Series, positions: Ints, history: History
) -> tuple[Ints, Ints]:
    """Return each anchor's window as a series index range, as ``Series.span`` finds it."""
    micros = series.micros
    ends = micros[positions]
    window = check.window
    if window.unit == "d":
        # A day window starts at a local midnight that depends on the anchor's date alone.
        dates, _, _ = series.day_structure()
        by_date: dict[date, int] = {}
        starts_list = []
        for index in positions.tolist():
            day = dates[index]
            start = by_date.get(day)
            if start is None:
                moment = window.start(series.readings[index].time, history.tz)
                start = by_date[day] = micros_of(moment)
            starts_list.append(start)
        starts = np.array(starts_list, dtype=np.int64)
    else:
        starts = ends - window.duration // MICROSECOND
    low = np.searchsorted(micros, starts, "left").astype(np.int64)
    high = np.searchsorted(micros, ends, "right").astype(np.int64)
    return low, np.maximum(low, high)


def _kept(check: AggregateCheck, series: Series, low: Ints, high: Ints) -> tuple[Ints, Bools]:
    """Return where each window's kept readings start (its first dates dropped), and for which
    windows that is known here (not where a clock set back over midnight reorders dates)."""
    discard = check.discard
    if not discard:
        return low, np.ones(len(low), dtype=np.bool_)
    _, nxt, descents = series.day_structure()
    n = len(series.readings)
    steps = np.array([*nxt, n], dtype=np.int64)  # from the end, no further
    down = np.array(descents, dtype=np.int64)
    in_order = (high - low < 2) | (down[high] == down[np.minimum(low + 1, n)])
    kept = low
    for _ in range(discard):
        kept = np.minimum(steps[kept], high)
    return kept, in_order


def _enough(check: AggregateCheck, used: Ints) -> Bools:
    """Tell per window whether it keeps the rule's minimum number of readings."""
    least = check.min_readings
    if least is None:
        return np.ones(len(used), dtype=np.bool_)
    return _each_int(used, lambda n: n >= least)


def _each_int(values: Ints, predicate: Callable[[int], bool]) -> Bools:
    """Apply an exact predicate to each integer, once per distinct value."""
    distinct, inverse = np.unique(values, return_inverse=True)
    table = np.array([predicate(int(v)) for v in distinct.tolist()], dtype=np.bool_)
    return table[inverse].reshape(values.shape)


def _scaled(component: Component, param: ResolvedParam) -> tuple[Ints, int] | None:
    """Return the component's prefix sums and the threshold, as integers at one exponent, or
    None where the scalar path must decide (see the module docstring).

    Every row in one unit that the parameter is published in: then each window is compared
    in that unit, with the published threshold (``Component.in_unit``).
    """
    rows = component.rows
    if param.unit is None or isinstance(param.value, bool) or not rows:
        return None
    unit = rows[0].original_unit
    # Sets and a search in C: ten thousand rows in a dense week, each evaluation.
    if None in component.original.values or any(r.original_unit != unit for r in rows):
        return None
    types = {r.type for r in rows}
    # One threshold for every window: the unit published alike for each type (sensor and
    # finger-prick glucose share theirs).
    published = {param.published_in(type_name, unit) for type_name in types}
    threshold = published.pop()
    if published or threshold is None or not threshold.is_finite():
        return None
    prefix, floor = component.original.sums().scaled_prefix()
    exponent = threshold.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    common = min(floor, exponent)
    scale = 10 ** (floor - common)
    threshold_scaled = coefficient(threshold, common)
    # Every partial sum and every value (a difference of two) within int64, as well as the
    # threshold times any count of rows.
    if 2 * max(map(abs, prefix)) * scale >= _LIMIT or abs(threshold_scaled) * len(rows) >= _LIMIT:
        return None
    return np.array(prefix, dtype=np.int64) * scale, threshold_scaled


def _extremes(values: Ints, first: Ints, last: Ints, *, lowest: bool) -> Ints:
    """Return the least (or greatest) value of each non-empty range [first, last); any number
    for an empty one. A sparse table: log n passes of numpy, two lookups per range."""
    best = np.minimum if lowest else np.maximum
    levels = [values]
    width = 1
    while 2 * width <= len(values):
        below = levels[-1]
        levels.append(best(below[: len(below) - width], below[width:]))
        width *= 2
    rows = np.maximum(last - first, 1)
    level = np.frexp(rows.astype(np.float64))[1] - 1  # floor(log2 rows), exact below 2**53
    out = np.empty(len(first), dtype=np.int64)
    for k in np.unique(level).tolist():
        at = level == k
        row = levels[k]
        start = np.minimum(first[at], len(row) - 1)
        end = np.clip(last[at] - (1 << k), 0, len(row) - 1)
        out[at] = best(row[start], row[end])
    return out


__all__ = ["BATCH_MIN", "held_at"]
