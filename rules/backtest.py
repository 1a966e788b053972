"""Backtest a plan over a history: firings, advice and flag episodes per rule per week.

The same semantics as :mod:`rules.engine` (its module docstring), computed over the
whole history at once: every reading is an anchor. Reading-anchored kinds are vectorised
with numpy/pandas — windows are index ranges found by ``searchsorted`` on the sorted
times, sums are cumulative sums and min/max are ``reduceat`` over those ranges, all on
exact Decimal values (object arrays), so the result equals the incremental path exactly
(tests/rules/test_backtest.py checks it). Three parts reuse the incremental code on the few
readings that need it: the occurrence count and escalation of a threshold rule's flag
(only at firing readings), baseline medians (a median is no running sum; baseline rules
read daily measurements, so one evaluation per reading of their types is cheap), and the
time-based rules (one evaluation per local day).

What the app would have done with the firings:

* Advice: an active, not superseded firing with advice gives advice unless the rule gave
  advice less than ``cooldown_minutes`` before (times are the anchors' times: the
  backtest assumes each reading arrived when it was measured, so no advice is stale). A
  rule with an advice episode (CGM lows) gives advice once per episode and level instead,
  without a cooldown, as the app does. Advice is pushed unless the plan mutes it (a
  sensor that alarms on its own); urgent pushes between 22:00 and 07:00 local time are
  counted apart: they wake people (routine ones wait out the default quiet hours).
* Flags are episodes. An active firing with a flag severity opens a flag unless the
  rule's previous flagged firing was at most ``episode_days`` earlier, in which case it
  attaches to that open flag. The app keeps a flag open until a clinician resolves it; the
  backtest assumes they resolve it once ``episode_days`` (default 7) pass without a new
  flagged firing.
* Per week: counts divided by the weeks from ``start`` to ``end`` (at least one day): the
  alert burden of one patient.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from rules.catalogue import same_unit, spec_for
from rules.engine.comparison import context_matches, number_param, value_in
from rules.engine.days import DEFAULT_TZ, local_day_start, zone_of
from rules.engine.due import evaluate_due_run
from rules.engine.evaluation import unique_readings
from rules.engine.history import History, Window
from rules.engine.kinds.baseline import BaselineCheck
from rules.engine.runs import ReadingRun
from rules.engine.selection import plan_runs
from rules.facts import ReadingFact
from rules.language import (
    BandsRule,
    BaselineFields,
    CompositeRule,
    Condition,
    CountFields,
    DeltaFields,
    Match,
    Op,
    Part,
    Reference,
    ResolvedParam,
    RuleLibrary,
    RuleMode,
    Severity,
    ThresholdFields,
    ThresholdRule,
    WindowAggregateFields,
    load_library,
)
from rules.plan import PlanSpec

EPISODE_DAYS = 7
"""Days without a flagged firing after which the backtest takes a flag as resolved."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_RANK = {Severity.high: 3, Severity.moderate: 2, Severity.low: 1}

Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
Objects = npt.NDArray[np.object_]


@dataclass(frozen=True)
class BacktestFiring:
    """One firing: the rule, its anchor (reading id or time key), the flag and advice."""

    rule_id: str
    anchor: str
    time: datetime
    mode: str
    severity: str | None  # after supersession
    advice: bool  # the firing carries advice (before cooldown; after its episode)
    episode: bool = False  # advice per episode: no cooldown
    muted: bool = False  # advice recorded, not pushed


@dataclass(frozen=True)
class RuleBurden:
    """What one rule would have done over the period, and per patient-week."""

    rule_id: str
    mode: str
    firings: int
    advice: int
    flags: int
    weeks: float
    pushes: int = 0
    night_pushes: int = 0  # pushed between 22:00 and 07:00 local time

    @property
    def firings_per_week(self) -> float:
        """Return firings per patient-week."""
        return self.firings / self.weeks

    @property
    def advice_per_week(self) -> float:
        """Return advice per patient-week."""
        return self.advice / self.weeks

    @property
    def pushes_per_week(self) -> float:
        """Return pushes per patient-week."""
        return self.pushes / self.weeks

    @property
    def night_pushes_per_week(self) -> float:
        """Return pushes between 22:00 and 07:00 per patient-week."""
        return self.night_pushes / self.weeks

    @property
    def flags_per_week(self) -> float:
        """Return flags (episodes) per patient-week."""
        return self.flags / self.weeks


