"""The rule language: one YAML file per rule in ``rules/library/``, validated by pydantic.

A rule is data, never code: conditions name a component (or a CGM metric), a comparison
and a parameter; texts may hold ``string.Template`` placeholders (:data:`TEMPLATE_FIELDS`,
filled by :func:`rules.advice.fill`). Advice is written to the patient and, in
``proxy_title``/``proxy_body``, to a proxy about the patient (:mod:`rules.advice`). Rules form a
discriminated union on ``kind``:

* ``threshold``: one reading against parameters;
* ``window_aggregate``: mean / min / max / count of a component over a window ending at the
  reading, with protocol options (discard the first measuring days, a minimum number of
  readings);
* ``delta``: the reading minus the min (or max) of a preceding window;
* ``count``: how many readings are events (conditions hold) within a window;
* ``bands``: the reading (or its percentage of a reference parameter) against ordered
  bands, each with its own severity and advice; the most severe band that holds wins;
* ``missing_data``: a scheduled type without readings for a number of schedule intervals;
* ``cgm_metric``: CGM metrics (:mod:`rules.cgm`) over whole local days, with a wear
  requirement;
* ``baseline``: the reading against the patient's own baseline, the median of the readings
  of a past window that ends a gap before the anchor (a rise or a fall of at least so much);
* ``composite``: all or any of inline parts (threshold, window aggregate, delta, count,
  baseline), each holding within a time before the anchor.

Windows, counts and protocol options are parameters, so a plan can change them. The
meaning of windows, edges and ties is written at the top of :mod:`rules.evaluate`.

A plan (:mod:`rules.plan`) switches rules on and overrides their parameters;
:func:`validate_plan` checks a plan body against the library and :func:`resolve_params`
gives the parameter values an evaluation uses.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from string import Template
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from rules.catalogue import (
    ACTIVITY_STATES,
    CATALOGUE,
    MeasurementType,
    activity_state,
    convert,
    instrument_name,
    is_accepted_unit,
    same_unit,
)
from rules.plan import PlanBody, PlanRule, Quantity

LIBRARY_DIR = Path(__file__).parent / "library"
"""Where the default rule library lives."""

TEMPLATE_FIELDS = frozenset({"value", "change", "contact"})
"""The placeholders an advice text may use.

``$value`` is the anchor reading as measured, rounded to its precision; for a window
aggregate it is the aggregate (``138/86 mmHg``), for a delta the anchor in the unit of the
change, for missing data the measurement's name, for a CGM rule the metric that fired
(``62 %``). ``$change`` (delta rules only) is the change (``2,1 kg``). ``$contact`` is whom
to call (:func:`rules.advice.contact_text`): the patient's care contact with a phone number,
else a generic "din vårdcentral eller ditt vårdteam".
"""

PROXY_TEMPLATE_FIELDS = TEMPLATE_FIELDS | {"patient", "patient_gen"}
"""The placeholders of a proxy text: also the patient's first name and its genitive."""

WINDOW_UNITS = {"min": 60, "h": 3600, "d": 86400}
"""Units a window parameter may have, in seconds. ``d`` windows are local calendar days."""

PERCENT = "%"
"""The unit of percentages of a reference and of CGM metrics."""

UNITLESS = "1"
"""The unit a plan may give to a parameter that has none."""


class RuleMode(StrEnum):
    """Whether a rule acts (advice and flags), only records, or is switched off."""

    active = "active"
    monitor = "monitor"
    off = "off"


class Priority(StrEnum):
    """How urgent an advice to the patient is."""

    routine = "routine"
    urgent = "urgent"


class Severity(StrEnum):
    """How severe a flag to the care team is."""

    high = "high"
    moderate = "moderate"
    low = "low"


class Op(StrEnum):
    """A comparison of a reading's value (left) with a threshold (right)."""

    lt = "lt"
    le = "le"
    gt = "gt"
    ge = "ge"

    def holds(self, value: Decimal | Fraction, threshold: Decimal | Fraction) -> bool:
        """Tell whether ``value <op> threshold`` holds."""
        match self:
            case Op.lt:
                return value < threshold
            case Op.le:
                return value <= threshold
            case Op.gt:
                return value > threshold
            case Op.ge:
                return value >= threshold

    @property
    def symbol(self) -> str:
        """Return the mathematical symbol of the comparison."""
        return {"lt": "<", "le": "≤", "gt": ">", "ge": "≥"}[self.value]


class Match(StrEnum):
    """Whether any or all of a rule's conditions must hold."""

    any = "any"
    all = "all"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalText(_Model):
    """A text in Swedish (the default) and English."""

    sv: str = Field(min_length=1, max_length=4000)
    en: str = Field(min_length=1, max_length=4000)

    def get(self, lang: str) -> str:
        """Return the text in a language, Swedish when the language is not there."""
        return self.en if lang == "en" else self.sv


