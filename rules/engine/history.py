"""Windows and the readings of one evaluation, with the indexes built once per evaluation
(:mod:`rules.ranges`) that every anchor's window reads.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from functools import cached_property
from itertools import accumulate, compress
from typing import Any, Protocol, TypeVar, cast

import numpy as np
import numpy.typing as npt

from rules.catalogue import decimal_text, same_unit
from rules.engine.comparison import context_matches, number_param, value_in
from rules.engine.days import DST_MARGIN, local_day_start
from rules.facts import ReadingFact, micros_of
from rules.language import WINDOW_UNITS, ResolvedParam
from rules.ranges import ExactSums, RangeBest, SlidingOrder


@dataclass(frozen=True)
class Window:
    """A window parameter: a length in min or h (rolling) or d (local calendar days)."""

    length: Decimal
    unit: str

    @classmethod
    def of(cls, params: Mapping[str, ResolvedParam], name: str) -> Window:
        """Return the window that a rule's resolved parameter holds (unit ``h`` when none)."""
        param = params[name]
        return cls(number_param(params, name), param.unit or "h")

    @cached_property  # asked for every anchor; Decimal arithmetic each time added up
    def duration(self) -> timedelta:
        """Return the window's length as a time (a ``d`` window: that many 24-hour days)."""
        micros = self.length * WINDOW_UNITS[self.unit] * 1_000_000
        return timedelta(microseconds=int(micros))

    @cached_property
    def reach(self) -> timedelta:
        """Return the longest time from the window's start to its anchor."""
        return self.duration + DST_MARGIN if self.unit == "d" else self.duration

    def start(self, anchor: datetime, tz: tzinfo) -> datetime:
        """Return where the window ending at an anchor starts."""
        if self.unit == "d":
            return local_day_start(anchor, tz, int(self.length) - 1)
        return anchor - self.duration

    def json(self) -> dict[str, str]:
        """Return the window as findings record it: its length and unit."""
        return {"value": decimal_text(self.length), "unit": self.unit}


class _Counted(Protocol):
    visits: int


_C = TypeVar("_C", bound=_Counted)
INFINITY = Decimal("Infinity")
SCAN_BUDGET = 8  # a column's min and max are read range by range up to 8 times its length


class History:
    """The readings of one evaluation, sorted by time per type, with per-run caches.

    ``visits`` counts the readings the evaluation looked at (in windows and in the indexes
    it builds once): its work, which tests keep linear. The readings its findings list
    are their own measure (``reading_ids``).
    """

    def __init__(self, readings: Sequence[ReadingFact], tz: tzinfo) -> None:
        # ``readings`` come in (time, id) order (``unique_readings`` gives them so): each
        # type's list is then in order too, and a series of one type needs no sort.
        self.readings = readings
        self.tz = tz
        self._by_type: dict[str, list[ReadingFact]] = {}
        for reading in readings:
            self._by_type.setdefault(reading.type, []).append(reading)
        self._times = {t: [r.time for r in rs] for t, rs in self._by_type.items()}
        self.cache: dict[tuple[str, str, str], Any] = {}
        self._series: dict[tuple[frozenset[str], tuple[tuple[str, str], ...]], Series] = {}
        self._visits = len(readings)
        self._counted: list[_Counted] = []

    @property
    def visits(self) -> int:
        """Return how many readings this evaluation has looked at so far."""
        return self._visits + sum(counted.visits for counted in self._counted)

    def visit(self, count: int) -> None:
        """Count readings looked at."""
        self._visits += count

    def counted(self, structure: _C) -> _C:
        """Return an index structure after adding its own visit count to the evaluation's."""
        self._counted.append(structure)
        return structure

    def between(
        self,
        types: Iterable[str],
        start: datetime,
        end: datetime,
        *,
        end_open: bool = False,
        context: Mapping[str, str] | None = None,
    ) -> list[ReadingFact]:
        """Return the readings of these types in ``[start, end]`` (or ``[start, end)``)."""
        found: list[ReadingFact] = []
        for type_name in set(types):
            times = self._times.get(type_name)
            if not times:
                continue
            low = bisect.bisect_left(times, start)
            high = (bisect.bisect_left if end_open else bisect.bisect_right)(times, end)
            found.extend(self._by_type[type_name][low:high])
        self.visit(len(found))
        if context:
            found = [r for r in found if context_matches(r, context)]
        found.sort(key=lambda r: (r.time, r.id))
        return found

    def series(self, types: Iterable[str], context: Mapping[str, str] | None = None) -> Series:
        """Return every reading of these types (and context), sorted; built once per run."""
        key = (frozenset(types), tuple(sorted((context or {}).items())))
        found = self._series.get(key)
        if found is None:
            readings = [r for t in sorted(key[0]) for r in self._by_type.get(t, ())]
            self.visit(len(readings))
            if context:
                readings = [r for r in readings if context_matches(r, context)]
            if len(key[0]) > 1:  # one type's readings are in (time, id) order already
                readings.sort(key=lambda r: (r.time, r.id))
            found = self._series[key] = Series(readings, self)
        return found

    def local_date(self, reading: ReadingFact) -> date:
        """Return the reading's local date in the patient's zone."""
        return reading.local_date(self.tz)


