"""The logic of each reading-anchored kind, shared by rules and composite parts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import Field

from rules.catalogue import CATALOGUE, MeasurementType
from rules.language.specs import (
    AdviceSpec,
    Condition,
    Context,
    FrozenModel,
    LocalText,
    Name,
    ParamSpec,
    check_components,
    check_conditions,
    check_context,
    check_measure_units,
    check_window,
    numeric_param,
)
from rules.language.vocabulary import (
    PERCENT,
    WINDOW_UNITS,
    Aggregate,
    Direction,
    Match,
    Op,
    Reference,
    Severity,
)


class ThresholdFields(FrozenModel):
    """One reading against parameters."""

    conditions: tuple[Condition, ...] = Field(min_length=1)
    match: Match = Match.any
    # Only readings whose context has these values count (``instrument: breathlessness``).
    context: Context = Field(default_factory=dict)

    def _check_fields(self, params: Mapping[str, ParamSpec], types: Sequence[str]) -> None:
        check_conditions(params, types, self.conditions)
        check_context(types, self.context)


class WindowAggregateFields(FrozenModel):
    """An aggregate of a component over the window that ends at the anchor reading."""

    window: Name  # param: h (rolling) or d (local calendar days)
    aggregate: Aggregate
    conditions: tuple[Condition, ...] = Field(min_length=1)  # aggregate <op> param
    match: Match = Match.any
    discard_first_days: Name | None = None  # param (d): measuring days dropped first
    min_readings: Name | None = None  # param: fewer readings left never fire
    context: Context = Field(default_factory=dict)

    def _check_fields(self, params: Mapping[str, ParamSpec], types: Sequence[str]) -> None:
        check_window(params, self.window)
        if self.aggregate == "count":
            for condition in self.conditions:
                check_components(types, condition.component)
                numeric_param(params, condition.param, "count", units=[None], integer=True)
        else:
            check_conditions(params, types, self.conditions)
        if self.discard_first_days is not None:
            numeric_param(
                params, self.discard_first_days, "discard_first_days", units=["d"], integer=True
            )
        if self.min_readings is not None:
            numeric_param(params, self.min_readings, "min_readings", units=[None], integer=True)
        check_context(types, self.context)


class DeltaFields(FrozenModel):
    """The anchor's component minus the min (or max) of the window before it."""

    component: str = "value"
    window: Name  # param: h or d; the window [t − W, t) before the anchor
    reference: Reference = Reference.min
    op: Op
    param: Name  # the change, in a unit of the type
    context: Context = Field(default_factory=dict)

    def _check_fields(self, params: Mapping[str, ParamSpec], types: Sequence[str]) -> None:
        check_window(params, self.window)
        check_components(types, self.component)
        spec = numeric_param(params, self.param, "delta")
        check_measure_units(spec, self.param, types)
        for type_ in types:
            spec_units = CATALOGUE[MeasurementType(type_)].units
            if any(conv.offset for conv in spec_units.values()):
                raise ValueError(f"a delta of {type_} would convert an offset unit")
        check_context(types, self.context)


class CountFields(FrozenModel):
    """How many readings within a window are events (their conditions hold)."""

    window: Name  # param: h or d; the window [t − W, t] ending at the anchor
    conditions: tuple[Condition, ...] = Field(min_length=1)
    match: Match = Match.any
    min_count: Name  # param: the number of events that fires
    context: Context = Field(default_factory=dict)

    def _check_fields(self, params: Mapping[str, ParamSpec], types: Sequence[str]) -> None:
        check_window(params, self.window)
        check_conditions(params, types, self.conditions)
        numeric_param(params, self.min_count, "min_count", units=[None], integer=True)
        check_context(types, self.context)


class BaselineFields(FrozenModel):
    """The anchor's component against the median of the readings of a past window.

    ``window`` (h, min or d) with ``gap`` (the same kind of unit) places the baseline window
    before the anchor (see :mod:`rules.engine`); the change ``value − baseline`` (rise) or
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
        check_window(params, self.window)
        gap = numeric_param(params, self.gap, "gap", units=WINDOW_UNITS)
        window_days = params[self.window].unit == "d"
        if (gap.unit == "d") != window_days:
            raise ValueError("a baseline's gap and window must both be local days (d) or not")
        if gap.unit == "d" and not gap.integer:
            raise ValueError(f"gap param {self.gap!r} counts local days: it must be an integer")
        if gap.min is None or gap.min < 0:
            raise ValueError(f"gap param {self.gap!r} needs a min of 0 or more")
        spec = numeric_param(params, self.min_readings, "min_readings", units=[None], integer=True)
        if spec.min is None or spec.min < 1:
            raise ValueError(f"min_readings param {self.min_readings!r} needs a min of 1 or more")
        check_components(types, self.component)
        spec = numeric_param(params, self.param, "baseline")
        check_measure_units(spec, self.param, types)
        for type_ in types:
            spec_units = CATALOGUE[MeasurementType(type_)].units
            if any(conv.offset for conv in spec_units.values()):
                raise ValueError(f"a baseline change of {type_} would convert an offset unit")
        check_context(types, self.context)


class Band(FrozenModel):
    """One band: ``value <op> param``, with its own flag severity and advice."""

    name: Name
    title: LocalText
    op: Op
    param: Name
    severity: Severity
    advice: AdviceSpec | None = None  # None: the rule's advice


class BandsFields(FrozenModel):
    """The reading, or its percentage of a reference parameter, against ordered bands."""

    component: str = "value"
    # A param (a unit of the type): bands compare 100 × value / reference, in percent.
    reference: Name | None = None
    bands: tuple[Band, ...] = Field(min_length=1)

    def _check_fields(self, params: Mapping[str, ParamSpec], types: Sequence[str]) -> None:
        check_components(types, self.component)
        names = [band.name for band in self.bands]
        if len(names) != len(set(names)):
            raise ValueError("band names must be unique")
        if self.reference is not None:
            spec = numeric_param(params, self.reference, "reference")
            check_measure_units(spec, self.reference, types)
            if spec.min is None or spec.min <= 0:
                raise ValueError(f"reference param {self.reference!r} needs a min above 0")
        for band in self.bands:
            if self.reference is not None:
                numeric_param(params, band.param, "band", units=[PERCENT])
            else:
                spec = numeric_param(params, band.param, "band")
                check_measure_units(spec, band.param, types)


__all__ = [
    "Band",
    "BandsFields",
    "BaselineFields",
    "CountFields",
    "DeltaFields",
    "ThresholdFields",
    "WindowAggregateFields",
]