Number = Annotated[Decimal, Field(allow_inf_nan=False)]
ParamDefault = Annotated[StrictBool | Number, Field(union_mode="left_to_right")]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class ParamSpec(_Model):
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


class Condition(_Model):
    """``component <op> param``: one comparison of a reading with a parameter.

    With ``context`` the condition applies only to readings with that context (a pulse
    limit ``at rest``; a reading without ``activity`` is at rest, see
    :data:`rules.catalogue.CONTEXT_DEFAULTS`); on other readings it does not hold.
    """

    component: str
    op: Op
    param: Name
    context: Context = Field(default_factory=dict)


class AdviceSpec(_Model):
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


class Escalation(_Model):
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


class FlagSpec(_Model):
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


class AdviceEpisode(_Model):
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
        _check_conditions(params, self.types, (self.condition,))
        for name in (self.end_after, self.max_gap):
            spec = _param(params, name, "advice_episode", units=["min", "h"])
            if spec.min is None or spec.min <= 0:
                raise ValueError(f"advice_episode param {name!r} needs a min above 0")
        if self.muted_by is not None:
            flag = params.get(self.muted_by)
            if flag is None or not flag.is_flag:
                raise ValueError(f"muted_by {self.muted_by!r}: no such flag param")


PUSH_WITHIN = "push_within"
"""The parameter that says how old a reading may be for its advice to be pushed.

Every reading-anchored rule with advice has it, in ``min`` or ``h`` (CLINICAL §7): older
readings still evaluate and flag, and their advice is recorded as stale, never pushed.
"""


class MetricName(StrEnum):
    """A CGM metric a ``cgm_metric`` rule can compare (percentages, 0–100; see rules.cgm)."""

    tir = "tir"
    tbr_3_9 = "tbr_3_9"
    tbr_3_0 = "tbr_3_0"
    tar_10_0 = "tar_10_0"
    tar_13_9 = "tar_13_9"
    cv = "cv"
    gri = "gri"


class MetricCondition(_Model):
    """``metric <op> param``: one CGM metric of the window against a percentage parameter."""

    metric: MetricName
    op: Op
    param: Name


Aggregate = Literal["mean", "min", "max", "count"]
"""How a window of readings is summarised."""


class Reference(StrEnum):
    """What a delta subtracts from the anchor: the min or the max of the preceding window."""

    min = "min"
    max = "max"