@dataclass(frozen=True)
class BacktestReport:
    """The alert burden of a plan over a period of one patient's history."""

    start: datetime
    end: datetime
    weeks: float
    readings: int
    episode_days: int
    rules: tuple[RuleBurden, ...]
    firings: tuple[BacktestFiring, ...] = field(repr=False)

    def rule(self, rule_id: str) -> RuleBurden | None:
        """Return the burden of one rule, or None when the plan does not evaluate it."""
        return next((r for r in self.rules if r.rule_id == rule_id), None)


# --- the readings of one backtest, as arrays -----------------------------------------------


class _Table:
    """The readings sorted by (time, id), with times in microseconds and local days."""

    def __init__(self, readings: Sequence[ReadingFact], tz: tzinfo) -> None:
        self.readings = list(readings)
        self.tz = tz
        self.times: Ints = np.array(
            [(r.time - _EPOCH) // _MICRO for r in self.readings], dtype=np.int64
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
            moment = _EPOCH + timedelta(days=day, hours=12)
            naive = datetime(moment.year, moment.month, moment.day, 12, tzinfo=self.tz)
            start = local_day_start(naive, self.tz)
            self._midnights[day] = (start - _EPOCH) // _MICRO
        return self._midnights[day]

    def window_starts(self, rows: Ints, window: Window) -> Ints:
        """Return each anchor's window start (microseconds), as :mod:`rules.engine`."""
        if window.unit == "d":
            back = int(window.length) - 1
            return np.array(
                [self.local_midnight(int(d) - back) for d in self.days[rows]], dtype=np.int64
            )
        return self.times[rows] - window.duration // _MICRO


@dataclass
class _Values:
    """One component of some readings against one parameter, as the evaluator compares."""

    present: Bools
    unit_class: Ints  # which published unit the original is in; -1: none
    original: Objects  # the original value (Decimal) or 0
    converted: Objects  # the value in the parameter's own unit (Decimal) or 0
    published: list[Decimal]  # threshold per unit class
    own: Decimal  # threshold in the parameter's own unit


def _values(
    table: _Table, rows: Ints, component: str, param: ResolvedParam, cache: dict[Any, Any]
) -> _Values:
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
    return _Values(present, unit_class, original, converted, published, own)


def _compare(op: Op, left: Objects, right: Objects | Decimal) -> Bools:
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


def _single(values: _Values, op: Op) -> Bools:
    """Compare each reading alone (threshold semantics)."""
    thresholds = np.array(
        [values.published[k] if k >= 0 else values.own for k in values.unit_class], dtype=object
    )
    chosen = np.where(values.unit_class >= 0, values.original, values.converted)
    if len(chosen) == 0:
        return np.zeros(0, dtype=bool)
    return values.present & _compare(op, chosen, thresholds)


def _cumsum(values: Objects | Ints) -> Objects:
    out = np.empty(len(values) + 1, dtype=object)
    out[0] = Decimal(0)
    if len(values):
        out[1:] = np.cumsum(values)
    return out


def _counts(mask: Bools) -> Ints:
    return np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])


def _reduce(ufunc: np.ufunc, values: Objects, starts: Ints, ends: Ints) -> Objects:
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


def _uniform_class(values: _Values, starts: Ints, ends: Ints) -> Ints:
    """Return the unit class every reading with the component in each range shares, or -1."""
    present = _counts(values.present)
    n = present[ends] - present[starts]
    shared = np.full(len(starts), -1, dtype=np.int64)
    for k in range(len(values.published)):
        counts = _counts(values.present & (values.unit_class == k))
        shared = np.where((counts[ends] - counts[starts] == n) & (n > 0), k, shared)
    return shared


def _masked(mask: Bools, values: Objects, fill: Decimal) -> Objects:
    out = np.full(len(values), fill, dtype=object)
    out[mask] = values[mask]
    return out


def _decimals(numbers: Ints) -> Objects:
    return np.array([Decimal(int(x)) for x in numbers], dtype=object)


