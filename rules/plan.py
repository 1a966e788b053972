"""A self-care plan as the core sees it: which rules apply, with which parameters."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool

from rules.text import MultiLine, SingleLine


class Quantity(BaseModel):
    """A number with its UCUM unit, e.g. ``{"value": 88, "unit": "%"}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: Decimal = Field(allow_inf_nan=False)
    unit: str


# A plan parameter: a quantity with its unit, a bare number (meaning the parameter's own
# unit), or a flag.
ParamValue = Annotated[Quantity | StrictBool | Decimal, Field(union_mode="left_to_right")]


class PlanRule(BaseModel):
    """One rule switched on in a plan, with the parameters that override its defaults."""

    model_config = ConfigDict(extra="forbid")

    rule: SingleLine
    params: dict[str, ParamValue] = Field(default_factory=dict)
    mode: Literal["active", "monitor", "off"] | None = None  # None: the rule's own mode


class ScheduleEntry(BaseModel):
    """When the patient is asked to measure a type, in the patient's local time."""

    model_config = ConfigDict(extra="forbid")

    type: SingleLine
    times: list[Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]] = Field(
        default_factory=list
    )
    days: Literal["daily", "weekdays", "weekly"] = "daily"


class Agreement(BaseModel):
    """An agreement (överenskommelse) between the patient and the care team."""

    model_config = ConfigDict(extra="forbid")

    text: MultiLine = Field(min_length=1, max_length=2000)


class Contact(BaseModel):
    """Whom the patient contacts about the plan."""

    model_config = ConfigDict(extra="forbid")

    name: SingleLine = Field(max_length=200)
    role: SingleLine = Field(default="", max_length=200)
    phone: SingleLine = Field(default="", max_length=50)


class PlanBody(BaseModel):
    """The editable content of a plan version (the body of ``PUT plan``)."""

    model_config = ConfigDict(extra="forbid")

    rules: list[PlanRule] = Field(default_factory=list, max_length=100)
    schedule: list[ScheduleEntry] = Field(default_factory=list, max_length=50)
    agreements: list[Agreement] = Field(default_factory=list, max_length=50)
    contact: Contact | None = None


class PlanSpec(PlanBody):
    """A stored, immutable plan version.

    ``effective_from`` is when the version (or the first version of the plan) came into
    force; time-based rules report no data as missing for days before it. None: always.
    """

    version: int
    effective_from: AwareDatetime | None = None


__all__ = [
    "Agreement",
    "Contact",
    "ParamValue",
    "PlanBody",
    "PlanRule",
    "PlanSpec",
    "Quantity",
    "ScheduleEntry",
]
