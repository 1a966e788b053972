"""composite: all or any of inline parts, each holding within a time before the anchor."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from rules.engine.history import History, Series, Window
from rules.engine.kinds.aggregate import AggregateCheck
from rules.engine.kinds.base import Check, Outcome
from rules.engine.kinds.baseline import BaselineCheck
from rules.engine.kinds.count import CountCheck
from rules.engine.kinds.delta import DeltaCheck
from rules.engine.kinds.threshold import ThresholdCheck
from rules.engine.texts import LANGUAGES
from rules.facts import ReadingFact
from rules.language import CompositeRule, Match, Part, ResolvedParam
from rules.ranges import LatestTrue


class CompositeCheck(Check):
    """The composite check: its parts with the time each may hold before the anchor."""

    def __init__(self, key: str, rule: CompositeRule, params: Mapping[str, ResolvedParam]):
        super().__init__(key, rule.types, {}, params)
        self.rule = rule
        self.parts: list[tuple[str, Check, timedelta]] = []
        for index, part in enumerate(rule.parts, start=1):
            name = part.name or f"part{index}"
            within = (
                timedelta(0) if part.within is None else Window.of(params, part.within).duration
            )
            self.parts.append((name, _part_check(f"{key}:{name}", part, params), within))

    def selects(self, reading: ReadingFact) -> bool:
        """Tell whether any part anchors at the reading."""
        return any(check.selects(reading) for _, check, _ in self.parts)

    def anchor_types(self) -> tuple[frozenset[str], bool]:
        """Return the types any part may anchor at; each reading asks the parts."""
        types: frozenset[str] = frozenset().union(*(c.anchor_types()[0] for _, c, _ in self.parts))
        return types, True

    def reach(self) -> tuple[timedelta, timedelta]:
        """Return how far before (and after) an anchor the furthest-reaching part reads."""
        back = max(check.reach()[0] + within for _, check, within in self.parts)
        return back, timedelta(0)

    def _outcome(self, anchor: ReadingFact, history: History) -> Outcome:
        outcome = Outcome(held=False)
        results: list[bool] = []
        held_parts: list[Outcome] = []
        for name, check, within in self.parts:
            found: Outcome | None = None
            at: ReadingFact | None = None
            series = history.series(check.types, check.context)
            low, high = series.span(anchor.time - within, anchor.time)
            latest = self._holding(name, check, series, history).latest(low, high)
            if latest is not None:
                at = series.readings[latest]
                found = check.outcome(at, history)
            results.append(found is not None)
            if found is None or at is None:
                outcome.computed[f"{name}.held"] = "false"
                continue
            outcome.computed[f"{name}.held"] = "true"
            outcome.computed[f"{name}.reading"] = at.id
            for key, value in found.computed.items():
                outcome.computed[f"{name}.{key}"] = value
            outcome.thresholds.update(found.thresholds)
            held_parts.append(found)
            for lang in LANGUAGES:
                outcome.reasons[lang].extend(found.reasons[lang])
        match = self.rule.match
        outcome.held = any(results) if match is Match.any else all(results)
        if outcome.held:  # only a firing lists its readings (see Listed)
            used = {r.id: r for found in held_parts for r in found.used}
            outcome.used = sorted(used.values(), key=lambda r: (r.time, r.id))
        return outcome

    def _holding(self, name: str, check: Check, series: Series, history: History) -> LatestTrue:
        """Return where a part holds in its series: each reading is evaluated at most once."""
        key = (self.key, "holding", name)
        if key not in history.cache:

            def holds(index: int) -> bool:
                return check.holds(series.readings[index], history)

            history.cache[key] = history.counted(LatestTrue(holds))
        found: LatestTrue = history.cache[key]
        return found


def _part_check(key: str, part: Part, params: Mapping[str, ResolvedParam]) -> Check:
    match part.kind:
        case "threshold":
            return ThresholdCheck(key, part.types, part, params)
        case "window_aggregate":
            return AggregateCheck(key, part.types, part, params)
        case "delta":
            return DeltaCheck(key, part.types, part, params)
        case "count":
            return CountCheck(key, part.types, part, params)
        case "baseline":
            return BaselineCheck(key, part.types, part, params)
    raise TypeError(f"unknown part kind {part.kind!r}")


__all__ = ["CompositeCheck"]
