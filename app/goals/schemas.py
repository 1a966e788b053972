"""Goals on the wire (DESIGN §4.4): what a caller may send; answers are plain dicts."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

from rules.catalogue import MeasurementType
from rules.progress import Aggregate, Direction
from rules.text import MultiLine, SingleLine

Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
"""A JSON number (an integer is fine); never a string, a boolean, NaN or infinity."""

Title = Annotated[
    SingleLine, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
AgreementText = Annotated[
    MultiLine, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)
]
Component = Annotated[SingleLine, StringConstraints(min_length=1, max_length=32)]


class Lifecycle(StrEnum):
    """Where a goal is in its life (FHIR Goal.lifecycleStatus), apart from its achievement."""

    PROPOSED = "proposed"
    ACTIVE = "active"
    ACHIEVED = "achieved"
    CANCELLED = "cancelled"


class MeasureIn(BaseModel):
    """What is measured: the type, how a window of days aggregates, the component."""

    model_config = ConfigDict(extra="forbid")

    type: MeasurementType
    aggregate: Aggregate = Aggregate.MEAN
    window_days: int = Field(default=7, ge=1, le=90, strict=True)
    component: Component | None = Field(
        default=None,
        description="systolic or diastolic for blood pressure; none: every component of "
        "the type (the target then gives a value per component)",
    )


class TargetIn(BaseModel):
    """The target: a value (or one per component), its unit, which side is good."""

    model_config = ConfigDict(extra="forbid")

    value: Number | dict[Component, Number]
    unit: SingleLine = Field(min_length=1, max_length=64)
    direction: Direction
    inclusive: bool = Field(
        default=True,
        strict=True,
        description="false: the target itself does not meet the goal (home BP under 135/85)",
    )


class MilestoneTargetIn(BaseModel):
    """A milestone's target; its direction is the goal's."""

    model_config = ConfigDict(extra="forbid")

    value: Number | dict[Component, Number]
    unit: SingleLine = Field(min_length=1, max_length=64)


class MilestoneIn(BaseModel):
    """A milestone (delmål); in a PATCH, ``id`` keeps an existing one."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=36)
    title: Title
    target: MilestoneTargetIn
    due: date | None = None


class GoalIn(BaseModel):
    """A new goal. ``personal``: the patient's own goal (a patient may add only those)."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    measure: MeasureIn
    target: TargetIn
    start: date | None = Field(default=None, description="default: today, the patient's day")
    due: date | None = None
    lifecycle: Lifecycle = Lifecycle.ACTIVE
    personal: bool = Field(default=False, strict=True)
    milestones: list[MilestoneIn] = Field(default_factory=list, max_length=20)
    agreements: list[AgreementText] = Field(default_factory=list, max_length=20)


class GoalPatch(BaseModel):
    """Changes to a goal; fields left out stay. ``milestones`` replaces the list."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    measure: MeasureIn | None = None
    target: TargetIn | None = None
    start: date | None = None
    due: date | None = None
    lifecycle: Lifecycle | None = None
    milestones: list[MilestoneIn] | None = Field(default=None, max_length=20)
    agreements: list[AgreementText] | None = Field(default=None, max_length=20)