class Series:
    """Readings of some types (and a context) sorted by (time, id), with window indexes.

    A window is an index range found by bisection. What an anchor reads of its window (a
    minimum, a sum, a median, how many) comes from structures built once per series, so
    re-evaluating every anchor of a dense stream costs no scan of each anchor's window.
    """

    def __init__(self, readings: list[ReadingFact], history: History) -> None:
        self.readings = readings
        self.times = [r.time for r in readings]
        self.history = history
        self._components: dict[str, Component] = {}
        self._next_day: list[int] | None = None
        self._descents: list[int] = []
        self._dates: list[date] = []

    def span(self, start: datetime, end: datetime, *, end_open: bool = False) -> tuple[int, int]:
        """Return the index range of the readings in ``[start, end]`` (or ``[start, end)``)."""
        low = bisect.bisect_left(self.times, start)
        high = (bisect.bisect_left if end_open else bisect.bisect_right)(self.times, end)
        return low, max(low, high)

    def component(self, name: str) -> Component:
        """Return the readings that have this component, with their values."""
        found = self._components.get(name)
        if found is None:
            found = self._components[name] = Component(self, name)
        return found

    def _days(self) -> list[int]:
        """Return, per index, where the next local date starts (indexed on first use)."""
        if self._next_day is None:
            dates = self._dates = [self.history.local_date(r) for r in self.readings]
            self.history.visit(len(dates))
            nxt = [len(dates)] * len(dates)
            for i in range(len(dates) - 2, -1, -1):
                nxt[i] = i + 1 if dates[i + 1] != dates[i] else nxt[i + 1]
            self._next_day = nxt
            # Where a zone's clock goes back over midnight, local dates leave time order.
            self._descents = [0]
            for i in range(len(dates)):
                self._descents.append(self._descents[-1] + (i > 0 and dates[i] < dates[i - 1]))
        return self._next_day

    def day_structure(self) -> tuple[list[date], list[int], list[int]]:
        """Return per index the local date, where the next date starts, and the count of
        date descents before it (see :meth:`in_date_order`)."""
        nxt = self._days()
        return self._dates, nxt, self._descents

    @cached_property
    def micros(self) -> npt.NDArray[np.int64]:
        """Return the readings' times in microseconds since the epoch, for searches in numpy."""
        self.history.visit(len(self.times))
        return np.fromiter((micros_of(t) for t in self.times), np.int64, len(self.times))

    @cached_property
    def index_of(self) -> dict[str, int]:
        """Return each reading's index in the series, by id."""
        return {r.id: i for i, r in enumerate(self.readings)}

    def in_date_order(self, low: int, high: int) -> bool:
        """Tell whether the local dates of a range never go back (only a clock set back over
        midnight makes them: a reading of tomorrow, then one of today)."""
        self._days()
        return high - low < 2 or self._descents[high] == self._descents[low + 1]

    def after_days(self, low: int, high: int, days: int) -> int:
        """Return where a range starts once its first ``days`` local dates are left out."""
        if days <= 0:
            return low  # most windows drop no days: their readings' dates are not needed
        nxt = self._days()
        for _ in range(days):
            if low >= high:
                break
            low = min(nxt[low], high)
        return low


