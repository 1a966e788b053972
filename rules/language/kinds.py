"""The rules: one model per kind, the composite's parts, and the union :data:`Rule` on ``kind``."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from rules.catalogue import MeasurementType
from rules.language.fields import (
    BandsFields,
    BaselineFields,
    CountFields,
    DeltaFields,
    ThresholdFields,
    WindowAggregateFields,
)
from rules.language.specs import (
    AdviceEpisode,
    AdviceSpec,
    FlagSpec,
    FrozenModel,
    LocalText,
    MetricCondition,
    Name,
    ParamSpec,
    check_advice,
    check_conditions,
    check_window,
    numeric_param,
)
from rules.language.vocabulary import (
    PERCENT,
    PUSH_WITHIN,
    TEMPLATE_FIELDS,
    WINDOW_UNITS,
    Match,
    RuleMode,
)


class RuleBase(FrozenModel):
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
            check_advice(advice, self._template_fields())
        if self.flag is not None and self.flag.escalate is not None:
            escalation = self.flag.escalate
            check_conditions(self.params, self.types, escalation.conditions)
            for name in escalation.requires:
                spec = self.params.get(name)
                if spec is None or not spec.is_flag:
                    raise ValueError(f"escalation requires {name!r}: no such flag param")
        if self.id in self.supersedes:
            raise ValueError("a rule cannot supersede itself")
        if not self.time_based and self.gives_advice:
            spec = numeric_param(self.params, PUSH_WITHIN, "push freshness", units=["min", "h"])
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


class WindowedRule(RuleBase):
    """A rule over a window of readings: its kind's fields, a plain flag, common checks."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        self._check_common()
        self._check_plain_flag()
        self._check_fields(self.params, self.types)  # type: ignore[attr-defined]
        return self


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


class WindowAggregateRule(WindowedRule, WindowAggregateFields):
    """Fires when an aggregate of the window ending at a reading meets its conditions."""

    kind: Literal["window_aggregate"]


class DeltaRule(WindowedRule, DeltaFields):
    """Fires when a reading differs enough from the min (or max) of the window before it."""

    kind: Literal["delta"]

    def _template_fields(self) -> frozenset[str]:
        return TEMPLATE_FIELDS


class CountRule(WindowedRule, CountFields):
    """Fires at an event that completes ``min_count`` events within the window."""

    kind: Literal["count"]


class BaselineRule(WindowedRule, BaselineFields):
    """Fires when a reading has risen (or fallen) enough from the patient's own baseline."""

    kind: Literal["baseline"]


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


class FirstWhen(FrozenModel):
    """Types a reminder names first when the plan lists one of these rules (weight for HF)."""

    rules: tuple[str, ...] = Field(min_length=1)
    types: tuple[MeasurementType, ...] = Field(min_length=1)


class MissingDataRule(RuleBase):
    """Fires for a scheduled type without readings for a number of schedule intervals.

    Time-based: evaluated at the start of each local day (:func:`rules.engine.evaluate_due`).
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
        numeric_param(self.params, self.intervals, "intervals", units=[None], integer=True)
        if self.flag_after_days is not None:
            numeric_param(
                self.params, self.flag_after_days, "flag_after_days", units=["d"], integer=True
            )
        for entry in self.first_when:
            if not set(entry.types) <= set(self.types):
                raise ValueError("first_when names a type the rule does not watch")
        return self


class CgmMetricRule(RuleBase):
    """Fires when CGM metrics of the whole local days before a day meet their conditions.

    Time-based: evaluated at the start of each local day (:func:`rules.engine.evaluate_due`).
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
        check_window(self.params, self.window)
        if self.params[self.window].unit != "d":
            raise ValueError("a cgm_metric window counts local days (unit d)")
        numeric_param(self.params, self.min_wear, "min_wear", units=[PERCENT])
        for condition in self.conditions:
            numeric_param(self.params, condition.param, "metric", units=[PERCENT])
        return self


# --- composites -----------------------------------------------------------------------------


class PartBase(FrozenModel):
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
                spec = numeric_param(self.params, part.within, "within", units=WINDOW_UNITS)
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
"""The kinds anchored at readings (:func:`rules.engine.evaluate`)."""

TIME_KINDS = ("missing_data", "cgm_metric")
"""The kinds anchored at times (:func:`rules.engine.evaluate_due`)."""

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


__all__ = [
    "BandsRule",
    "BaselinePart",
    "BaselineRule",
    "CgmMetricRule",
    "CompositeRule",
    "CountPart",
    "CountRule",
    "DeltaPart",
    "DeltaRule",
    "FirstWhen",
    "MissingDataRule",
    "Part",
    "PartBase",
    "READING_KINDS",
    "Rule",
    "RuleBase",
    "TIME_KINDS",
    "ThresholdPart",
    "ThresholdRule",
    "WindowAggregatePart",
    "WindowAggregateRule",
]
