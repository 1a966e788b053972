"""The building blocks of a rule: parameters, conditions, advice, flags and advice episodes,
and the checks that what a rule names fits its parameters and measurement types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from string import Template
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from rules.catalogue import (
    ACTIVITY_STATES,
    CATALOGUE,
    MeasurementType,
    activity_state,
    instrument_name,
    is_accepted_unit,
)
from rules.language.vocabulary import (
    PROXY_TEMPLATE_FIELDS,
    TEMPLATE_FIELDS,
    WINDOW_UNITS,
    Match,
    MetricName,
    Op,
    Priority,
    Severity,
)


class FrozenModel(BaseModel):
    """A spec model: unknown fields are errors, and a loaded spec never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalText(FrozenModel):
    """A text in Swedish (the default) and English."""

    sv: str = Field(min_length=1, max_length=4000)
    en: str = Field(min_length=1, max_length=4000)

    def get(self, lang: str) -> str:
        """Return the text in a language, Swedish when the language is not there."""
        return self.en if lang == "en" else self.sv


Number = Annotated[Decimal, Field(allow_inf_nan=False)]
ParamDefault = Annotated[StrictBool | Number, Field(union_mode="left_to_right")]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class ParamSpec(FrozenModel):
    """A rule parameter: its unit, default, allowed range and published equivalents."""

    unit: str | None = None  # UCUM; None for flags and counts
    default: ParamDefault
    min: Number | None = None
    max: Number | None = None
    # The published, rounded value in another unit (70 mg/dL beside 3.9 mmol/L).
    equivalents: dict[str, Number] = Field(default_factory=dict)
    description: LocalText
    integer: bool = False  # whole numbers only (counts, calendar days)
    required: bool = False  # the plan must set it (a personal best has no sensible default)
    # The measurement type whose units the parameter takes, when the rule reads several
    # (a composite's weight gain in kg or [lb_av]); None: the rule's types.
    type: MeasurementType | None = None

    @property
    def is_flag(self) -> bool:
        """Tell whether the parameter is a boolean flag rather than a number."""
        return isinstance(self.default, bool)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if isinstance(self.default, bool):
            has_range = self.min is not None or self.max is not None
            if self.unit is not None or self.equivalents or has_range or self.integer:
                raise ValueError("a boolean parameter has no unit, range or equivalents")
            return self
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        if (self.min is not None and self.default < self.min) or (
            self.max is not None and self.default > self.max
        ):
            raise ValueError("default is outside min..max")
        if self.equivalents and self.unit is None:
            raise ValueError("equivalents need the parameter's own unit")
        if self.unit in self.equivalents:
            raise ValueError("an equivalent repeats the parameter's own unit")
        if self.integer and self.default != self.default.to_integral_value():
            raise ValueError("the default of an integer parameter is not a whole number")
        if self.type is not None and (
            self.unit is None or not is_accepted_unit(self.type, self.unit)
        ):
            raise ValueError(f"unit {self.unit!r} is not a unit of {self.type}")
        return self

    def units_of(self, rule_types: Iterable[str]) -> tuple[str, ...]:
        """Return the measurement types whose units this parameter takes (may be none)."""
        types = (self.type,) if self.type is not None else tuple(rule_types)
        if self.unit is None or not all(is_accepted_unit(t, self.unit) for t in types):
            return ()
        return types


Context = dict[Name, Annotated[str, Field(min_length=1, max_length=100)]]
"""Context values a reading must have (``instrument: CAT``, ``activity: active``)."""


class Condition(FrozenModel):
    """``component <op> param``: one comparison of a reading with a parameter.

    With ``context`` the condition applies only to readings with that context (a pulse
    limit ``at rest``; a reading without ``activity`` is at rest, see
    :data:`rules.catalogue.CONTEXT_DEFAULTS`); on other readings it does not hold.
    """

    component: str
    op: Op
    param: Name
    context: Context = Field(default_factory=dict)


