"""count: how many readings in the window are events (the conditions hold)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from rules.catalogue import decimal_text
from rules.engine.comparison import Params, number_param, param_json
from rules.engine.history import History, Listed, Series, Window
from rules.engine.kinds.base import Check, Outcome
from rules.engine.kinds.threshold import ThresholdCheck
from rules.engine.texts import LANGUAGES
from rules.facts import ReadingFact
from rules.language import CountFields, ThresholdFields


class CountCheck(Check):
    """Whether enough readings in the window are events (the conditions hold at them)."""

    def __init__(self, key: str, types: Sequence[str], fields: CountFields, params: Params):
        super().__init__(key, types, fields.context, params)
        self.fields = fields
        self.window = Window.of(params, fields.window)
        self.events = ThresholdCheck(
            f"{key}:event",
            types,
            ThresholdFields(
                conditions=fields.conditions, match=fields.match, context=fields.context
            ),
            params,
        )

    def reach(self) -> tuple[timedelta, timedelta]:
        """Return how far before (and after) an anchor the check reads."""
        return self.window.reach, timedelta(0)

    def holds(self, anchor: ReadingFact, history: History) -> bool:
        """Tell whether the anchor is an event and enough events fall in its window."""
        if not self.events.holds(anchor, history):
            return False
        return self._count(anchor, history)[0] >= number_param(self.params, self.fields.min_count)

    def _count(self, anchor: ReadingFact, history: History) -> tuple[int, Listed, datetime]:
        """Return how many events the anchor's window holds, them, and where it starts."""
        start = self.window.start(anchor.time, history.tz)
        series = history.series(self.types, self.context)
        events, upto = self._events(series, history)
        low, high = series.span(start, anchor.time)
        return upto[high] - upto[low], Listed(events, upto[low], upto[high]), start

    def _outcome(self, anchor: ReadingFact, history: History) -> Outcome:
        f = self.fields
        own = self.events.outcome(anchor, history)
        assert own is not None
        outcome = Outcome(held=False)
        outcome.comparisons = own.comparisons
        outcome.computed.update(own.computed)
        outcome.thresholds.update(own.thresholds)
        outcome.thresholds["window"] = self.window.json()
        outcome.thresholds[f.min_count] = param_json(self.params[f.min_count])
        outcome.used = [anchor]
        if not own.held:
            return outcome
        count, used, start = self._count(anchor, history)
        outcome.computed["count_in_window"] = str(count)
        outcome.computed["window_start"] = start.isoformat()
        outcome.held = count >= number_param(self.params, f.min_count)
        outcome.used = used
        for lang in LANGUAGES:
            times = "gånger" if lang == "sv" else "times"
            outcome.reasons[lang] = [
                *own.reasons[lang],
                f"{count} {times} ≥ {decimal_text(number_param(self.params, f.min_count))}",
            ]
        return outcome

    def _events(self, series: Series, history: History) -> tuple[list[ReadingFact], list[int]]:
        """Return the series' events and, per series index, how many events come before it."""
        key = (self.key, "events", "")
        if key not in history.cache:
            events: list[ReadingFact] = []
            upto = [0]
            for reading in series.readings:
                if self.events.holds(reading, history):
                    events.append(reading)
                upto.append(len(events))
            history.visit(len(series.readings))
            history.cache[key] = (events, upto)
        found: tuple[list[ReadingFact], list[int]] = history.cache[key]
        return found


__all__ = ["CountCheck"]
