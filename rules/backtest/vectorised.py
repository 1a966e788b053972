"""The reading-anchored kinds, vectorised: every reading of a rule's types is an anchor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from rules.backtest.arrays import (
    MICRO,
    Bools,
    Ints,
    Table,
    compare_arrays,
    compare_single,
    decimals,
    exact_cumsum,
    masked,
    reduce_ranges,
    true_counts,
    uniform_class,
    values_of,
)
from rules.engine.comparison import number_param
from rules.engine.history import History, Window
from rules.engine.kinds.baseline import BaselineCheck
from rules.language import (
    SEVERITY_RANK,
    BandsRule,
    BaselineFields,
    CompositeRule,
    Condition,
    CountFields,
    DeltaFields,
    Match,
    Part,
    Reference,
    ResolvedParam,
    ThresholdFields,
    WindowAggregateFields,
)


class Held:
    """Which selected readings a kind holds at."""

    def __init__(
        self, table: Table, params: Mapping[str, ResolvedParam], history: History, key: str
    ) -> None:
        self.table = table
        self.params = params
        self.history = history
        self.key = key  # the rule id, for the engine's per-run caches
        self.cache: dict[Any, Any] = {}

    def threshold(self, types: frozenset[str], f: ThresholdFields) -> tuple[Ints, Bools]:
        """Return the rows of a threshold rule and whether it held at each."""
        rows = self.table.select(types, f.context)
        return rows, self.conditions(rows, f.conditions, f.match)

    def conditions(self, rows: Ints, conditions: Sequence[Condition], match: Match) -> Bools:
        """Return whether the conditions held (all or any, as ``match`` says) at each row."""
        results = [
            compare_single(
                values_of(self.table, rows, c.component, self.params[c.param], self.cache), c.op
            )
            for c in conditions
        ]
        if not results:
            return np.zeros(len(rows), dtype=bool)
        stacked = np.vstack(results)
        return np.asarray(
            stacked.any(axis=0) if match is Match.any else stacked.all(axis=0), dtype=bool
        )

    def aggregate(self, types: frozenset[str], f: WindowAggregateFields) -> tuple[Ints, Bools]:
        """Return the rows of a window aggregate and whether it held at each."""
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
                counts = true_counts(present)
                number = decimals(counts[hi] - counts[kept_from])
                threshold_count = number_param(self.params, c.param)
                results.append(
                    compare_arrays(c.op, number, threshold_count)
                    if len(rows)
                    else np.zeros(0, dtype=bool)
                )
                continue
            values = values_of(table, rows, c.component, param, self.cache)
            # Readings without the component leave the aggregate.
            present_counts = true_counts(values.present)
            n = present_counts[hi] - present_counts[kept_from]
            shared = uniform_class(values, kept_from, hi)
            threshold = np.array(
                [values.published[k] if k >= 0 else values.own for k in shared], dtype=object
            )
            if not len(rows):
                results.append(np.zeros(0, dtype=bool))
                continue
            if f.aggregate == "mean":
                original = exact_cumsum(masked(values.present, values.original, Decimal(0)))
                converted = exact_cumsum(masked(values.present, values.converted, Decimal(0)))
                sums = np.where(
                    shared >= 0,
                    original[hi] - original[kept_from],
                    converted[hi] - converted[kept_from],
                )
                held = compare_arrays(c.op, sums, threshold * decimals(n))
            else:
                ufunc = np.minimum if f.aggregate == "min" else np.maximum
                # A reading without the component takes no part: fill with the identity.
                fill = Decimal("Infinity") if f.aggregate == "min" else Decimal("-Infinity")
                in_orig = masked(values.present, values.original, fill)
                in_conv = masked(values.present, values.converted, fill)
                aggregate = np.where(
                    shared >= 0,
                    reduce_ranges(ufunc, in_orig, kept_from, hi),
                    reduce_ranges(ufunc, in_conv, kept_from, hi),
                )
                held = compare_arrays(c.op, aggregate, threshold)
            results.append(held & (n > 0))
        if not results:
            return rows, np.zeros(len(rows), dtype=bool)
        stacked = np.vstack(results)
        held_any = stacked.any(axis=0) if f.match is Match.any else stacked.all(axis=0)
        return rows, held_any & enough

    def delta(self, types: frozenset[str], f: DeltaFields) -> tuple[Ints, Bools]:
        """Return the rows of a delta rule and whether it held at each."""
        table = self.table
        rows = table.select(types, f.context)
        times = table.times[rows]
        window = Window.of(self.params, f.window)
        lo = np.searchsorted(times, table.window_starts(rows, window), "left")
        hi = np.searchsorted(times, times, "left")  # strictly before the anchor
        values = values_of(table, rows, f.component, self.params[f.param], self.cache)
        present = values.present
        counts = true_counts(present)
        n = counts[hi] - counts[lo]
        ufunc = np.minimum if f.reference is Reference.min else np.maximum
        fill = Decimal("Infinity") if f.reference is Reference.min else Decimal("-Infinity")
        ref_orig = reduce_ranges(ufunc, masked(present, values.original, fill), lo, hi)
        ref_conv = reduce_ranges(ufunc, masked(present, values.converted, fill), lo, hi)
        # The set is the anchor and the preceding readings: all in the anchor's class?
        shared = uniform_class(values, lo, hi)
        shared = np.where(shared == values.unit_class, shared, -1)
        latest = np.where(shared >= 0, values.original, values.converted)
        reference = np.where(shared >= 0, ref_orig, ref_conv)
        threshold = np.array(
            [values.published[k] if k >= 0 else values.own for k in shared], dtype=object
        )
        if not len(rows):
            return rows, np.zeros(0, dtype=bool)
        held = compare_arrays(f.op, latest - masked(n > 0, reference, Decimal(0)), threshold)
        return rows, held & (n > 0) & present

    def count(self, types: frozenset[str], f: CountFields) -> tuple[Ints, Bools]:
        """Return the rows of a count rule and whether it held at each."""
        table = self.table
        rows = table.select(types, f.context)
        events = self.conditions(rows, f.conditions, f.match)
        times = table.times[rows]
        window = Window.of(self.params, f.window)
        lo = np.searchsorted(times, table.window_starts(rows, window), "left")
        hi = np.searchsorted(times, times, "right")
        counts = true_counts(events)
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
            values = values_of(table, rows, rule.component, ref, self.cache)
            chosen = np.where(values.unit_class >= 0, values.original, values.converted)
            best = np.array(
                [values.published[k] if k >= 0 else values.own for k in values.unit_class],
                dtype=object,
            )
        for index, band in enumerate(rule.bands):
            if rule.reference is not None:
                limit = number_param(self.params, band.param)
                held = values.present & (
                    compare_arrays(band.op, chosen * 100, best * limit)
                    if len(rows)
                    else np.zeros(0, dtype=bool)
                )
            else:
                band_values = values_of(
                    table, rows, rule.component, self.params[band.param], self.cache
                )
                held = compare_single(band_values, band.op)
            better = held & (SEVERITY_RANK[band.severity] > rank)
            winner = np.where(better, index, winner)
            rank = np.where(better, SEVERITY_RANK[band.severity], rank)
        return rows, winner

    def part(self, part: Part, name: str) -> tuple[Ints, Bools]:
        """Return the rows of one part of a composite rule and whether it held at each."""
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
        """Return the anchors of a composite rule and whether it held at each."""
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
                within = Window.of(self.params, part.within).duration // MICRO
            lo = np.searchsorted(held_times, anchor_times - within, "left")
            hi = np.searchsorted(held_times, anchor_times, "right")
            results.append(hi > lo)
        stacked = np.vstack(results)
        held_all = np.asarray(
            stacked.any(axis=0) if rule.match is Match.any else stacked.all(axis=0), dtype=bool
        )
        return anchors, held_all


__all__ = ["Held"]