# --- the reading-anchored kinds, vectorised -----------------------------------------------


class _Held:
    """Which selected readings a kind holds at."""

    def __init__(
        self, table: _Table, params: Mapping[str, ResolvedParam], history: History, key: str
    ) -> None:
        self.table = table
        self.params = params
        self.history = history
        self.key = key  # the rule id, for the engine's per-run caches
        self.cache: dict[Any, Any] = {}

    def threshold(self, types: frozenset[str], f: ThresholdFields) -> tuple[Ints, Bools]:
        rows = self.table.select(types, f.context)
        return rows, self.conditions(rows, f.conditions, f.match)

    def conditions(self, rows: Ints, conditions: Sequence[Condition], match: Match) -> Bools:
        results = [
            _single(_values(self.table, rows, c.component, self.params[c.param], self.cache), c.op)
            for c in conditions
        ]
        if not results:
            return np.zeros(len(rows), dtype=bool)
        stacked = np.vstack(results)
        return np.asarray(
            stacked.any(axis=0) if match is Match.any else stacked.all(axis=0), dtype=bool
        )

    def aggregate(self, types: frozenset[str], f: WindowAggregateFields) -> tuple[Ints, Bools]:
        table = self.table
        rows = table.select(types, f.context)
        times = table.times[rows]
        window = Window.of(self.params, f.window)
        lo = np.searchsorted(times, table.window_starts(rows, window), "left")
        hi = np.searchsorted(times, times, "right")
        days = table.days[rows]
        discard = 0
        if f.discard_first_days is not None:
            discard = int(number_param(self.params, f.discard_first_days))
        # Local days with readings are consecutive in the rank, and rank order is time order.
        _, rank = np.unique(days, return_inverse=True)
        rank = rank.astype(np.int64)
        kept_from = lo
        if len(rows):
            first_day = rank[np.minimum(lo, len(rows) - 1)]
            kept_from = np.maximum(lo, np.searchsorted(rank, first_day + discard, "left"))
        kept_from = np.minimum(kept_from, hi)
        enough = np.ones(len(rows), dtype=bool)
        if f.min_readings is not None:
            enough = (hi - kept_from) >= int(number_param(self.params, f.min_readings))
        results: list[Bools] = []
        for c in f.conditions:
            param = self.params[c.param]
            if f.aggregate == "count":
                present = np.array(
                    [c.component in table.readings[r].values for r in rows], dtype=bool
                )
                counts = _counts(present)
                number = _decimals(counts[hi] - counts[kept_from])
                threshold_count = number_param(self.params, c.param)
                results.append(
                    _compare(c.op, number, threshold_count)
                    if len(rows)
                    else np.zeros(0, dtype=bool)
                )
                continue
            values = _values(table, rows, c.component, param, self.cache)
            # Readings without the component leave the aggregate.
            present_counts = _counts(values.present)
            n = present_counts[hi] - present_counts[kept_from]
            shared = _uniform_class(values, kept_from, hi)
            threshold = np.array(
                [values.published[k] if k >= 0 else values.own for k in shared], dtype=object
            )
            if not len(rows):
                results.append(np.zeros(0, dtype=bool))
                continue
            if f.aggregate == "mean":
                original = _cumsum(_masked(values.present, values.original, Decimal(0)))
                converted = _cumsum(_masked(values.present, values.converted, Decimal(0)))
                sums = np.where(
                    shared >= 0,
                    original[hi] - original[kept_from],
                    converted[hi] - converted[kept_from],
                )
                held = _compare(c.op, sums, threshold * _decimals(n))
            else:
                ufunc = np.minimum if f.aggregate == "min" else np.maximum
                # A reading without the component takes no part: fill with the identity.
                fill = Decimal("Infinity") if f.aggregate == "min" else Decimal("-Infinity")
                in_orig = _masked(values.present, values.original, fill)
                in_conv = _masked(values.present, values.converted, fill)
                aggregate = np.where(
                    shared >= 0,
                    _reduce(ufunc, in_orig, kept_from, hi),
                    _reduce(ufunc, in_conv, kept_from, hi),
                )
                held = _compare(c.op, aggregate, threshold)
            results.append(held & (n > 0))
        if not results:
            return rows, np.zeros(len(rows), dtype=bool)
        stacked = np.vstack(results)
        held_any = stacked.any(axis=0) if f.match is Match.any else stacked.all(axis=0)
        return rows, held_any & enough

    def delta(self, types: frozenset[str], f: DeltaFields) -> tuple[Ints, Bools]:
        table = self.table
        rows = table.select(types, f.context)
        times = table.times[rows]
        window = Window.of(self.params, f.window)
        lo = np.searchsorted(times, table.window_starts(rows, window), "left")
        hi = np.searchsorted(times, times, "left")  # strictly before the anchor
        values = _values(table, rows, f.component, self.params[f.param], self.cache)
        present = values.present
        counts = _counts(present)
        n = counts[hi] - counts[lo]
        ufunc = np.minimum if f.reference is Reference.min else np.maximum
        fill = Decimal("Infinity") if f.reference is Reference.min else Decimal("-Infinity")
        ref_orig = _reduce(ufunc, _masked(present, values.original, fill), lo, hi)
        ref_conv = _reduce(ufunc, _masked(present, values.converted, fill), lo, hi)
        # The set is the anchor and the preceding readings: all in the anchor's class?
        shared = _uniform_class(values, lo, hi)
        shared = np.where(shared == values.unit_class, shared, -1)
        latest = np.where(shared >= 0, values.original, values.converted)
        reference = np.where(shared >= 0, ref_orig, ref_conv)
        threshold = np.array(
            [values.published[k] if k >= 0 else values.own for k in shared], dtype=object
        )
        if not len(rows):
            return rows, np.zeros(0, dtype=bool)
        held = _compare(f.op, latest - _masked(n > 0, reference, Decimal(0)), threshold)
        return rows, held & (n > 0) & present

    def count(self, types: frozenset[str], f: CountFields) -> tuple[Ints, Bools]:
        table = self.table
        rows = table.select(types, f.context)
        events = self.conditions(rows, f.conditions, f.match)
        times = table.times[rows]
        window = Window.of(self.params, f.window)
        lo = np.searchsorted(times, table.window_starts(rows, window), "left")
        hi = np.searchsorted(times, times, "right")
        counts = _counts(events)
        held = events & (counts[hi] - counts[lo] >= int(number_param(self.params, f.min_count)))
        return rows, held

    def baseline(self, key: str, types: frozenset[str], f: BaselineFields) -> tuple[Ints, Bools]:
        """Evaluate each reading with the engine's baseline check (medians do not vectorise)."""
        rows = self.table.select(types, f.context)
        check = BaselineCheck(f"backtest:{key}", sorted(types), f, self.params)
        held = np.zeros(len(rows), dtype=bool)
        for i, row in enumerate(rows):
            outcome = check.outcome(self.table.readings[row], self.history)
            held[i] = outcome is not None and outcome.held
        return rows, held

    def bands(self, rule: BandsRule) -> tuple[Ints, Ints]:
        """Return the rows and the winning band per row (-1: none)."""
        table = self.table
        rows = table.select(frozenset(rule.types), {})
        winner = np.full(len(rows), -1, dtype=np.int64)
        rank = np.zeros(len(rows), dtype=np.int64)
        if rule.reference is not None:
            ref = self.params[rule.reference]
            values = _values(table, rows, rule.component, ref, self.cache)
            chosen = np.where(values.unit_class >= 0, values.original, values.converted)
            best = np.array(
                [values.published[k] if k >= 0 else values.own for k in values.unit_class],
                dtype=object,
            )
        for index, band in enumerate(rule.bands):
            if rule.reference is not None:
                limit = number_param(self.params, band.param)
                held = values.present & (
                    _compare(band.op, chosen * 100, best * limit)
                    if len(rows)
                    else np.zeros(0, dtype=bool)
                )
            else:
                band_values = _values(
                    table, rows, rule.component, self.params[band.param], self.cache
                )
                held = _single(band_values, band.op)
            better = held & (_RANK[band.severity] > rank)
            winner = np.where(better, index, winner)
            rank = np.where(better, _RANK[band.severity], rank)
        return rows, winner

    def part(self, part: Part, name: str) -> tuple[Ints, Bools]:
        types = frozenset(part.types)
        match part.kind:
            case "baseline":
                return self.baseline(f"{self.key}:{name}", types, part)
            case "threshold":
                return self.threshold(types, part)
            case "window_aggregate":
                return self.aggregate(types, part)
            case "delta":
                return self.delta(types, part)
            case "count":
                return self.count(types, part)
        raise TypeError(part.kind)

    def composite(self, rule: CompositeRule) -> tuple[Ints, Bools]:
        table = self.table
        anchors = np.unique(
            np.concatenate([table.select(frozenset(p.types), p.context) for p in rule.parts])
        ).astype(np.int64)
        anchor_times = table.times[anchors]
        results: list[Bools] = []
        for index, part in enumerate(rule.parts, start=1):
            rows, held = self.part(part, part.name or f"part{index}")
            held_times = table.times[rows][held]
            within = 0
            if part.within is not None:
                within = Window.of(self.params, part.within).duration // _MICRO
            lo = np.searchsorted(held_times, anchor_times - within, "left")
            hi = np.searchsorted(held_times, anchor_times, "right")
            results.append(hi > lo)
        stacked = np.vstack(results)
        held_all = np.asarray(
            stacked.any(axis=0) if rule.match is Match.any else stacked.all(axis=0), dtype=bool
        )
        return anchors, held_all


