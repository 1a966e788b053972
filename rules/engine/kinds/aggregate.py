"""window_aggregate: the mean, min, max or count of a component over a window ending at the
anchor, with the protocol options (discarded first days, a minimum number of readings).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from rules.catalogue import decimal_text
from rules.engine.comparison import Params, number_param, param_json
from rules.engine.history import History, Listed, Series, Window
from rules.engine.kinds.aggregate_batch import held_at
from rules.engine.kinds.base import Check, Outcome
from rules.engine.texts import (
    AGGREGATE_NAMES,
    COMPONENT_NAMES,
    LANGUAGES,
    number_text,
    round_to,
    shown_pair,
    values_text,
    with_unit,
)
from rules.facts import ReadingFact
from rules.language import Condition, Match, Op, WindowAggregateFields

# One condition as compared: held, the aggregate, the threshold, their unit and reading type.
Shown = tuple[Condition, bool, Decimal, Decimal, str, str]


@dataclass
class Assessment:
    """The numbers of one anchor's window: what the outcome says, before it is put in words."""

    start: datetime
    series: Series
    in_window: int  # readings in the window
    kept: int  # the series index of the first reading used (after discarded days)
    high: int  # the series index after the anchor's window
    enough: bool
    shown: list[Shown]  # each condition that could be compared
    held: bool
    type_name: str
    shown_unit: str


class AggregateCheck(Check):
    """Whether the mean, min, max or count of a component over the window meets the conditions."""

    def __init__(
        self, key: str, types: Sequence[str], fields: WindowAggregateFields, params: Params
    ):
        super().__init__(key, types, fields.context, params)
        self.fields = fields
        self.window = Window.of(params, fields.window)
        # What every anchor's assessment reads of the parameters, read once: a late week
        # re-assesses ten thousand anchors.
        self.discard = (
            0 if fields.discard_first_days is None
            else int(number_param(params, fields.discard_first_days))
        )  # fmt: skip
        self.min_readings = (
            None if fields.min_readings is None else number_param(params, fields.min_readings)
        )
        self._type_name = next(iter(self.types)) if len(self.types) == 1 else ""

    def reach(self) -> tuple[timedelta, timedelta]:
        """Return how far before (and after) an anchor the check reads."""
        return self.window.reach, timedelta(0)

    def prepare(self, anchors: Sequence[ReadingFact], history: History) -> None:
        """Tell at once whether the check holds at many anchors (see ``aggregate_batch``)."""
        for anchor_id, held in held_at(self, anchors, history).items():
            history.cache[(self.key, "held", anchor_id)] = held

    def holds(self, anchor: ReadingFact, history: History) -> bool:
        """Tell whether the aggregate meets the conditions at an anchor, in numbers only."""
        if not self.selects(anchor):
            return False
        held = history.cache.get((self.key, "held", anchor.id))
        return self._assessment(anchor, history).held if held is None else held

    def _assessment(self, anchor: ReadingFact, history: History) -> Assessment:
        """Return the anchor's window in numbers, assessed once per evaluation."""
        key = (self.key, "assessment", anchor.id)
        if key not in history.cache:
            history.cache[key] = self._assess(anchor, history)
        found: Assessment = history.cache[key]
        return found

    def _assess(self, anchor: ReadingFact, history: History) -> Assessment:
        f = self.fields
        start = self.window.start(anchor.time, history.tz)
        series = history.series(self.types, self.context)
        low, high = series.span(start, anchor.time)
        discard = self.discard
        in_window = high - low
        if discard and not series.in_date_order(low, high):
            # Dropping the first local dates leaves a gap in the range: index what is kept.
            rows = series.readings[low:high]
            history.visit(high - low)
            dropped = set(sorted({history.local_date(r) for r in rows})[:discard])
            series = Series([r for r in rows if history.local_date(r) not in dropped], history)
            kept, high = 0, len(series.readings)
        else:
            kept = series.after_days(low, high, discard)
        enough = self.min_readings is None or high - kept >= self.min_readings
        results: list[bool] = []
        shown: list[Shown] = []
        shown_unit = ""
        type_name = self._type_name
        for condition in f.conditions:
            param = self.params[condition.param]
            component = series.component(condition.component)
            first, last = component.upto[kept], component.upto[high]  # rows with the component
            if f.aggregate == "count":
                aggregate = Decimal(last - first)
                threshold = number_param(self.params, condition.param)
                held = condition.op.holds(aggregate, threshold)
                unit = ""
            else:
                in_unit = None
                if last > first:
                    in_unit = component.in_unit(component.rows[first], first, last, param)
                if in_unit is None:
                    results.append(False)
                    continue
                values, threshold, unit, _ = in_unit
                if f.aggregate == "mean":
                    total = values.total(first, last)
                    held = condition.op.holds(total, threshold * (last - first))
                    aggregate = total / (last - first)
                else:
                    if f.aggregate == "min":
                        aggregate = values.lowest(first, last)
                    else:
                        aggregate = values.highest(first, last)
                    held = condition.op.holds(aggregate, threshold)
                type_name = component.rows[first].type
                shown_unit = unit
            results.append(held)
            shown.append((condition, held, aggregate, threshold, unit, type_name))
        held = any(results) if f.match is Match.any else bool(results) and all(results)
        return Assessment(
            start=start,
            series=series,
            in_window=in_window,
            kept=kept,
            high=high,
            enough=enough,
            shown=shown,
            held=enough and held,
            type_name=type_name,
            shown_unit=shown_unit,
        )

    def _outcome(self, anchor: ReadingFact, history: History) -> Outcome:
        f = self.fields
        a = self._assessment(anchor, history)
        outcome = Outcome(held=a.held)
        outcome.thresholds["window"] = self.window.json()
        if f.discard_first_days is not None:
            outcome.thresholds[f.discard_first_days] = param_json(self.params[f.discard_first_days])
        used = a.high - a.kept
        outcome.computed["window_start"] = a.start.isoformat()
        outcome.computed["readings_in_window"] = str(a.in_window)
        outcome.computed["readings_discarded"] = str(a.in_window - used)
        outcome.computed["readings_used"] = str(used)
        if f.min_readings is not None:
            outcome.thresholds[f.min_readings] = param_json(self.params[f.min_readings])
        for condition, _, aggregate, threshold, unit, _ in a.shown:
            name = f"{f.aggregate}_{condition.component}"
            if f.aggregate == "count":
                outcome.computed[name] = str(aggregate)
                outcome.thresholds[condition.param] = param_json(self.params[condition.param])
                continue
            shown = round_to(aggregate, 2) if f.aggregate == "mean" else aggregate
            outcome.computed[name] = decimal_text(shown)
            outcome.thresholds[condition.param] = {"value": decimal_text(threshold), "unit": unit}
        outcome.used = Listed(a.series.readings, a.kept, a.high)
        if outcome.held:  # only a firing is explained in words
            self._explain(outcome, a.shown, a.type_name, a.shown_unit)
        return outcome

    def _explain(
        self,
        outcome: Outcome,
        shown: list[Shown],
        type_name: str,
        shown_unit: str,
    ) -> None:
        """Write the reasons and the shown values of a firing outcome, as people read them."""
        parts: list[_Part] = []
        for condition, held, aggregate, threshold, unit, condition_type in shown:
            if self.fields.aggregate == "count":
                reason_value, reason_threshold = aggregate, threshold
            else:
                reason_value, reason_threshold = shown_pair(
                    condition_type, unit, aggregate, threshold, condition.op
                )
            # Decimals as their exact text: 135 and 135.0 are equal but read differently.
            parts.append((condition.component, held, condition.op, str(reason_value),
                          str(reason_threshold), unit, condition_type))  # fmt: skip
        reasons, value = _words(self.fields.aggregate, type_name, shown_unit, tuple(parts))
        for lang in LANGUAGES:
            outcome.reasons[lang].extend(reasons[lang])
        if value is not None:
            outcome.value = dict(value)