def _param(
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


def _check_window(params: Mapping[str, ParamSpec], name: str) -> None:
    spec = _param(params, name, "window", units=WINDOW_UNITS)
    if spec.unit == "d" and not spec.integer:
        raise ValueError(f"window param {name!r} counts local days: it must be an integer")
    if spec.min is None or spec.min <= 0 or spec.max is None:
        raise ValueError(f"window param {name!r} needs a min above 0 and a max")


def _check_components(types: Iterable[str], component: str) -> None:
    for type_ in types:
        if component not in CATALOGUE[MeasurementType(type_)].components:
            raise ValueError(f"component {component!r} is not a component of {type_}")


def _check_conditions(
    params: Mapping[str, ParamSpec], types: Sequence[str], conditions: Iterable[Condition]
) -> None:
    """Check that each condition's component and parameter fit the measurement types."""
    for condition in conditions:
        _check_components(types, condition.component)
        spec = _param(params, condition.param, "condition")
        _check_measure_units(spec, condition.param, types)
        _check_context(types, condition.context)


def _check_measure_units(spec: ParamSpec, name: str, types: Sequence[str]) -> None:
    """A parameter compared with readings must be in (and published in) units of the types."""
    units = [spec.unit, *spec.equivalents]
    for type_ in (spec.type,) if spec.type is not None else types:
        for unit in units:
            if unit is None or not is_accepted_unit(type_, unit):
                raise ValueError(f"param {name!r}: unit {unit!r} is not a unit of {type_}")


def _check_context(types: Sequence[str], context: Mapping[str, str]) -> None:
    if "activity" in context and activity_state(context["activity"]) != context["activity"]:
        raise ValueError(f"activity is one of {sorted(set(ACTIVITY_STATES.values()))}")
    if "instrument" in context:
        if any(t != MeasurementType.symptom_score for t in types):
            raise ValueError("an instrument applies to symptom_score readings only")
        if instrument_name(context["instrument"]) is None:
            raise ValueError(f"unknown instrument {context['instrument']!r}")


# --- the logic of each reading-anchored kind, shared by rules and composite parts ----------


class ThresholdFields(_Model):
    """One reading against parameters."""

    conditions: tuple[Condition, ...] = Field(min_length=1)
    match: Match = Match.any
    # Only readings whose context has these values count (``instrument: breathlessness``).
    context: Context = Field(default_factory=dict)

    def _check_fields(self, params: Mapping[str, ParamSpec], types: Sequence[str]) -> None:
        _check_conditions(params, types, self.conditions)
        _check_context(types, self.context)


class WindowAggregateFields(_Model):
    """An aggregate of a component over the window that ends at the anchor reading."""

    window: Name  # param: h (rolling) or d (local calendar days)
    aggregate: Aggregate
    conditions: tuple[Condition, ...] = Field(min_length=1)  # aggregate <op> param
    match: Match = Match.any
    discard_first_days: Name | None = None  # param (d): measuring days dropped first
    min_readings: Name | None = None  # param: fewer readings left never fire
    context: Context = Field(default_factory=dict)

    def _check_fields(self, params: Mapping[str, ParamSpec], types: Sequence[str]) -> None:
        _check_window(params, self.window)
        if self.aggregate == "count":
            for condition in self.conditions:
                _check_components(types, condition.component)
                _param(params, condition.param, "count", units=[None], integer=True)
        else:
            _check_conditions(params, types, self.conditions)
        if self.discard_first_days is not None:
            _param(params, self.discard_first_days, "discard_first_days", units=["d"], integer=True)
        if self.min_readings is not None:
            _param(params, self.min_readings, "min_readings", units=[None], integer=True)
        _check_context(types, self.context)


class DeltaFields(_Model):
    """The anchor's component minus the min (or max) of the window before it."""

    component: str = "value"
    window: Name  # param: h or d; the window [t − W, t) before the anchor
    reference: Reference = Reference.min
    op: Op
    param: Name  # the change, in a unit of the type
    context: Context = Field(default_factory=dict)

    def _check_fields(self, params: Mapping[str, ParamSpec], types: Sequence[str]) -> None:
        _check_window(params, self.window)
        _check_components(types, self.component)
        spec = _param(params, self.param, "delta")
        _check_measure_units(spec, self.param, types)
        for type_ in types:
            spec_units = CATALOGUE[MeasurementType(type_)].units
            if any(conv.offset for conv in spec_units.values()):
                raise ValueError(f"a delta of {type_} would convert an offset unit")
        _check_context(types, self.context)


class CountFields(_Model):
    """How many readings within a window are events (their conditions hold)."""

    window: Name  # param: h or d; the window [t − W, t] ending at the anchor
    conditions: tuple[Condition, ...] = Field(min_length=1)
    match: Match = Match.any
    min_count: Name  # param: the number of events that fires
    context: Context = Field(default_factory=dict)

    def _check_fields(self, params: Mapping[str, ParamSpec], types: Sequence[str]) -> None:
        _check_window(params, self.window)
        _check_conditions(params, types, self.conditions)
        _param(params, self.min_count, "min_count", units=[None], integer=True)
        _check_context(types, self.context)


class Direction(StrEnum):
    """Which way a baseline change counts: rise (value − baseline) or fall (baseline − value)."""

    rise = "rise"
    fall = "fall"


class BaselineFields(_Model):
    """The anchor's component against the median of the readings of a past window.

    ``window`` (h, min or d) with ``gap`` (the same kind of unit) places the baseline window
    before the anchor (see :mod:`rules.evaluate`); the change ``value − baseline`` (rise) or
    ``baseline − value`` (fall) is compared with ``param``.
    """

    component: str = "value"
    window: Name  # param: h/min (rolling) or d (whole local days)
    gap: Name  # param: the recent time left out of the baseline, in the window's kind of unit
    min_readings: Name  # param: a baseline of fewer readings never fires
    direction: Direction
    op: Op
    param: Name  # the change, in a unit of the type
    context: Context = Field(default_factory=dict)

    def _check_fields(self, params: Mapping[str, ParamSpec], types: Sequence[str]) -> None:
        _check_window(params, self.window)
        gap = _param(params, self.gap, "gap", units=WINDOW_UNITS)
        window_days = params[self.window].unit == "d"
        if (gap.unit == "d") != window_days:
            raise ValueError("a baseline's gap and window must both be local days (d) or not")
        if gap.unit == "d" and not gap.integer:
            raise ValueError(f"gap param {self.gap!r} counts local days: it must be an integer")
        if gap.min is None or gap.min < 0:
            raise ValueError(f"gap param {self.gap!r} needs a min of 0 or more")
        spec = _param(params, self.min_readings, "min_readings", units=[None], integer=True)
        if spec.min is None or spec.min < 1:
            raise ValueError(f"min_readings param {self.min_readings!r} needs a min of 1 or more")
        _check_components(types, self.component)
        spec = _param(params, self.param, "baseline")
        _check_measure_units(spec, self.param, types)
        for type_ in types:
            spec_units = CATALOGUE[MeasurementType(type_)].units
            if any(conv.offset for conv in spec_units.values()):
                raise ValueError(f"a baseline change of {type_} would convert an offset unit")
        _check_context(types, self.context)


class Band(_Model):
    """One band: ``value <op> param``, with its own flag severity and advice."""

    name: Name
    title: LocalText
    op: Op
    param: Name
    severity: Severity
    advice: AdviceSpec | None = None  # None: the rule's advice


class BandsFields(_Model):
    """The reading, or its percentage of a reference parameter, against ordered bands."""

    component: str = "value"
    # A param (a unit of the type): bands compare 100 × value / reference, in percent.
    reference: Name | None = None
    bands: tuple[Band, ...] = Field(min_length=1)

    def _check_fields(self, params: Mapping[str, ParamSpec], types: Sequence[str]) -> None:
        _check_components(types, self.component)
        names = [band.name for band in self.bands]
        if len(names) != len(set(names)):
            raise ValueError("band names must be unique")
        if self.reference is not None:
            spec = _param(params, self.reference, "reference")
            _check_measure_units(spec, self.reference, types)
            if spec.min is None or spec.min <= 0:
                raise ValueError(f"reference param {self.reference!r} needs a min above 0")
        for band in self.bands:
            if self.reference is not None:
                _param(params, band.param, "band", units=[PERCENT])
            else:
                spec = _param(params, band.param, "band")
                _check_measure_units(spec, band.param, types)


# --- rules --------------------------------------------------------------------------------


class RuleBase(_Model):
    """What every kind of rule has."""

    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)
    version: int = Field(ge=1)
    title: LocalText
    description: LocalText
    source: str = Field(min_length=1, max_length=2000, pattern=r"\S")
    types: tuple[MeasurementType, ...] = Field(min_length=1)
    params: dict[Name, ParamSpec] = Field(default_factory=dict)
    advice: AdviceSpec | None = None
    flag: FlagSpec | None = None
    cooldown_minutes: int = Field(default=0, ge=0, le=60 * 24 * 31)
    mode: RuleMode = RuleMode.active
    # Rules whose advice and flag this one replaces when both fire on one reading
    # (glucose-very-low speaks for a reading that is also below glucose-low).
    supersedes: tuple[str, ...] = ()

    @property
    def time_based(self) -> bool:
        """Tell whether the rule is anchored at times (evaluate_due), not at readings."""
        return False

    def texts(self) -> list[LocalText]:
        """Return every text of the rule, for translation checks."""
        texts = [self.title, self.description]
        texts += [spec.description for spec in self.params.values()]
        if self.advice is not None:
            texts += self.advice.texts()
        escalation = self.flag.escalate if self.flag is not None else None
        if escalation is not None and escalation.advice is not None:
            texts += escalation.advice.texts()
        return texts

    def advice_specs(self) -> list[AdviceSpec]:
        """Return every advice the rule can give (its own, escalated, per band)."""
        specs = [self.advice] if self.advice is not None else []
        escalation = self.flag.escalate if self.flag is not None else None
        if escalation is not None and escalation.advice is not None:
            specs.append(escalation.advice)
        return specs

    def _template_fields(self) -> frozenset[str]:
        return TEMPLATE_FIELDS - {"change"}

    def _check_common(self, *, needs_advice_or_flag: bool = True) -> None:
        if needs_advice_or_flag and self.advice is None and self.flag is None:
            raise ValueError("a rule needs advice, a flag or both")
        for advice in self.advice_specs():
            _check_advice(advice, self._template_fields())
        if self.flag is not None and self.flag.escalate is not None:
            escalation = self.flag.escalate
            _check_conditions(self.params, self.types, escalation.conditions)
            for name in escalation.requires:
                spec = self.params.get(name)
                if spec is None or not spec.is_flag:
                    raise ValueError(f"escalation requires {name!r}: no such flag param")
        if self.id in self.supersedes:
            raise ValueError("a rule cannot supersede itself")
        if not self.time_based and self.gives_advice:
            spec = _param(self.params, PUSH_WITHIN, "push freshness", units=["min", "h"])
            if spec.min is None or spec.min <= 0:
                raise ValueError(f"param {PUSH_WITHIN!r} needs a min above 0")

    @property
    def gives_advice(self) -> bool:
        """Tell whether the rule (or one of its bands) gives the patient advice."""
        return self.advice is not None

    def _check_plain_flag(self) -> None:
        """Occurrence counting and escalation belong to threshold rules only."""
        flag = self.flag
        if flag is not None and (flag.min_count > 1 or flag.escalate is not None):
            raise ValueError("only a threshold rule's flag has min_count or escalate")


