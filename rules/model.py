"""The rule language: one YAML file per rule in ``rules/library/``, validated by pydantic.

A rule is data, never code: conditions name a component, a comparison and a parameter;
texts may hold ``string.Template`` placeholders (only ``$value``) filled by safe
substitution. Rules form a discriminated union on ``kind`` so that later kinds (window
aggregates, deltas, counts, missing data, CGM metrics, composites) slot in beside
``threshold``.

A plan (:mod:`rules.plan`) switches rules on and overrides their parameters;
:func:`validate_plan` checks a plan body against the library and :func:`resolve_params`
gives the parameter values an evaluation uses.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
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
    CATALOGUE,
    MeasurementType,
    convert,
    is_accepted_unit,
    same_unit,
)
from rules.plan import PlanBody, PlanRule, Quantity

LIBRARY_DIR = Path(__file__).parent / "library"
"""Where the default rule library lives."""

TEMPLATE_FIELDS = frozenset({"value"})
"""The placeholders a rule text may use (``$value``: the reading as measured)."""

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

    def holds(self, value: Decimal, threshold: Decimal) -> bool:
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

    @property
    def is_flag(self) -> bool:
        """Tell whether the parameter is a boolean flag rather than a number."""
        return isinstance(self.default, bool)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if isinstance(self.default, bool):
            has_range = self.min is not None or self.max is not None
            if self.unit is not None or self.equivalents or has_range:
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
        return self


class Condition(_Model):
    """``component <op> param``: one comparison of a reading with a parameter."""

    component: str
    op: Op
    param: Name


class AdviceSpec(_Model):
    """The advice a firing rule gives the patient."""

    priority: Priority
    title: LocalText
    body: LocalText


class Escalation(_Model):
    """A more severe flag when every ``requires`` flag is true and the conditions hold."""

    severity: Severity
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

    def _check_common(self) -> None:
        if self.advice is None and self.flag is None:
            raise ValueError("a rule needs advice, a flag or both")
        if self.advice is not None:
            for text in (self.advice.title, self.advice.body):
                for lang_text in (text.sv, text.en):
                    _check_template(lang_text)
        if self.flag is not None and self.flag.escalate is not None:
            escalation = self.flag.escalate
            self._check_conditions(escalation.conditions)
            for name in escalation.requires:
                spec = self.params.get(name)
                if spec is None or not spec.is_flag:
                    raise ValueError(f"escalation requires {name!r}: no such flag param")
        if self.id in self.supersedes:
            raise ValueError("a rule cannot supersede itself")

    def _check_conditions(self, conditions: Iterable[Condition]) -> None:
        for condition in conditions:
            for type_ in self.types:
                if condition.component not in CATALOGUE[type_].components:
                    raise ValueError(
                        f"condition component {condition.component!r} is not a component of {type_}"
                    )
            spec = self.params.get(condition.param)
            if spec is None:
                raise ValueError(f"condition param {condition.param!r} is not defined")
            if spec.is_flag:
                raise ValueError(f"condition param {condition.param!r} is a flag")
            units = [spec.unit, *spec.equivalents]
            for type_ in self.types:
                for unit in units:
                    if unit is None or not is_accepted_unit(type_, unit):
                        raise ValueError(
                            f"param {condition.param!r}: unit {unit!r} is not a unit of {type_}"
                        )


class ThresholdRule(RuleBase):
    """A single-reading rule: fires when the conditions hold for one reading."""

    kind: Literal["threshold"]
    conditions: tuple[Condition, ...] = Field(min_length=1)
    match: Match = Match.any

    @model_validator(mode="after")
    def _check(self) -> Self:
        self._check_common()
        self._check_conditions(self.conditions)
        return self


# The union grows a member per kind; the discriminator picks the model from ``kind``.
Rule = Annotated[ThresholdRule, Field(discriminator="kind")]
_RULE = TypeAdapter(Rule)


def _check_template(text: str) -> None:
    template = Template(text)
    if not template.is_valid():
        raise ValueError(f"invalid $-placeholder in {text!r} (write $$ for a dollar)")
    unknown = set(template.get_identifiers()) - TEMPLATE_FIELDS
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
    if spec.unit is not None and all(is_accepted_unit(t, spec.unit) for t in rule.types):
        # A unit of the measurement: any unit the rule's types accept, converted.
        assert unit is not None
        if not all(is_accepted_unit(t, unit) for t in rule.types):
            return PlanErrorCode.unknown_unit, (
                f"unit {unit!r} is not accepted for {', '.join(rule.types)}"
            )
        own = convert(rule.types[0], number, unit, spec.unit)
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
        elif published.published_in(rule.types[0], unit) == number:
            resolved[name] = published
        else:
            resolved[name] = ResolvedParam(name=name, value=number, unit=unit, overridden=True)
    return resolved


__all__ = [
    "LIBRARY_DIR",
    "AdviceSpec",
    "Condition",
    "Escalation",
    "FlagSpec",
    "LibraryError",
    "LocalText",
    "Match",
    "Op",
    "ParamSpec",
    "PlanError",
    "PlanErrorCode",
    "PlanParamError",
    "Priority",
    "ResolvedParam",
    "Rule",
    "RuleBase",
    "RuleLibrary",
    "RuleMode",
    "Severity",
    "ThresholdRule",
    "load_library",
    "parse_rule",
    "resolve_params",
    "validate_plan",
]