class Column:
    """One value per row of a component (None where a row has none), with range queries."""

    def __init__(self, values: list[Decimal | None], history: History) -> None:
        self.values = values
        self.history = history
        history.visit(len(values))
        self._gaps = list(accumulate((value is None for value in values), initial=0))
        self._lowest: RangeBest[Decimal] | None = None
        self._highest: RangeBest[Decimal] | None = None
        self._sums: ExactSums | None = None
        self._order: SlidingOrder | None = None
        self._scanned = 0

    def complete(self, low: int, high: int) -> bool:
        """Tell whether every row of the range has a value."""
        return self._gaps[high] == self._gaps[low]

    def _scan(self, low: int, high: int) -> bool:
        """Tell whether to answer for a range by reading it: yes while the ranges read so far
        are a few times the column (a small batch asks of a few anchors), then never."""
        # An index over a fortnight of CGM costs n log n steps in Python to build; a handful
        # of two-hour windows read by the built-in min() cost far less. Past the budget the
        # index pays, and the reads so far stay linear in the column.
        if self._scanned + (high - low) > SCAN_BUDGET * len(self.values):
            return False
        self._scanned += high - low
        self.history.visit(high - low)
        return True

    def _present(self, low: int, high: int) -> list[Decimal]:
        values = self.values[low:high]
        if self.complete(low, high):
            return cast(list[Decimal], values)  # no None in the range: checked in O(1)
        return [v for v in values if v is not None]

    def lowest(self, low: int, high: int) -> Decimal:
        """Return ``min()`` of the range's values: the first of equal ones."""
        if self._lowest is None and self._scan(low, high):
            return min(self._present(low, high))
        if self._lowest is None:
            keys = [INFINITY if v is None else v for v in self.values]
            self._lowest = self.history.counted(RangeBest(keys))
        value = self.values[self._lowest.best(low, high)]
        assert value is not None
        return value

    def highest(self, low: int, high: int) -> Decimal:
        """Return ``max()`` of the range's values: the first of equal ones."""
        if self._highest is None and self._scan(low, high):
            return max(self._present(low, high))
        if self._highest is None:
            keys = [INFINITY if v is None else v.copy_negate() for v in self.values]
            self._highest = self.history.counted(RangeBest(keys))
        value = self.values[self._highest.best(low, high)]
        assert value is not None
        return value

    def total(self, low: int, high: int) -> Decimal:
        """Return ``sum(values, Decimal(0))`` of the range, digit for digit."""
        return self.sums().total(low, high)

    def sums(self) -> ExactSums:
        """Return the column's exact range sums (built on first use)."""
        if self._sums is None:
            self._sums = self.history.counted(ExactSums(self.values))
        return self._sums

    def median(self, low: int, high: int) -> Decimal:
        """Return the median of the range's values: of an even count, the mean of the middle two."""
        if self._order is None:
            self._order = self.history.counted(SlidingOrder(self.values))
        return self._order.median(low, high)


class Listed:
    """The readings of a range of a sorted list (and the anchor), listed when iterated.

    Every outcome names the readings it used, but only a finding lists them: the many
    outcomes that never become one (anchors that do not fire, parts of a composite that
    does not) then cost nothing. What findings list is their size, not counted as visits.
    """

    def __init__(
        self,
        rows: Sequence[ReadingFact],
        low: int,
        high: int,
        anchor: ReadingFact | None = None,
    ) -> None:
        self.rows, self.low, self.high, self.anchor = rows, low, high, anchor

    def __iter__(self) -> Iterator[ReadingFact]:
        yield from self.rows[self.low : self.high]
        if self.anchor is not None:
            yield self.anchor

    def __len__(self) -> int:
        return self.high - self.low + (self.anchor is not None)

    def latest(self, limit: int) -> tuple[ReadingFact, ...]:
        """The last ``limit`` readings as iterated (the latest: the rows are sorted by time)."""
        anchor = () if self.anchor is None else (self.anchor,)
        start = max(self.low, self.high - (limit - len(anchor)))
        return (*self.rows[start : self.high], *anchor)[-limit:]


def latest_used(used: Iterable[ReadingFact], limit: int) -> tuple[tuple[ReadingFact, ...], int]:
    """The latest ``limit`` readings an outcome used, and how many it used in all.

    A window rule uses every reading of its window: a finding lists a bounded number of them
    (and the count), so that recording it costs the same in a dense week as in a sparse one.
    """
    if isinstance(used, Listed):
        return used.latest(limit), len(used)
    listed = tuple(used)
    return listed[-limit:], len(listed)