def _check_advice(advice: AdviceSpec, fields: frozenset[str]) -> None:
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


class ThresholdRule(RuleBase, ThresholdFields):
    """A single-reading rule: fires when the conditions hold for one reading."""

    kind: Literal["threshold"]
    advice_episode: AdviceEpisode | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        self._check_common()
        self._check_fields(self.params, self.types)
        if self.advice_episode is not None:
            if self.advice is None:
                raise ValueError("an advice episode needs advice")
            self.advice_episode.check(self.params, self.types)
        return self


class WindowAggregateRule(RuleBase, WindowAggregateFields):
    """Fires when an aggregate of the window ending at a reading meets its conditions."""

    kind: Literal["window_aggregate"]

    @model_validator(mode="after")
    def _check(self) -> Self:
        self._check_common()
        self._check_plain_flag()
        self._check_fields(self.params, self.types)
        return self


class DeltaRule(RuleBase, DeltaFields):
    """Fires when a reading differs enough from the min (or max) of the window before it."""

    kind: Literal["delta"]

    def _template_fields(self) -> frozenset[str]:
        return TEMPLATE_FIELDS

    @model_validator(mode="after")
    def _check(self) -> Self:
        self._check_common()
        self._check_plain_flag()
        self._check_fields(self.params, self.types)
        return self


