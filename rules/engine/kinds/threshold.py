"""threshold: one reading against parameters."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rules.engine.comparison import (
    Comparison,
    Conditions,
    Params,
    compare,
    conditions_hold,
    note,
    reason_text,
)
from rules.engine.history import History
from rules.engine.kinds.base import Check, Outcome
from rules.engine.texts import LANGUAGES
from rules.facts import ReadingFact
from rules.language import Condition, Match, ThresholdFields


class ThresholdCheck(Check):
    """Whether one reading meets the conditions against the parameters."""

    def __init__(self, key: str, types: Sequence[str], fields: ThresholdFields, params: Params):
        super().__init__(key, types, fields.context, params)
        self.fields = fields
        self._conditions = Conditions(fields.conditions, params)

    def comparisons(
        self, reading: ReadingFact, conditions: Iterable[Condition]
    ) -> list[Comparison | None]:
        """Return each condition compared with the reading (None: nothing to compare)."""
        return [compare(reading, c, self.params[c.param]) for c in conditions]

    def holds(self, anchor: ReadingFact, history: History) -> bool:
        """Tell whether the conditions hold at a reading, without building its explanation."""
        if not self.selects(anchor):
            return False
        held = self._conditions.each(anchor)
        if self.fields.match is Match.any:
            return any(held)
        return bool(held) and all(held)

    def _outcome(self, anchor: ReadingFact, history: History) -> Outcome:
        comparisons = self.comparisons(anchor, self.fields.conditions)
        outcome = Outcome(held=conditions_hold(comparisons, self.fields.match))
        outcome.comparisons = comparisons
        note(comparisons, outcome.computed, outcome.thresholds)
        outcome.used = [anchor]
        if outcome.held:  # a reading that does not fire is never explained
            for lang in LANGUAGES:
                outcome.reasons[lang] = [reason_text(c, lang) for c in comparisons if c and c.held]
        return outcome


__all__ = ["ThresholdCheck"]
