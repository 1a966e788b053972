"""Plans against the library: :func:`validate_plan` checks a plan body and
:func:`resolve_params` gives the parameter values an evaluation uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from rules.catalogue import CATALOGUE, convert, is_accepted_unit, same_unit
from rules.language.kinds import Rule
from rules.language.library import RuleLibrary
from rules.language.specs import ParamSpec
from rules.language.vocabulary import UNITLESS
from rules.plan import PlanBody, PlanRule, Quantity


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
    "PlanError",
    "PlanErrorCode",
    "PlanParamError",
    "ResolvedParam",
    "resolve_params",
    "validate_plan",
]