class CountRule(RuleBase, CountFields):
    """Fires at an event that completes ``min_count`` events within the window."""

    kind: Literal["count"]

    @model_validator(mode="after")
    def _check(self) -> Self:
        self._check_common()
        self._check_plain_flag()
        self._check_fields(self.params, self.types)
        return self


class BaselineRule(RuleBase, BaselineFields):
    """Fires when a reading has risen (or fallen) enough from the patient's own baseline."""

    kind: Literal["baseline"]

    @model_validator(mode="after")
    def _check(self) -> Self:
        self._check_common()
        self._check_plain_flag()
        self._check_fields(self.params, self.types)
        return self


class BandsRule(RuleBase, BandsFields):
    """Fires when a reading lies in a band; the most severe band that holds speaks."""

    kind: Literal["bands"]

    @property
    def gives_advice(self) -> bool:
        """Tell whether the rule (or one of its bands) gives the patient advice."""
        return self.advice is not None or any(b.advice is not None for b in self.bands)

    def texts(self) -> list[LocalText]:
        """Return every text of the rule, for translation checks."""
        texts = super().texts()
        for band in self.bands:
            texts.append(band.title)
            if band.advice is not None:
                texts += band.advice.texts()
        return texts

    def advice_specs(self) -> list[AdviceSpec]:
        """Return every advice the rule can give (its own, escalated, per band)."""
        specs = super().advice_specs()
        specs += [band.advice for band in self.bands if band.advice is not None]
        return specs

    @model_validator(mode="after")
    def _check(self) -> Self:
        self._check_common(needs_advice_or_flag=False)
        self._check_plain_flag()
        self._check_fields(self.params, self.types)
        return self


class FirstWhen(_Model):
    """Types a reminder names first when the plan lists one of these rules (weight for HF)."""

    rules: tuple[str, ...] = Field(min_length=1)
    types: tuple[MeasurementType, ...] = Field(min_length=1)


class MissingDataRule(RuleBase):
    """Fires for a scheduled type without readings for a number of schedule intervals.

    Time-based: evaluated at the start of each local day (:func:`rules.evaluate.evaluate_due`).
    One reminder a day names every missing type; ``first_when`` puts some types first.
    """

    kind: Literal["missing_data"]
    intervals: Name  # param: how many schedule intervals without a reading
    flag_after_days: Name | None = None  # param (d): the flag waits this long after advice
    first_when: tuple[FirstWhen, ...] = ()

    @property
    def time_based(self) -> bool:
        """Tell whether the rule is anchored at times (evaluate_due), not at readings."""
        return True

    @model_validator(mode="after")
    def _check(self) -> Self:
        self._check_common()
        self._check_plain_flag()
        _param(self.params, self.intervals, "intervals", units=[None], integer=True)
        if self.flag_after_days is not None:
            _param(self.params, self.flag_after_days, "flag_after_days", units=["d"], integer=True)
        for entry in self.first_when:
            if not set(entry.types) <= set(self.types):
                raise ValueError("first_when names a type the rule does not watch")
        return self


class CgmMetricRule(RuleBase):
    """Fires when CGM metrics of the whole local days before a day meet their conditions.

    Time-based: evaluated at the start of each local day (:func:`rules.evaluate.evaluate_due`).
    """

    kind: Literal["cgm_metric"]
    window: Name  # param (d, integer): complete local days before the anchor day
    min_wear: Name  # param (%): sensor wear needed for the window to count
    conditions: tuple[MetricCondition, ...] = Field(min_length=1)
    match: Match = Match.any

    @property
    def time_based(self) -> bool:
        """Tell whether the rule is anchored at times (evaluate_due), not at readings."""
        return True

    @model_validator(mode="after")
    def _check(self) -> Self:
        self._check_common()
        self._check_plain_flag()
        if any(t != MeasurementType.cgm_glucose for t in self.types):
            raise ValueError("a cgm_metric rule reads cgm_glucose only")
        _check_window(self.params, self.window)
        if self.params[self.window].unit != "d":
            raise ValueError("a cgm_metric window counts local days (unit d)")
        _param(self.params, self.min_wear, "min_wear", units=[PERCENT])
        for condition in self.conditions:
            _param(self.params, condition.param, "metric", units=[PERCENT])
        return self