class AdviceSpec(FrozenModel):
    """The advice a firing rule gives the patient, and the same advice to a proxy.

    ``proxy_title``/``proxy_body`` speak to a relative about the patient by first name
    (``$patient``, ``$patient_gen``), never "din/ditt"; without them a proxy reads the
    patient's texts (every rule of the default library has them).
    """

    priority: Priority
    title: LocalText
    body: LocalText
    proxy_title: LocalText | None = None
    proxy_body: LocalText | None = None

    def texts(self) -> list[LocalText]:
        """Return every text of the advice."""
        texts = [self.title, self.body]
        texts += [t for t in (self.proxy_title, self.proxy_body) if t is not None]
        return texts


class Escalation(FrozenModel):
    """A more severe flag when every ``requires`` flag is true and the conditions hold.

    With ``advice`` the escalated case also gets its own advice (a high-risk fever: contact
    your care today), whether or not the flag itself is raised.
    """

    severity: Severity
    advice: AdviceSpec | None = None
    conditions: tuple[Condition, ...] = ()
    match: Match = Match.all
    requires: tuple[Name, ...] = ()  # boolean parameters that must be true

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.conditions and not self.requires:
            raise ValueError("an escalation needs conditions or required flags")
        return self


class FlagSpec(FrozenModel):
    """The flag a firing rule raises for the care team.

    With ``min_count`` > 1 the flag is raised only when the rule has fired at least that
    many times (occurrences) within ``window_hours``; readings less than
    ``episode_minutes`` apart belong to one occurrence (measuring again after a low is
    not a second low).
    """

    severity: Severity
    min_count: int = Field(default=1, ge=1, le=1000)
    window_hours: int | None = Field(default=None, ge=1, le=24 * 92)
    episode_minutes: int = Field(default=0, ge=0, le=24 * 60)
    escalate: Escalation | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.min_count > 1 and self.window_hours is None:
            raise ValueError("min_count above 1 needs window_hours")
        return self


class AdviceEpisode(FrozenModel):
    """Advice once per episode on a stream of readings (a CGM), not once per reading.

    An episode of ``types`` readings begins at the first reading where ``condition`` holds
    (glucose below 3.9 mmol/L) and ends after ``end_after`` minutes of consecutive readings
    where it does not (CLINICAL §7: ≥ 15 minutes at or above 3.9), or after a gap in the
    stream longer than ``max_gap``. The rule gives advice at the first reading of an episode
    where it fires, never again within that episode; a rule for a deeper level (below 3.0)
    has the same episode condition and so speaks once more when the episode deepens. With
    the flag parameter ``muted_by`` true, that advice is recorded but not pushed (a sensor
    that alarms on its own).
    """

    types: tuple[MeasurementType, ...] = Field(min_length=1)
    condition: Condition
    end_after: Name  # param (min)
    max_gap: Name  # param (min or h)
    muted_by: Name | None = None  # flag param

    def check(self, params: Mapping[str, ParamSpec], rule_types: Sequence[str]) -> None:
        """Check the episode's fields against the rule's parameters and types."""
        if not set(self.types) <= set(rule_types):
            raise ValueError("an advice episode's types must be types of the rule")
        check_conditions(params, self.types, (self.condition,))
        for name in (self.end_after, self.max_gap):
            spec = numeric_param(params, name, "advice_episode", units=["min", "h"])
            if spec.min is None or spec.min <= 0:
                raise ValueError(f"advice_episode param {name!r} needs a min above 0")
        if self.muted_by is not None:
            flag = params.get(self.muted_by)
            if flag is None or not flag.is_flag:
                raise ValueError(f"muted_by {self.muted_by!r}: no such flag param")


class MetricCondition(FrozenModel):
    """``metric <op> param``: one CGM metric of the window against a percentage parameter."""

    metric: MetricName
    op: Op
    param: Name


def numeric_param(
    params: Mapping[str, ParamSpec],
    name: str,
    what: str,
    *,
    units: Iterable[str | None] | None = None,
    integer: bool = False,
) -> ParamSpec:
    """Return a numeric parameter a field names, checking its unit (and wholeness)."""
    spec = params.get(name)
    if spec is None:
        raise ValueError(f"{what} param {name!r} is not defined")
    if spec.is_flag:
        raise ValueError(f"{what} param {name!r} is a flag")
    allowed = None if units is None else list(units)
    if allowed is not None and spec.unit not in allowed:
        raise ValueError(f"{what} param {name!r}: unit {spec.unit!r} is not one of {allowed}")
    if integer and not spec.integer:
        raise ValueError(f"{what} param {name!r} must be an integer parameter")
    return spec


