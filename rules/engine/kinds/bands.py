"""bands: the reading (or its percentage of a reference) against ordered bands; the most
severe band that holds speaks.
"""

from __future__ import annotations

from collections.abc import Sequence

from rules.catalogue import decimal_text
from rules.engine.comparison import (
    Params,
    compare,
    note,
    number_param,
    param_json,
    reason_text,
    value_in,
)
from rules.engine.history import History
from rules.engine.kinds.base import Check, Outcome
from rules.engine.texts import LANGUAGES, number_text, round_to, with_unit
from rules.facts import ReadingFact
from rules.language import SEVERITY_RANK, Band, BandsFields, Condition


class BandsCheck(Check):
    """Which band the reading (or its percentage of a reference) is in; the most severe wins."""

    def __init__(self, key: str, types: Sequence[str], fields: BandsFields, params: Params):
        super().__init__(key, types, {}, params)
        self.fields = fields

    def _outcome(self, anchor: ReadingFact, history: History) -> Outcome:
        f = self.fields
        outcome = Outcome(held=False, used=[anchor])
        held: list[tuple[Band, dict[str, str]]] = []  # each band that holds, with its reason
        if f.reference is None:
            for band in f.bands:
                condition = Condition(component=f.component, op=band.op, param=band.param)
                c = compare(anchor, condition, self.params[band.param])
                note([c], outcome.computed, outcome.thresholds)
                if c is not None and c.held:
                    held.append((band, {lang: reason_text(c, lang) for lang in LANGUAGES}))
        else:
            reference = self.params[f.reference]
            in_unit = value_in(anchor, f.component, reference)
            outcome.thresholds[f.reference] = param_json(reference)
            if in_unit is None:
                return outcome
            value, best, unit = in_unit
            percent = round_to(value * 100 / best, 1)
            outcome.computed[f.component] = decimal_text(value)
            outcome.computed["percent_of_reference"] = decimal_text(percent)
            for band in f.bands:
                limit = number_param(self.params, band.param)
                outcome.thresholds[band.param] = param_json(self.params[band.param])
                if band.op.holds(value * 100, limit * best):  # exact: no division
                    of = {"sv": "av", "en": "of"}
                    reasons = {
                        lang: f"{number_text(percent, lang)} % {band.op.symbol} "
                        f"{number_text(limit, lang)} % ({of[lang]} "
                        f"{with_unit(number_text(best, lang), unit, anchor.type, lang)})"
                        for lang in LANGUAGES
                    }
                    held.append((band, reasons))
        if not held:
            return outcome
        # The most severe band that holds speaks; the first listed among equals.
        winner, reasons = max(held, key=lambda item: SEVERITY_RANK[item[0].severity])
        outcome.held = True
        outcome.band = winner
        outcome.computed["band"] = winner.name
        outcome.reasons = {lang: [winner.title.get(lang), reasons[lang]] for lang in LANGUAGES}
        return outcome


__all__ = ["BandsCheck"]