# One condition as explained: component, held, op, the value and threshold as shown (exact
# Decimal text), their unit and reading type.
_Part = tuple[str, bool, Op, str, str, str, str]


@lru_cache(maxsize=4096)
def _words(
    aggregate: str, type_name: str, shown_unit: str, parts: tuple[_Part, ...]
) -> tuple[dict[str, tuple[str, ...]], dict[str, str] | None]:
    """Return a firing's reasons and shown values in every language.

    Kept by the numbers as shown: a late week of a thousand firings of one rule shows a few
    dozen distinct means, and wording each again was most of explaining it.
    """
    reasons: dict[str, list[str]] = {lang: [] for lang in LANGUAGES}
    shown_values: dict[str, Decimal] = {}
    for component, held, op, value_text, threshold_text, unit, condition_type in parts:
        value, threshold = Decimal(value_text), Decimal(threshold_text)
        if aggregate != "count":
            shown_values[component] = value
        if not held:
            continue
        for lang in LANGUAGES:
            label = COMPONENT_NAMES.get(component, {}).get(lang)
            what = AGGREGATE_NAMES[aggregate][lang]
            left = f"{what} {label}" if label else what
            reasons[lang].append(
                f"{left} {number_text(value, lang)} {op.symbol} "
                f"{with_unit(number_text(threshold, lang), unit, condition_type, lang)}"
            )
    value_words = None
    if shown_values:
        value_words = {
            lang: values_text(type_name, shown_values, shown_unit, lang) for lang in LANGUAGES
        }
    return {lang: tuple(texts) for lang, texts in reasons.items()}, value_words


__all__ = ["AggregateCheck"]
