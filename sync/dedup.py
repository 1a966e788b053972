"""Whether two readings are the same measurement arriving from two sources.

Same type, times at most :data:`DEDUP_WINDOW` apart (inclusive; for interval readings the
ends too), and every canonical component equal after rounding half-even to the type's
precision (:attr:`rules.catalogue.TypeSpec.precision`): 126 mg/dL (6.99 mmol/L) and
7.0 mmol/L are one glucose reading; Apple's BP inside and outside a correlation is one.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol, TypeVar

from rules.catalogue import spec_for

DEDUP_WINDOW = timedelta(seconds=60)
"""How far apart in time two readings of one measurement may lie."""


class _Measured(Protocol):
    """What dedup reads from a reading (``NormalisedReading`` and ``ReadingFact`` fit)."""

    @property
    def type(self) -> str: ...
    @property
    def time(self) -> datetime: ...
    @property
    def end_time(self) -> datetime | None: ...
    @property
    def values(self) -> Mapping[str, Decimal]: ...


M = TypeVar("M", bound=_Measured)


def _close(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= DEDUP_WINDOW


def _rounded(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def same_measurement(a: _Measured, b: _Measured) -> bool:
    """Tell whether two readings are one measurement (see the module docstring)."""
    if a.type != b.type or not _close(a.time, b.time) or not _close(a.end_time, b.end_time):
        return False
    if a.values.keys() != b.values.keys():
        return False
    spec = spec_for(a.type)
    if spec is None:
        return dict(a.values) == dict(b.values)
    return all(
        _rounded(a.values[name], spec.precision) == _rounded(b.values[name], spec.precision)
        for name in a.values
    )


def find_same_measurement(reading: _Measured, candidates: Iterable[M]) -> M | None:
    """Return the candidate closest in time that is the same measurement, or None.

    Ties in time go to the first candidate given, so pass them in a stable order.
    """
    best: M | None = None
    for candidate in candidates:
        if not same_measurement(reading, candidate):
            continue
        if best is None or abs(candidate.time - reading.time) < abs(best.time - reading.time):
            best = candidate
    return best


def drop_duplicates(arrivals: Iterable[tuple[str, M]]) -> tuple[list[M], list[tuple[M, M]]]:
    """Split (source, reading) pairs in arrival order as sync would count them.

    A reading that is the same measurement as one counted earlier from ANOTHER source is a
    duplicate of the closest such reading (ties: the one counted first); readings of one
    source are never duplicates of each other. Returns the counted readings in arrival
    order and the (duplicate, original) pairs.
    """
    counted: list[M] = []
    duplicates: list[tuple[M, M]] = []
    by_type: dict[str, list[tuple[datetime, int, str, M]]] = {}  # sorted by time
    for source, reading in arrivals:
        near = by_type.setdefault(reading.type, [])
        low = bisect.bisect_left(near, (reading.time - DEDUP_WINDOW,), key=lambda e: e[:1])
        high = bisect.bisect_right(near, (reading.time + DEDUP_WINDOW,), key=lambda e: e[:1])
        others = [m for _, _, src, m in sorted(near[low:high], key=lambda e: e[1]) if src != source]
        original = find_same_measurement(reading, others)
        if original is not None:
            duplicates.append((reading, original))
            continue
        bisect.insort(near, (reading.time, len(counted), source, reading), key=lambda e: e[:2])
        counted.append(reading)
    return counted, duplicates


__all__ = ["DEDUP_WINDOW", "drop_duplicates", "find_same_measurement", "same_measurement"]
