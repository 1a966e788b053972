"""baseline: the anchor against the patient's own baseline, the median of a past window."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal

from rules.catalogue import decimal_text, display_name, instrument_name, shown
from rules.engine.comparison import Params, number_param, param_json
from rules.engine.days import local_day_start
from rules.engine.history import History, Listed, Window
from rules.engine.kinds.base import Check, Outcome
from rules.engine.texts import LANGUAGES, number_text, shown_pair, with_unit
from rules.facts import ReadingFact
from rules.language import BaselineFields, Direction

_CHANGE_NAMES: Mapping[str, Mapping[str, str]] = {
    "rise": {"sv": "ökning", "en": "rise"},
    "fall": {"sv": "sänkning", "en": "fall"},
}


class BaselineCheck(Check):
    """Whether the anchor is off the patient's own baseline, the median of a past window."""

    def __init__(self, key: str, types: Sequence[str], fields: BaselineFields, params: Params):
        super().__init__(key, types, fields.context, params)
        self.fields = fields
        self.window = Window.of(params, fields.window)
        self.gap = Window.of(params, fields.gap)

    def reach(self) -> tuple[timedelta, timedelta]:
        """Return how far before (and after) an anchor the baseline and its gap reach."""
        if self.window.unit == "d":
            # From the baseline's first local midnight to an anchor at the end of its day.
            days = self.window.length + self.gap.length + 1
            return Window(days, "d").reach, timedelta(0)
        return self.window.duration + self.gap.duration, timedelta(0)

    def bounds(self, anchor: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
        """Return the baseline window ``[start, end)`` of an anchor."""
        if self.window.unit == "d":
            gap = int(self.gap.length)
            end = local_day_start(anchor, tz, gap)
            return local_day_start(anchor, tz, gap + int(self.window.length)), end
        end = anchor - self.gap.duration
        return end - self.window.duration, end

    def _name(self, lang: str) -> str:
        instrument = instrument_name(self.context.get("instrument"))
        if instrument is not None:
            return instrument
        type_name = sorted(self.types)[0]
        return display_name(type_name, lang)

    def _outcome(self, anchor: ReadingFact, history: History) -> Outcome:
        f = self.fields
        param = self.params[f.param]
        start, end = self.bounds(anchor.time, history.tz)
        component = history.series(self.types, self.context).component(f.component)
        first, last = component.span(start, end, end_open=True)  # the baseline readings
        count = last - first
        outcome = Outcome(held=False)
        outcome.thresholds["window"] = self.window.json()
        outcome.thresholds["gap"] = self.gap.json()
        outcome.thresholds[f.min_readings] = param_json(self.params[f.min_readings])
        outcome.thresholds[f.param] = param_json(param)
        outcome.computed["baseline_start"] = start.isoformat()
        outcome.computed["baseline_end"] = end.isoformat()
        outcome.computed["baseline_readings"] = str(count)
        enough = count >= number_param(self.params, f.min_readings)
        if not count or f.component not in anchor.values:
            return outcome
        in_unit = component.in_unit(anchor, first, last, param)
        if in_unit is None:
            return outcome
        values, threshold, unit, latest = in_unit
        median = values.median(first, last)
        change = latest - median if f.direction is Direction.rise else median - latest
        outcome.held = enough and f.op.holds(change, threshold)
        outcome.computed["value"] = decimal_text(latest)
        outcome.computed["baseline"] = decimal_text(median)
        outcome.computed["change"] = decimal_text(change)
        outcome.thresholds[f.param] = {"value": decimal_text(threshold), "unit": unit}
        outcome.used = Listed(component.rows, first, last, anchor)
        if not outcome.held:
            return outcome
        type_name = anchor.type
        for lang in LANGUAGES:
            of = {"sv": "median av", "en": "median of"}[lang]
            readings = {"sv": "mätningar", "en": "readings"}[lang]
            base = {"sv": "baslinje", "en": "baseline"}[lang]

            def text(value: Decimal, lang: str = lang, *, exact: bool = False) -> str:
                # Rounded as measured (a median of weights is 71,2 kg, never 71,15 kg).
                number = number_text(value if exact else shown(type_name, unit, value), lang)
                return with_unit(number, unit, type_name, lang)

            shown_change, shown_threshold = shown_pair(type_name, unit, change, threshold, f.op)
            outcome.reasons[lang] = [
                f"{self._name(lang)} {text(latest)} ({base} {text(median)}, {of} "
                f"{count} {readings}): {_CHANGE_NAMES[f.direction][lang]} "
                f"{text(shown_change, exact=True)} {f.op.symbol} "
                f"{text(shown_threshold, exact=True)}"
            ]
        return outcome


__all__ = ["BaselineCheck"]