InUnit = tuple[Column, Decimal, str, Decimal]  # values, threshold, unit, the first's value


class Component:
    """The readings of a series that have a component, and their values as rules compare them.

    Over several readings the original values are compared when all of them are in one
    unit the parameter is published in (that of the first reading), else every value is
    converted to the parameter's unit (module docstring, Units); which one holds for a
    window is decided from prefix counts, not by looking at each reading of it.
    """

    def __init__(self, series: Series, name: str) -> None:
        self.name = name
        self.history = series.history
        # Built per evaluation over every reading of the series (ten thousand in a dense
        # week): comprehensions and accumulate, not a loop of appends.
        has = [name in reading.values for reading in series.readings]
        self.rows: list[ReadingFact] = list(compress(series.readings, has))
        self.upto = list(accumulate(has, initial=0))  # series index -> index in rows
        self.history.visit(len(series.readings))
        self.times = [r.time for r in self.rows]
        self.original = Column([r.original_values.get(name) for r in self.rows], self.history)
        self._converted: dict[str | None, Column] = {}
        self._foreign: dict[str, list[int]] = {}

    @cached_property
    def upto_array(self) -> npt.NDArray[np.int64]:
        """Return ``upto`` as an array, for many anchors' ranges at once."""
        return np.array(self.upto, dtype=np.int64)

    def span(self, start: datetime, end: datetime, *, end_open: bool = False) -> tuple[int, int]:
        """Return the index range of the rows in ``[start, end]`` (or ``[start, end)``)."""
        low = bisect.bisect_left(self.times, start)
        high = (bisect.bisect_left if end_open else bisect.bisect_right)(self.times, end)
        return low, max(low, high)

    def _uniform(self, unit: str, low: int, high: int) -> bool:
        """Tell whether every row of the range was measured, with the component, in ``unit``."""
        foreign = self._foreign.get(unit)
        if foreign is None:
            name, rows = self.name, self.rows
            # Asked once per (type, unit) measured, not per row: rows share a handful.
            spelled = {(r.type, r.original_unit) for r in rows}
            alike = {key for key in spelled if same_unit(key[0], key[1], unit)}
            if alike == spelled and self.original.complete(0, len(rows)):
                foreign = [0] * (len(rows) + 1)  # all in the unit, all with the component
            else:
                foreign = list(
                    accumulate(
                        (name not in r.original_values or (r.type, r.original_unit) not in alike
                         for r in rows),
                        initial=0,
                    )
                )  # fmt: skip
            self.history.visit(len(rows))
            self._foreign[unit] = foreign
        return foreign[high] == foreign[low]

    def _in_unit_of(self, param: ResolvedParam) -> Column:
        """Return every row's value in the parameter's unit (its original value when the
        parameter's own unit is the reading's, else converted), None when it has none."""
        column = self._converted.get(param.unit)
        if column is None:
            plain = replace(param, equivalents={})  # the value depends on the unit alone
            values: list[Decimal | None] = []
            for r in self.rows:
                single = value_in(r, self.name, plain)
                values.append(None if single is None else single[0])
            column = self._converted[param.unit] = Column(values, self.history)
        return column

    def in_unit(
        self, first: ReadingFact, low: int, high: int, param: ResolvedParam
    ) -> InUnit | None:
        """Return how ``[first, *rows[low:high]]`` is compared: the column of values, the
        threshold, the unit, and ``first``'s value (None: not comparable, never fires).

        ``first`` is the anchor (a delta, a baseline) or ``rows[low]`` itself (an aggregate,
        whose list starts there): listed twice it changes no answer here.
        """
        if param.unit is None or isinstance(param.value, bool):
            return None
        published = param.published_in(first.type, first.original_unit)
        own = first.original_values.get(self.name)
        if (
            published is not None
            and own is not None
            and self._uniform(first.original_unit, low, high)
        ):
            return self.original, published, first.original_unit, own
        column = self._in_unit_of(param)
        single = value_in(first, self.name, replace(param, equivalents={}))
        if single is None or not column.complete(low, high):
            return None
        return column, param.number_in(first.type, param.unit), param.unit, single[0]


__all__ = [
    "Column",
    "Component",
    "History",
    "INFINITY",
    "InUnit",
    "Listed",
    "Series",
    "Window",
]
