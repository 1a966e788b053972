"""The words of findings and advice: languages, display names, numbers and readings as text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from rules.catalogue import (
    CENSORED,
    decimal_text,
    display_places,
    display_unit,
    rounded,
    shown,
    unit_text,
)
from rules.facts import ReadingFact
from rules.language import Op

LANGUAGES = ("sv", "en")
"""The languages every text is given in; the first is the default."""

COMPONENT_NAMES: Mapping[str, Mapping[str, str]] = {
    "systolic": {"sv": "övertryck", "en": "systolic"},
    "diastolic": {"sv": "undertryck", "en": "diastolic"},
}
_SEVERITY_NAMES: Mapping[str, Mapping[str, str]] = {
    "high": {"sv": "hög", "en": "high"},
    "moderate": {"sv": "måttlig", "en": "moderate"},
    "low": {"sv": "låg", "en": "low"},
}
AGGREGATE_NAMES: Mapping[str, Mapping[str, str]] = {
    "mean": {"sv": "medel", "en": "mean"},
    "min": {"sv": "lägsta", "en": "min"},
    "max": {"sv": "högsta", "en": "max"},
    "count": {"sv": "antal", "en": "count"},
}
METRIC_NAMES: Mapping[str, Mapping[str, str]] = {
    "tir": {"sv": "tid i målområdet 3,9–10,0 mmol/L", "en": "time in range 3.9–10.0 mmol/L"},
    "tbr_3_9": {"sv": "tid under 3,9 mmol/L", "en": "time below 3.9 mmol/L"},
    "tbr_3_0": {"sv": "tid under 3,0 mmol/L", "en": "time below 3.0 mmol/L"},
    "tar_10_0": {"sv": "tid över 10,0 mmol/L", "en": "time above 10.0 mmol/L"},
    "tar_13_9": {"sv": "tid över 13,9 mmol/L", "en": "time above 13.9 mmol/L"},
    "cv": {"sv": "variationskoefficient", "en": "coefficient of variation"},
    "gri": {"sv": "GRI", "en": "GRI"},
}


def number_text(value: Decimal, lang: str) -> str:
    """Return a number as people read it: ``3,8`` in Swedish, ``3.8`` in English."""
    text = decimal_text(value)
    return text.replace(".", ",") if lang == "sv" else text


def with_unit(number: str, unit: str, type_name: str, lang: str) -> str:
    """Return a number with its unit as people read it (no unit for unitless types)."""
    shown = unit_text(type_name, unit, lang)
    return f"{number} {shown}" if shown else number


def round_to(value: Decimal | Fraction, places: int) -> Decimal:
    """Return a value rounded half up to some decimal places."""
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


_CENSORED_WORDS: Mapping[str, Mapping[str, str]] = {
    "below": {"sv": "under", "en": "below"},
    "above": {"sv": "över", "en": "above"},
}


def reading_text(reading: ReadingFact, lang: str) -> str:
    """Return a reading as measured, rounded as people read it: ``185/100 mmHg``, ``3,8 mmol/L``,
    ``under 40 mg/dL`` (a censored sensor value)."""
    values, unit = reading.original_values, reading.original_unit
    if not display_unit(unit) and display_unit(reading.unit):
        values, unit = reading.values, reading.unit  # a fraction shows as a percentage
    text = values_text(reading.type, values, unit, lang)
    side = _CENSORED_WORDS.get(str(reading.context.get(CENSORED)))
    return f"{side[lang]} {text}" if side else text


def values_text(type_name: str, values: Mapping[str, Decimal], unit: str, lang: str) -> str:
    """Return a type's values in a unit as people read them: ``185/100 mmHg``."""
    values = {name: shown(type_name, unit, value) for name, value in values.items()}
    if "systolic" in values and "diastolic" in values:
        number = f"{number_text(values['systolic'], lang)}/{number_text(values['diastolic'], lang)}"
    else:
        number = "/".join(number_text(v, lang) for v in values.values())
    return with_unit(number, unit, type_name, lang)


def shown_pair(
    type_name: str, unit: str, value: Decimal, threshold: Decimal, op: Op
) -> tuple[Decimal, Decimal]:
    """Round a value and its threshold for people, keeping what the comparison said.

    At the measurement's precision a gain of 2.04 kg would read "2,0 kg > 2,0 kg"; then a
    decimal more is shown (at most three more), so an explanation never contradicts itself.
    """
    places = display_places(type_name, unit)
    truth = op.holds(value, threshold)
    for extra in range(4):
        shown_value = rounded(value, places + extra)
        shown_threshold = rounded(threshold, places + extra)
        if op.holds(shown_value, shown_threshold) == truth:
            return shown_value, shown_threshold
    return value, threshold


def spoken_list(words: Sequence[str], lang: str) -> str:
    """Words as a sentence lists them: "vikt, blodtryck och puls"."""
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {'och' if lang == 'sv' else 'and'} {words[-1]}"


__all__ = [
    "AGGREGATE_NAMES",
    "COMPONENT_NAMES",
    "LANGUAGES",
    "METRIC_NAMES",
    "number_text",
    "reading_text",
    "round_to",
    "shown_pair",
    "spoken_list",
    "values_text",
    "with_unit",
]