# --- the backtest ----------------------------------------------------------------------------


_Fired = tuple[int, str | None, bool] | tuple[int, str | None, bool, bool, bool]


def _fired(run: ReadingRun, table: _Table, history: History) -> list[_Fired]:
    """Return (row, flag severity, has advice[, in an episode, muted]) for every firing."""
    rule = run.rule
    held = _Held(table, run.params, history, rule.id)
    out: list[_Fired] = []
    severity = rule.flag.severity if rule.flag is not None else None
    if isinstance(rule, BandsRule):
        rows, winner = held.bands(rule)
        for row, band_index in zip(rows, winner, strict=True):
            if band_index >= 0:
                band = rule.bands[band_index]
                advice = (band.advice or rule.advice) is not None
                out.append((int(row), band.severity, advice))
        return out
    if isinstance(rule, ThresholdRule):
        rows, fires = held.threshold(frozenset(rule.types), rule)
        needs_engine = rule.flag is not None and (
            rule.flag.min_count > 1 or rule.flag.escalate is not None
        )
        episode_types = rule.advice_episode.types if rule.advice_episode is not None else ()
        for row in rows[fires]:
            reading = table.readings[row]
            if reading.type in episode_types:
                finding = run.finding(reading, history)
                assert finding is not None
                given = finding.advice is not None and not finding.advice_repeat
                out.append((int(row), finding.flag_severity, given, True, finding.push_muted))
            elif needs_engine:
                finding = run.finding(reading, history)
                assert finding is not None
                out.append((int(row), finding.flag_severity, rule.advice is not None))
            else:
                out.append((int(row), severity, rule.advice is not None))
        return out
    if isinstance(rule, CompositeRule):
        rows, fires = held.composite(rule)
    else:
        match rule.kind:
            case "window_aggregate":
                rows, fires = held.aggregate(frozenset(rule.types), rule)
            case "delta":
                rows, fires = held.delta(frozenset(rule.types), rule)
            case "count":
                rows, fires = held.count(frozenset(rule.types), rule)
            case "baseline":
                rows, fires = held.baseline(rule.id, frozenset(rule.types), rule)
            case _:
                raise TypeError(rule.kind)
    return [(int(row), severity, rule.advice is not None) for row in rows[fires]]


