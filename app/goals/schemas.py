"""Goals on the wire (DESIGN §4.4): what a caller may send; answers are plain dicts."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

from rules.catalogue import MeasurementType
from rules.progress import Aggregate, Direction
from rules.text import MultiLine, SingleLine

Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
"""A JSON number (an integer is fine); never a string, a boolean, NaN or infinity."""

Title = Annotated[
    SingleLine, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
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


class MeasureOut(BaseModel):
    """What a goal measures: a type, aggregated over a window of days."""

    type: str
    aggregate: str
    window_days: int
    component: str | None


class MilestoneOut(BaseModel):
    """A step on the way to a goal, and whether (and when) it was reached."""

    id: str
    goal_id: str
    title: str
    target: dict[str, Any]
    due: str | None
    achieved_at: str | None
    reached_on: str | None
    percent: int | float | None  # kept as computed: an int stays an int on the wire
    projected_date: str | None


class GoalOut(BaseModel):
    """A goal with its milestones, agreements and progress (times and dates as ISO strings).

    ``target`` and ``progress`` are as the progress engine writes them (``rules.progress``):
    a value is a number, or named components (systolic, diastolic).
    """

    id: str
    patient_id: str
    title: str
    measure: MeasureOut
    target: dict[str, Any]
    start: str
    due: str | None
    lifecycle: str
    personal: bool
    agreements: list[str]
    milestones: list[MilestoneOut]
    progress: dict[str, Any]
    created_at: str
    created_by: str | None
    updated_at: str


class GoalListOut(BaseModel):
    """The patient's goals, oldest first."""

    items: list[GoalOut]


class ProgressPointOut(BaseModel):
    """One local day of a goal's series: the windowed value, the day's own, and its count."""

    date: str
    value: Any
    daily: Any
    count: int


class GoalProgressOut(BaseModel):
    """The series behind a goal's chart: values per day, milestones, progress, projection."""

    model_config = ConfigDict(populate_by_name=True)

    goal_id: str
    title: str
    measure: MeasureOut
    target: dict[str, Any]
    unit: str
    from_: str = Field(alias="from")
    to: str
    series: list[ProgressPointOut]
    milestones: list[dict[str, Any]]
    progress: dict[str, Any]
    projection: dict[str, Any] | None
