"""delta: the anchor minus the min (or max) of the readings before it in the window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from rules.catalogue import decimal_text, shown
from rules.engine.comparison import Params, param_json
from rules.engine.history import History, Listed, Window
from rules.engine.kinds.base import Check, Outcome
from rules.engine.texts import (
    AGGREGATE_NAMES,
    LANGUAGES,
    number_text,
    shown_pair,
    values_text,
    with_unit,
)
from rules.facts import ReadingFact
from rules.language import DeltaFields, Reference


class DeltaCheck(Check):
    """Whether the anchor minus the min (or max) of the readings before it meets a limit."""

    def __init__(self, key: str, types: Sequence[str], fields: DeltaFields, params: Params):
        super().__init__(key, types, fields.context, params)
        self.fields = fields
        self.window = Window.of(params, fields.window)

    def reach(self) -> tuple[timedelta, timedelta]:
        """Return how far before (and after) an anchor the check reads."""
        return self.window.reach, timedelta(0)

    def _outcome(self, anchor: ReadingFact, history: History) -> Outcome:
        f = self.fields
        param = self.params[f.param]
        start = self.window.start(anchor.time, history.tz)
        component = history.series(self.types, self.context).component(f.component)
        first, last = component.span(start, anchor.time, end_open=True)  # the preceding
        outcome = Outcome(held=False)
        outcome.thresholds["window"] = self.window.json()
        outcome.computed["window_start"] = start.isoformat()
        outcome.computed["preceding_readings"] = str(last - first)
        if first == last or f.component not in anchor.values:
            outcome.thresholds[f.param] = param_json(param)
            return outcome
        in_unit = component.in_unit(anchor, first, last, param)
        if in_unit is None:
            return outcome
        values, threshold, unit, latest = in_unit
        if f.reference is Reference.min:
            reference = values.lowest(first, last)
        else:
            reference = values.highest(first, last)
        delta = latest - reference
        outcome.held = f.op.holds(delta, threshold)
        outcome.used = Listed(component.rows, first, last, anchor)
        outcome.computed["value"] = decimal_text(latest)
        outcome.computed[f"reference_{f.reference}"] = decimal_text(reference)
        outcome.computed["delta"] = decimal_text(delta)
        outcome.thresholds[f.param] = {"value": decimal_text(threshold), "unit": unit}
        # Texts speak in the unit the change was computed in: a weight measured in pounds
        # shows in kilograms beside a gain in kilograms, never both units in one sentence.
        type_name = anchor.type
        shown_delta, shown_threshold = shown_pair(type_name, unit, delta, threshold, f.op)
        outcome.value = {
            lang: values_text(type_name, {f.component: latest}, unit, lang) for lang in LANGUAGES
        }
        outcome.change = {
            lang: values_text(type_name, {f.component: delta}, unit, lang) for lang in LANGUAGES
        }
        for lang in LANGUAGES:
            change = "förändring" if lang == "sv" else "change"
            outcome.reasons[lang] = [
                f"{change} {with_unit(number_text(shown_delta, lang), unit, type_name, lang)} "
                f"({number_text(shown(type_name, unit, latest), lang)} − "
                f"{AGGREGATE_NAMES[f.reference][lang]} "
                f"{number_text(shown(type_name, unit, reference), lang)}) "
                f"{f.op.symbol} "
                f"{with_unit(number_text(shown_threshold, lang), unit, type_name, lang)}"
            ]
        return outcome


__all__ = ["DeltaCheck"]