def check_window(params: Mapping[str, ParamSpec], name: str) -> None:
    """Check a window parameter: a window unit, a min above 0, a max, whole days for ``d``."""
    spec = numeric_param(params, name, "window", units=WINDOW_UNITS)
    if spec.unit == "d" and not spec.integer:
        raise ValueError(f"window param {name!r} counts local days: it must be an integer")
    if spec.min is None or spec.min <= 0 or spec.max is None:
        raise ValueError(f"window param {name!r} needs a min above 0 and a max")


def check_components(types: Iterable[str], component: str) -> None:
    """Check that the component is a component of every type."""
    for type_ in types:
        if component not in CATALOGUE[MeasurementType(type_)].components:
            raise ValueError(f"component {component!r} is not a component of {type_}")


def check_conditions(
    params: Mapping[str, ParamSpec], types: Sequence[str], conditions: Iterable[Condition]
) -> None:
    """Check that each condition's component and parameter fit the measurement types."""
    for condition in conditions:
        check_components(types, condition.component)
        spec = numeric_param(params, condition.param, "condition")
        check_measure_units(spec, condition.param, types)
        check_context(types, condition.context)


def check_measure_units(spec: ParamSpec, name: str, types: Sequence[str]) -> None:
    """A parameter compared with readings must be in (and published in) units of the types."""
    units = [spec.unit, *spec.equivalents]
    for type_ in (spec.type,) if spec.type is not None else types:
        for unit in units:
            if unit is None or not is_accepted_unit(type_, unit):
                raise ValueError(f"param {name!r}: unit {unit!r} is not a unit of {type_}")


def check_context(types: Sequence[str], context: Mapping[str, str]) -> None:
    """Check that a condition's context fits the types: an activity or an instrument."""
    if "activity" in context and activity_state(context["activity"]) != context["activity"]:
        raise ValueError(f"activity is one of {sorted(set(ACTIVITY_STATES.values()))}")
    if "instrument" in context:
        if any(t != MeasurementType.symptom_score for t in types):
            raise ValueError("an instrument applies to symptom_score readings only")
        if instrument_name(context["instrument"]) is None:
            raise ValueError(f"unknown instrument {context['instrument']!r}")


def check_advice(advice: AdviceSpec, fields: frozenset[str]) -> None:
    """Check an advice's templates, and that a proxy title and body come together."""
    if (advice.proxy_title is None) != (advice.proxy_body is None):
        raise ValueError("proxy_title and proxy_body come together")
    for text in (advice.title, advice.body):
        for lang_text in (text.sv, text.en):
            _check_template(lang_text, fields)
    proxy_fields = fields | (PROXY_TEMPLATE_FIELDS - TEMPLATE_FIELDS)
    for proxy_text in (advice.proxy_title, advice.proxy_body):
        if proxy_text is not None:
            for lang_text in (proxy_text.sv, proxy_text.en):
                _check_template(lang_text, proxy_fields)


def _check_template(text: str, fields: frozenset[str] = TEMPLATE_FIELDS) -> None:
    template = Template(text)
    if not template.is_valid():
        raise ValueError(f"invalid $-placeholder in {text!r} (write $$ for a dollar)")
    unknown = set(template.get_identifiers()) - fields
    if unknown:
        raise ValueError(f"unknown placeholders {sorted(unknown)} in {text!r}")


__all__ = [
    "AdviceEpisode",
    "AdviceSpec",
    "Condition",
    "Context",
    "Escalation",
    "FlagSpec",
    "FrozenModel",
    "LocalText",
    "MetricCondition",
    "Name",
    "Number",
    "ParamDefault",
    "ParamSpec",
    "check_advice",
    "check_components",
    "check_conditions",
    "check_context",
    "check_measure_units",
    "check_window",
    "numeric_param",
]