# --- composites -----------------------------------------------------------------------------


class PartBase(_Model):
    """A part of a composite: its types and how long before the anchor it may hold."""

    name: Name | None = None  # prefixes its computed values (default part1, part2, ...)
    types: tuple[MeasurementType, ...] = Field(min_length=1)
    within: Name | None = None  # param (h, d or min); None: at the anchor's time only


class ThresholdPart(PartBase, ThresholdFields):
    """A composite part that holds at an event reading."""

    kind: Literal["threshold"]


class WindowAggregatePart(PartBase, WindowAggregateFields):
    """A composite part that holds where a window aggregate meets its conditions."""

    kind: Literal["window_aggregate"]


class DeltaPart(PartBase, DeltaFields):
    """A composite part that holds where a delta meets its condition."""

    kind: Literal["delta"]


class CountPart(PartBase, CountFields):
    """A composite part that holds where enough events fell within its window."""

    kind: Literal["count"]


class BaselinePart(PartBase, BaselineFields):
    """A composite part that holds where a reading has moved enough from its baseline."""

    kind: Literal["baseline"]


Part = Annotated[
    ThresholdPart | WindowAggregatePart | DeltaPart | CountPart | BaselinePart,
    Field(discriminator="kind"),
]


class CompositeRule(RuleBase):
    """Fires at a reading when all (or any) of its parts hold at that reading's time.

    A part holds at time ``t`` when it holds at some reading of its types timed within
    ``[t − within, t]``; its types' union is the rule's ``types``.
    """

    kind: Literal["composite"]
    match: Match = Match.all
    parts: tuple[Part, ...] = Field(min_length=2, max_length=8)

    @model_validator(mode="after")
    def _check(self) -> Self:
        self._check_common()
        self._check_plain_flag()
        union = {t for part in self.parts for t in part.types}
        if union != set(self.types):
            raise ValueError("a composite's types are the union of its parts' types")
        names = [part.name for part in self.parts if part.name is not None]
        if len(names) != len(set(names)):
            raise ValueError("part names must be unique")
        for part in self.parts:
            part._check_fields(self.params, part.types)
            if part.within is not None:
                spec = _param(self.params, part.within, "within", units=WINDOW_UNITS)
                if spec.unit == "d":
                    raise ValueError("a part's within is a duration (h or min), not local days")
        return self


READING_KINDS = (
    "threshold",
    "window_aggregate",
    "delta",
    "count",
    "bands",
    "baseline",
    "composite",
)
"""The kinds anchored at readings (:func:`rules.evaluate.evaluate`)."""

TIME_KINDS = ("missing_data", "cgm_metric")
"""The kinds anchored at times (:func:`rules.evaluate.evaluate_due`)."""

# The discriminator picks the model from ``kind``.
Rule = Annotated[
    ThresholdRule
    | WindowAggregateRule
    | DeltaRule
    | CountRule
    | BandsRule
    | BaselineRule
    | MissingDataRule
    | CgmMetricRule
    | CompositeRule,
    Field(discriminator="kind"),
]
_RULE = TypeAdapter(Rule)


def _check_template(text: str, fields: frozenset[str] = TEMPLATE_FIELDS) -> None:
    template = Template(text)
    if not template.is_valid():
        raise ValueError(f"invalid $-placeholder in {text!r} (write $$ for a dollar)")
    unknown = set(template.get_identifiers()) - fields
    if unknown:
        raise ValueError(f"unknown placeholders {sorted(unknown)} in {text!r}")


def parse_rule(data: Any) -> Rule:
    """Validate one rule from its parsed YAML or JSON."""
    return _RULE.validate_python(data)


class LibraryError(ValueError):
    """A rule file that does not load: bad YAML, an invalid rule, a duplicate id."""