NIGHT = (22, 7)
"""Local hours from which and until which a push wakes people."""


def _burden(
    rule_id: str,
    mode: str,
    cooldown_minutes: int,
    firings: Sequence[BacktestFiring],
    weeks: float,
    episode_days: int,
    zone: tzinfo,
    urgent: bool = True,
) -> RuleBurden:
    active = mode == RuleMode.active
    advice = pushes = night = 0
    last: datetime | None = None
    cooldown = timedelta(minutes=cooldown_minutes)
    for firing in firings:
        if not active or not firing.advice:
            continue
        if (
            firing.episode
            or last is None
            or cooldown_minutes == 0
            or firing.time - last >= cooldown
        ):
            advice += 1
            last = firing.time
            if not firing.muted:
                pushes += 1
                hour = firing.time.astimezone(zone).hour
                # Routine pushes wait out the night (default quiet hours): only urgent wake.
                night += urgent and (hour >= NIGHT[0] or hour < NIGHT[1])
    flagged = np.array(
        [(f.time - _EPOCH) // _MICRO for f in firings if active and f.severity is not None],
        dtype=np.int64,
    )
    gap = timedelta(days=episode_days) // _MICRO
    flags = 0 if len(flagged) == 0 else 1 + int((np.diff(flagged) > gap).sum())
    return RuleBurden(rule_id, mode, len(firings), advice, flags, weeks, pushes, night)


def backtest(
    plan: PlanSpec,
    readings: Sequence[ReadingFact],
    *,
    library: RuleLibrary | None = None,
    tz: str | tzinfo = DEFAULT_TZ,
    start: datetime | None = None,
    end: datetime | None = None,
    episode_days: int = EPISODE_DAYS,
) -> BacktestReport:
    """Run a plan over a history; count firings, advice and flag episodes per rule-week.

    Every reading in ``[start, end]`` (default: the first and last reading) is an anchor;
    readings before ``start`` fill the windows. Time-based rules are evaluated at every
    local day start in ``(start, end]``.
    """
    library = load_library() if library is None else library
    zone = zone_of(tz)
    ordered = [r for r in unique_readings(readings) if spec_for(r.type) is not None]
    if start is None:
        start = ordered[0].time if ordered else _EPOCH
    if end is None:
        end = ordered[-1].time if ordered else start
    weeks = max(end - start, timedelta(days=1)) / timedelta(days=7)
    table = _Table(ordered, zone)
    history = History(ordered, zone)
    runs = plan_runs(plan, library)
    per_rule: dict[str, list[BacktestFiring]] = {run.rule.id: [] for run in runs}
    by_anchor: dict[str, list[BacktestFiring]] = {}
    for run in runs:
        if not isinstance(run, ReadingRun):
            continue
        for row, severity, advice, *episode in _fired(run, table, history):
            reading = table.readings[row]
            if not start <= reading.time <= end:
                continue
            firing = BacktestFiring(
                run.rule.id, reading.id, reading.time, run.mode, severity, advice, *episode
            )
            by_anchor.setdefault(reading.id, []).append(firing)
    # Supersession at one reading, as the evaluator does it.
    for firings in by_anchor.values():
        speakers = {
            other
            for f in firings
            if f.mode == RuleMode.active and (rule := library.get(f.rule_id)) is not None
            for other in rule.supersedes
        }
        for f in firings:
            if f.rule_id in speakers:
                f = replace(f, severity=None, advice=False)
            per_rule[f.rule_id].append(f)
    due = evaluate_due_run(plan, ordered, now=end, tz=zone, library=library, since=start - _MICRO)
    for finding in due.findings:
        per_rule[finding.rule_id].append(
            BacktestFiring(
                finding.rule_id,
                finding.key[1],
                finding.anchor_time,
                finding.mode,
                finding.flag_severity,
                finding.advice is not None,
            )
        )
    burdens: list[BacktestFiring] = []
    rules: list[RuleBurden] = []
    for run in runs:
        firings = sorted(per_rule[run.rule.id], key=lambda f: (f.time, f.anchor))
        burdens.extend(firings)
        rules.append(
            _burden(
                run.rule.id,
                run.mode,
                run.rule.cooldown_minutes,
                firings,
                weeks,
                episode_days,
                zone,
                urgent=any(spec.priority == "urgent" for spec in run.rule.advice_specs()),
            )
        )
    return BacktestReport(
        start=start,
        end=end,
        weeks=weeks,
        readings=sum(1 for r in ordered if start <= r.time <= end),
        episode_days=episode_days,
        rules=tuple(rules),
        firings=tuple(sorted(burdens, key=lambda f: (f.time, f.anchor, f.rule_id))),
    )


__all__ = [
    "EPISODE_DAYS",
    "BacktestFiring",
    "BacktestReport",
    "RuleBurden",
    "backtest",
]
