"""The readings of one backtest as arrays, and the exact vector operations on them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from rules.catalogue import same_unit
from rules.engine.comparison import context_matches, value_in
from rules.engine.days import local_day_start
from rules.engine.history import Window
from rules.facts import ReadingFact
from rules.language import Op, ResolvedParam

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICRO = timedelta(microseconds=1)

Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
Objects = npt.NDArray[np.object_]


class Table:
    """The readings sorted by (time, id), with times in microseconds and local days."""

    def __init__(self, readings: Sequence[ReadingFact], tz: tzinfo) -> None:
        self.readings = list(readings)
        self.tz = tz
        self.times: Ints = np.array(
            [(r.time - EPOCH) // MICRO for r in self.readings], dtype=np.int64
        )
        self.types: Objects = np.array([r.type for r in self.readings], dtype=object)
        if self.readings:
            stamps = pd.to_datetime(self.times, unit="us", utc=True)
            local = stamps.tz_convert(tz).tz_localize(None).normalize()
            self.days: Ints = ((local - pd.Timestamp(0)) // pd.Timedelta(days=1)).to_numpy(
                dtype=np.int64
            )
        else:
            self.days = np.zeros(0, dtype=np.int64)
        self._midnights: dict[int, int] = {}

    def select(self, types: frozenset[str], context: Mapping[str, str]) -> Ints:
        """Return the row numbers of the readings of these types (and context)."""
        mask = np.isin(self.types, list(types))
        if context:
            # dtype: an empty history must still give a boolean mask.
            mask &= np.array([context_matches(r, context) for r in self.readings], dtype=bool)
        return np.flatnonzero(mask).astype(np.int64)

    def local_midnight(self, day: int) -> int:
        """Return the local midnight of a local day number, in microseconds since the epoch."""
        if day not in self._midnights:
            moment = EPOCH + timedelta(days=day, hours=12)
            naive = datetime(moment.year, moment.month, moment.day, 12, tzinfo=self.tz)
            start = local_day_start(naive, self.tz)
            self._midnights[day] = (start - EPOCH) // MICRO
        return self._midnights[day]

    def window_starts(self, rows: Ints, window: Window) -> Ints:
        """Return each anchor's window start (microseconds), as :mod:`rules.engine`."""
        if window.unit == "d":
            back = int(window.length) - 1
            return np.array(
                [self.local_midnight(int(d) - back) for d in self.days[rows]], dtype=np.int64
            )
        return self.times[rows] - window.duration // MICRO


@dataclass
class Values:
    """One component of some readings against one parameter, as the evaluator compares."""

    present: Bools
    unit_class: Ints  # which published unit the original is in; -1: none
    original: Objects  # the original value (Decimal) or 0
    converted: Objects  # the value in the parameter's own unit (Decimal) or 0
    published: list[Decimal]  # threshold per unit class
    own: Decimal  # threshold in the parameter's own unit


def values_of(
    table: Table, rows: Ints, component: str, param: ResolvedParam, cache: dict[Any, Any]
) -> Values:
    """Return one component of the readings at ``rows`` against a parameter (see ``Values``)."""
    n = len(rows)
    present = np.zeros(n, dtype=bool)
    unit_class = np.full(n, -1, dtype=np.int64)
    original = np.full(n, Decimal(0), dtype=object)
    converted = np.full(n, Decimal(0), dtype=object)
    bare = replace(param, equivalents={})
    units = [param.unit, *param.equivalents] if param.unit is not None else []
    for i, row in enumerate(rows):
        r = table.readings[row]
        key = (r.type, r.original_unit, r.original_values.get(component), r.values.get(component))
        known = cache.get((id(param), key))
        if known is None:
            single = value_in(r, component, bare)
            klass = -1
            if r.original_values.get(component) is not None:
                for k, unit in enumerate(units):
                    if unit is not None and same_unit(r.type, r.original_unit, unit):
                        klass = k
                        break
            known = (single, klass)
            cache[(id(param), key)] = known
        single, klass = known
        if single is None:
            continue
        present[i] = True
        converted[i] = single[0]
        unit_class[i] = klass
        if klass >= 0:
            original[i] = r.original_values[component]
    published: list[Decimal] = []
    if param.unit is not None and not isinstance(param.value, bool):
        published = [param.value, *param.equivalents.values()]
    own = Decimal(0) if isinstance(param.value, bool) else param.value
    return Values(present, unit_class, original, converted, published, own)


def compare_arrays(op: Op, left: Objects, right: Objects | Decimal) -> Bools:
    """Return ``left op right`` elementwise."""
    match op:
        case Op.lt:
            result = left < right
        case Op.le:
            result = left <= right
        case Op.gt:
            result = left > right
        case Op.ge:
            result = left >= right
    return np.asarray(result, dtype=bool)


def compare_single(values: Values, op: Op) -> Bools:
    """Compare each reading alone (threshold semantics)."""
    thresholds = np.array(
        [values.published[k] if k >= 0 else values.own for k in values.unit_class], dtype=object
    )
    chosen = np.where(values.unit_class >= 0, values.original, values.converted)
    if len(chosen) == 0:
        return np.zeros(0, dtype=bool)
    return values.present & compare_arrays(op, chosen, thresholds)


def exact_cumsum(values: Objects | Ints) -> Objects:
    """Return the running sums of the values, starting with 0 (exact for Decimals)."""
    out = np.empty(len(values) + 1, dtype=object)
    out[0] = Decimal(0)
    if len(values):
        out[1:] = np.cumsum(values)
    return out


def true_counts(mask: Bools) -> Ints:
    """Return how many of the first i entries hold, for every i from 0."""
    return np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])


def reduce_ranges(ufunc: np.ufunc, values: Objects, starts: Ints, ends: Ints) -> Objects:
    """Reduce ``values[starts[i]:ends[i]]`` for each i (empty ranges give garbage)."""
    if len(starts) == 0:
        return np.empty(0, dtype=object)
    padded = np.append(values, values[:1] if len(values) else [Decimal(0)])
    safe = ends > starts
    indices = np.empty(2 * len(starts), dtype=np.intp)
    indices[0::2] = np.where(safe, starts, 0)
    indices[1::2] = np.where(safe, ends, 1)
    result: Objects = ufunc.reduceat(padded, indices)[0::2]
    return result


def uniform_class(values: Values, starts: Ints, ends: Ints) -> Ints:
    """Return the unit class every reading with the component in each range shares, or -1."""
    present = true_counts(values.present)
    n = present[ends] - present[starts]
    shared = np.full(len(starts), -1, dtype=np.int64)
    for k in range(len(values.published)):
        counts = true_counts(values.present & (values.unit_class == k))
        shared = np.where((counts[ends] - counts[starts] == n) & (n > 0), k, shared)
    return shared


def masked(mask: Bools, values: Objects, fill: Decimal) -> Objects:
    """Return the values where the mask holds and ``fill`` elsewhere."""
    out = np.full(len(values), fill, dtype=object)
    out[mask] = values[mask]
    return out


def decimals(numbers: Ints) -> Objects:
    """Return integers as an array of Decimals."""
    return np.array([Decimal(int(x)) for x in numbers], dtype=object)


__all__ = [
    "Bools",
    "EPOCH",
    "Ints",
    "MICRO",
    "Objects",
    "Table",
    "Values",
    "compare_arrays",
    "compare_single",
    "decimals",
    "exact_cumsum",
    "masked",
    "reduce_ranges",
    "true_counts",
    "uniform_class",
    "values_of",
]