@dataclass(frozen=True)
class RuleLibrary:
    """The rules a plan can switch on, by id."""

    rules: tuple[Rule, ...]
    _by_id: Mapping[str, Rule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id: dict[str, Rule] = {}
        for rule in self.rules:
            if rule.id in by_id:
                raise LibraryError(f"duplicate rule id {rule.id!r}")
            by_id[rule.id] = rule
        for rule in self.rules:
            for other in rule.supersedes:
                if other not in by_id:
                    raise LibraryError(f"{rule.id} supersedes unknown rule {other!r}")
        object.__setattr__(self, "_by_id", by_id)

    def get(self, rule_id: str) -> Rule | None:
        """Return the rule with this id, or None."""
        return self._by_id.get(rule_id)


def load_library(path: Path | None = None) -> RuleLibrary:
    """Load every ``*.yaml`` rule of a folder (default: the package's ``library/``)."""
    if path is None:
        return _default_library()
    return _load(path)


@functools.cache
def _default_library() -> RuleLibrary:
    return _load(LIBRARY_DIR)


def _load(path: Path) -> RuleLibrary:
    rules: list[Rule] = []
    for file in sorted(path.glob("*.yaml")):
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
            rule = parse_rule(data)
        except (yaml.YAMLError, ValidationError) as exc:
            raise LibraryError(f"{file.name}: {exc}") from exc
        if rule.id != file.stem:
            raise LibraryError(f"{file.name}: the id {rule.id!r} differs from the file name")
        rules.append(rule)
    try:
        return RuleLibrary(rules=tuple(rules))
    except LibraryError as exc:
        raise LibraryError(f"{path}: {exc}") from exc


# --- plans -----------------------------------------------------------------------------


class PlanErrorCode(StrEnum):
    """Why a plan body is refused."""

    unknown_rule = "unknown_rule"
    unknown_param = "unknown_param"
    unknown_unit = "unknown_unit"
    out_of_range = "out_of_range"
    invalid = "invalid"
    duplicate_rule = "duplicate_rule"
    unknown_type = "unknown_type"
    missing_param = "missing_param"


@dataclass(frozen=True)
class PlanError:
    """One problem in a plan body, located like ``rules.0.params.threshold``."""

    loc: str
    code: str
    message: str


@dataclass(frozen=True)
class ResolvedParam:
    """A parameter's value for one evaluation: the plan's override or the rule's default.

    ``equivalents`` holds the published values in other units; they hold only while the
    value is the published one (a plan override in any unit replaces them).
    """

    name: str
    value: Decimal | bool
    unit: str | None
    equivalents: Mapping[str, Decimal] = field(default_factory=dict)
    overridden: bool = False

    def number_in(self, type_name: str, unit: str) -> Decimal:
        """Return the numeric value in a unit: as published there, else converted."""
        if isinstance(self.value, bool):
            raise TypeError(f"parameter {self.name!r} is a flag, not a number")
        if self.unit is None or same_unit(type_name, unit, self.unit):
            return self.value
        for eq_unit, eq_value in self.equivalents.items():
            if same_unit(type_name, unit, eq_unit):
                return eq_value
        return convert(type_name, self.value, self.unit, unit)

    def published_in(self, type_name: str, unit: str) -> Decimal | None:
        """Return the value given for exactly this unit (own or equivalent), else None."""
        if isinstance(self.value, bool) or self.unit is None:
            return None
        if same_unit(type_name, unit, self.unit):
            return self.value
        for eq_unit, eq_value in self.equivalents.items():
            if same_unit(type_name, unit, eq_unit):
                return eq_value
        return None


class PlanParamError(ValueError):
    """A plan parameter that does not fit its rule (the plan was not validated)."""


def _override_parts(spec: ParamSpec, value: Quantity | Decimal) -> tuple[Decimal, str | None]:
    """Split a numeric override into its number and unit (a bare number: the own unit)."""
    if isinstance(value, Quantity):
        return value.value, value.unit
    return value, spec.unit


def _override_problem(
    rule: Rule, spec: ParamSpec, value: Quantity | bool | Decimal
) -> tuple[PlanErrorCode, str] | None:
    """Return why a plan cannot give this value to the parameter, or None when it can."""
    if spec.is_flag or isinstance(value, bool):
        if spec.is_flag and isinstance(value, bool):
            return None
        expected = "true or false" if spec.is_flag else "a number, not true/false"
        return PlanErrorCode.invalid, f"expected {expected}"
    number, unit = _override_parts(spec, value)
    types = spec.units_of(rule.types)
    if types and spec.unit is not None:
        # A unit of the measurement: any unit the rule's types accept, converted.
        assert unit is not None
        if not all(is_accepted_unit(t, unit) for t in types):
            return PlanErrorCode.unknown_unit, (
                f"unit {unit!r} is not accepted for {', '.join(types)}"
            )
        own = convert(types[0], number, unit, spec.unit)
    else:
        # Any other unit (or none) must be given as it is.
        expected = spec.unit if spec.unit is not None else UNITLESS
        if unit is not None and unit != expected:
            return PlanErrorCode.unknown_unit, f"expected unit {expected!r}"
        own = number
    if (spec.min is not None and own < spec.min) or (spec.max is not None and own > spec.max):
        low = "-∞" if spec.min is None else spec.min
        high = "∞" if spec.max is None else spec.max
        return PlanErrorCode.out_of_range, (
            f"must be within {low}..{high} {spec.unit or ''}".rstrip()
        )
    if spec.integer and own != own.to_integral_value():
        return PlanErrorCode.invalid, "expected a whole number"
    return None


def validate_plan(body: PlanBody, library: RuleLibrary) -> list[PlanError]:
    """Check a plan body against the library; return every error (empty: valid)."""
    errors: list[PlanError] = []
    seen: dict[str, int] = {}
    for index, plan_rule in enumerate(body.rules):
        loc = f"rules.{index}"
        if plan_rule.rule in seen:
            errors.append(
                PlanError(
                    f"{loc}.rule",
                    PlanErrorCode.duplicate_rule,
                    f"rule {plan_rule.rule!r} is already at rules.{seen[plan_rule.rule]}",
                )
            )
        else:
            seen[plan_rule.rule] = index
        rule = library.get(plan_rule.rule)
        if rule is None:
            errors.append(
                PlanError(
                    f"{loc}.rule",
                    PlanErrorCode.unknown_rule,
                    f"no rule {plan_rule.rule!r} in the library",
                )
            )
            continue
        for name, value in plan_rule.params.items():
            spec = rule.params.get(name)
            if spec is None:
                known = ", ".join(sorted(rule.params)) or "none"
                errors.append(
                    PlanError(
                        f"{loc}.params.{name}",
                        PlanErrorCode.unknown_param,
                        f"rule {rule.id!r} has no parameter {name!r} (it has: {known})",
                    )
                )
                continue
            problem = _override_problem(rule, spec, value)
            if problem is not None:
                code, message = problem
                errors.append(PlanError(f"{loc}.params.{name}", code, message))
        for name, spec in rule.params.items():
            if spec.required and name not in plan_rule.params:
                errors.append(
                    PlanError(
                        f"{loc}.params.{name}",
                        PlanErrorCode.missing_param,
                        f"rule {rule.id!r} needs the plan to set {name!r}",
                    )
                )
    for index, entry in enumerate(body.schedule):
        if entry.type not in CATALOGUE:
            errors.append(
                PlanError(
                    f"schedule.{index}.type",
                    PlanErrorCode.unknown_type,
                    f"no measurement type {entry.type!r}",
                )
            )
    return errors


def resolve_params(plan_rule: PlanRule, rule: Rule) -> dict[str, ResolvedParam]:
    """Return every parameter of a rule as the plan sets it (else the rule's default).

    An override equal to the published value (the default, or an equivalent in its unit)
    keeps the published pair; any other override stands alone, in its own unit. A plan
    parameter the rule does not have is ignored; one that does not fit raises
    :class:`PlanParamError` (plans are checked with :func:`validate_plan` when saved).
    """
    resolved: dict[str, ResolvedParam] = {}
    for name, spec in rule.params.items():
        published = ResolvedParam(
            name=name, value=spec.default, unit=spec.unit, equivalents=spec.equivalents
        )
        value = plan_rule.params.get(name)
        if value is None:
            resolved[name] = published
            continue
        problem = _override_problem(rule, spec, value)
        if problem is not None:
            raise PlanParamError(f"{rule.id}.{name}: {problem[1]}")
        if isinstance(value, bool):
            resolved[name] = ResolvedParam(name=name, value=value, unit=None, overridden=True)
            continue
        number, unit = _override_parts(spec, value)
        if spec.unit is None or unit is None:
            own_unit = ResolvedParam(name=name, value=number, unit=None, overridden=True)
            resolved[name] = published if number == spec.default else own_unit
        elif published.published_in((spec.units_of(rule.types) or rule.types)[0], unit) == number:
            resolved[name] = published
        else:
            resolved[name] = ResolvedParam(name=name, value=number, unit=unit, overridden=True)
    return resolved


__all__ = [
    "LIBRARY_DIR",
    "PERCENT",
    "PROXY_TEMPLATE_FIELDS",
    "READING_KINDS",
    "TIME_KINDS",
    "WINDOW_UNITS",
    "PUSH_WITHIN",
    "AdviceEpisode",
    "AdviceSpec",
    "Aggregate",
    "Band",
    "BandsRule",
    "BaselinePart",
    "BaselineRule",
    "CgmMetricRule",
    "CompositeRule",
    "Condition",
    "CountPart",
    "CountRule",
    "DeltaPart",
    "DeltaRule",
    "Direction",
    "Escalation",
    "FirstWhen",
    "FlagSpec",
    "LibraryError",
    "LocalText",
    "Match",
    "MetricCondition",
    "MetricName",
    "MissingDataRule",
    "Op",
    "ParamSpec",
    "Part",
    "PlanError",
    "PlanErrorCode",
    "PlanParamError",
    "Priority",
    "Reference",
    "ResolvedParam",
    "Rule",
    "RuleBase",
    "RuleLibrary",
    "RuleMode",
    "Severity",
    "TEMPLATE_FIELDS",
    "ThresholdPart",
    "ThresholdRule",
    "WindowAggregatePart",
    "WindowAggregateRule",
    "load_library",
    "parse_rule",
    "resolve_params",
    "validate_plan",
]
