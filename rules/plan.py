"""A self-care plan as the core sees it: which rules apply, with which parameters."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, model_validator

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


class Responsible(BaseModel):
    """Who carries out an agreement: the patient, a relative, a clinician or a care team.

    ``id`` names the person or team (the patient's id, a relative's or clinician's user id, a
    team id); the service checks that it exists and relates to the patient and fills in
    ``display_name`` (a value sent in is ignored).
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["patient", "relative", "clinician", "team"]
    id: SingleLine | None = Field(default=None, max_length=64)
    display_name: SingleLine | None = Field(default=None, max_length=200)


class When(BaseModel):
    """When an agreement applies: on one date, or repeatedly (``days``) until a date."""

    model_config = ConfigDict(extra="forbid")

    on: date | None = None
    days: Literal["daily", "weekdays", "weekly"] | None = None
    until: date | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> When:
        if (self.on is None) == (self.days is None):
            raise ValueError("give either 'on' (a date) or 'days' (a repetition), not both")
        if self.on is not None and self.until is not None:
            raise ValueError("'until' goes with 'days', not with 'on'")
        return self


class Agreement(BaseModel):
    """An agreement (överenskommelse) of the plan: what, when, and who is responsible.

    The care team proposes it in a plan version (without ``id``: the service gives it one);
    its decision and later status are records of their own, keyed by ``id``, so a stored plan
    version never changes.
    """

    model_config = ConfigDict(extra="forbid")

    id: SingleLine | None = Field(default=None, max_length=64)
    text: MultiLine = Field(min_length=1, max_length=2000)
    what: SingleLine | None = Field(default=None, max_length=200)
    when: When | None = None
    responsible: Responsible | None = None
    # Shown in answers, ignored when sent back (GET, edit, PUT works):
    status: SingleLine | None = Field(default=None, max_length=16)
    decided_at: AwareDatetime | None = None
    decided_by: dict[str, str | None] | None = None
    comment: MultiLine | None = Field(default=None, max_length=2000)
    history: list[dict[str, Any]] | None = Field(default=None, max_length=1000)


class Contact(BaseModel):
    """Whom the patient contacts about the plan, for plans evaluated outside the service.

    The service keeps the patient's named care contact (fast vårdkontakt) apart from the
    plan and refuses a plan body that carries one; plan files for the command line and
    the backtest may still name a contact here.
    """

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
    "Responsible",
    "ScheduleEntry",
    "When",
]
