"""Comparing one reading with one parameter: units, edges, conditions and their reasons."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rules.catalogue import activity_state, convert, decimal_text, instrument_name, is_accepted_unit
from rules.engine.texts import COMPONENT_NAMES, number_text, shown_pair, with_unit
from rules.facts import ReadingFact
from rules.language import Condition, Match, ResolvedParam

Params = Mapping[str, ResolvedParam]


@dataclass(frozen=True)
class Comparison:
    """One reading's component against one parameter: both numbers, the unit and the result."""

    held: bool
    type_name: str
    component: str
    value: Decimal
    threshold: Decimal
    unit: str
    condition: Condition


def compare(reading: ReadingFact, condition: Condition, param: ResolvedParam) -> Comparison | None:
    """Compare one component of a reading with a parameter (None: nothing to compare)."""
    if condition.context and not context_matches(reading, condition.context):
        return None  # the condition is about other readings (a resting pulse)
    component = condition.component
    in_unit = value_in(reading, component, param)
    if in_unit is None:
        return None
    value, threshold, unit = in_unit
    return Comparison(
        held=condition.op.holds(value, threshold),
        type_name=reading.type,
        component=component,
        value=value,
        threshold=threshold,
        unit=unit,
        condition=condition,
    )


def holds(reading: ReadingFact, condition: Condition, param: ResolvedParam) -> bool:
    """Tell whether a condition holds at a reading, as :func:`compare` would, explaining nothing."""
    if condition.context and not context_matches(reading, condition.context):
        return False
    in_unit = value_in(reading, condition.component, param)
    return in_unit is not None and condition.op.holds(in_unit[0], in_unit[1])


# A condition's component, its comparison and the threshold as published in one unit.
_Direct = tuple[str, Callable[[Any, Any], Any], Decimal]


class Conditions:
    """Conditions asked of many readings, with each answer what :func:`holds` gives.

    Most readings are compared as measured with the value a parameter publishes in their
    unit (``mmol/L`` with 3.9). For each type and unit a reading comes in, that lookup is made
    once here, not once per reading and condition: a threshold is asked of every reading of a
    re-evaluated window, tens of thousands in a dense week or a CGM stream. A reading that
    needs more (a context, a conversion, a component missing as measured) is asked through
    :func:`holds`.
    """

    def __init__(self, conditions: Sequence[Condition], params: Params) -> None:
        self.conditions = tuple(conditions)
        self.params = params
        self._direct: dict[tuple[str, str], tuple[_Direct, ...] | None] = {}

    def each(self, reading: ReadingFact) -> list[bool]:
        """Return whether each condition holds at the reading, in order."""
        key = (reading.type, reading.original_unit)
        try:
            direct = self._direct[key]
        except KeyError:
            direct = self._direct[key] = self._direct_for(*key)
        if direct is not None:
            originals = reading.original_values
            held = []
            for component, compare, threshold in direct:
                value = originals.get(component)
                if value is None:
                    break  # not measured in this unit: value_in converts the canonical value
                held.append(bool(compare(value, threshold)))
            else:
                return held
        return [holds(reading, c, self.params[c.param]) for c in self.conditions]

    def _direct_for(self, type_name: str, unit: str) -> tuple[_Direct, ...] | None:
        """The conditions as compared for readings measured in ``unit``, when each compares
        the value as measured with a published threshold (None: some condition does not)."""
        direct = []
        for condition in self.conditions:
            published = self.params[condition.param].published_in(type_name, unit)
            if condition.context or published is None:
                return None
            direct.append((condition.component, condition.op.function, published))
        return tuple(direct)


def value_in(
    reading: ReadingFact, component: str, param: ResolvedParam
) -> tuple[Decimal, Decimal, str] | None:
    """Return (value, threshold, unit) to compare a reading's component with a parameter."""
    type_name = reading.type
    original = reading.original_values.get(component)
    published = param.published_in(type_name, reading.original_unit)
    if original is not None and published is not None:
        return original, published, reading.original_unit
    if param.unit is None or isinstance(param.value, bool):
        return None
    unit = param.unit
    if original is not None and is_accepted_unit(type_name, reading.original_unit):
        value = convert(type_name, original, reading.original_unit, unit)
    elif component in reading.values:
        value = convert(type_name, reading.values[component], reading.unit, unit)
    else:
        return None
    return value, param.number_in(type_name, unit), unit


def conditions_hold(comparisons: Sequence[Comparison | None], match: Match) -> bool:
    """Tell whether all (or any, as ``match`` says) of the conditions held."""
    held = [c is not None and c.held for c in comparisons]
    return any(held) if match is Match.any else bool(held) and all(held)


def reason_text(comparison: Comparison, lang: str) -> str:
    """Return why a condition held as people read it: ``övertryck 185 > 180 mmHg``."""
    name = COMPONENT_NAMES.get(comparison.component, {}).get(lang)
    shown_value, shown_threshold = shown_pair(
        comparison.type_name,
        comparison.unit,
        comparison.value,
        comparison.threshold,
        comparison.condition.op,
    )
    value = number_text(shown_value, lang)
    threshold = with_unit(
        number_text(shown_threshold, lang), comparison.unit, comparison.type_name, lang
    )
    left = f"{name} {value}" if name else value
    return f"{left} {comparison.condition.op.symbol} {threshold}"


def note(
    comparisons: Iterable[Comparison | None],
    computed: dict[str, str],
    thresholds: dict[str, Mapping[str, str]],
) -> None:
    """Record the compared values and thresholds of a list of comparisons."""
    for c in comparisons:
        if c is None:
            continue
        computed[c.component] = decimal_text(c.value)
        thresholds[c.condition.param] = {
            "value": decimal_text(c.threshold),
            "unit": c.unit,
        }


def param_json(param: ResolvedParam) -> dict[str, str]:
    """Return a parameter's value (and unit) as findings record it."""
    if isinstance(param.value, bool):
        return {"value": "true" if param.value else "false"}
    data = {"value": decimal_text(param.value)}
    if param.unit is not None:
        data["unit"] = param.unit
    return data


def number_param(params: Mapping[str, ResolvedParam], name: str) -> Decimal:
    """Return a numeric parameter's value; a flag parameter is an error."""
    value = params[name].value
    if isinstance(value, bool):
        raise TypeError(f"parameter {name!r} is a flag, not a number")
    return value


def context_matches(reading: ReadingFact, context: Mapping[str, str]) -> bool:
    """Tell whether a reading has the context asked for (activity, instrument, any other key)."""
    for key, wanted in context.items():
        have = reading.context.get(key)
        if key == "activity":
            if activity_state(have) != activity_state(wanted):
                return False
        elif key == "instrument":
            if instrument_name(have) is None or instrument_name(have) != instrument_name(wanted):
                return False
        elif not isinstance(have, str) or have.casefold() != wanted.casefold():
            return False
    return True


__all__ = [
    "Comparison",
    "Conditions",
    "Params",
    "compare",
    "conditions_hold",
    "context_matches",
    "holds",
    "note",
    "number_param",
    "param_json",
    "reason_text",
    "value_in",
]
