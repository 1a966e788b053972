"""Requests and answers of the shared plan: agreements, the care contact, the story, overview."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, RootModel

from app.auth.people import PersonOut
from rules.plan import Responsible, When
from rules.text import MultiLine, SingleLine


class DecisionIn(BaseModel):
    """The patient's (or a proxy's) decision on a proposed agreement."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["agreed", "declined"]
    comment: MultiLine = Field(default="", max_length=2000)


class StatusIn(BaseModel):
    """The team's later status of an agreement: paused, resumed (from paused), or done."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["paused", "resumed", "done"]
    comment: MultiLine = Field(default="", max_length=2000)


class AgreementEventOut(BaseModel):
    """One decision or status change of an agreement."""

    status: str
    comment: str
    at: AwareDatetime
    by: PersonOut | None


class AgreementOut(BaseModel):
    """An agreement with what, when, who, and where it stands."""

    id: str | None
    text: str
    what: str | None = None
    when: When | None = None
    responsible: Responsible | None = None
    status: Literal["proposed", "agreed", "declined", "paused", "done"]
    decided_at: AwareDatetime | None
    decided_by: PersonOut | None
    comment: str
    history: list[AgreementEventOut]


class CareContactIn(BaseModel):
    """Name the patient's care contact (fast vårdkontakt)."""

    model_config = ConfigDict(extra="forbid")

    clinician_id: SingleLine = Field(max_length=64)
    team_id: SingleLine | None = Field(default=None, max_length=64)
    phone: SingleLine = Field(default="", max_length=50)
    hours: SingleLine = Field(default="", max_length=200)


class CareContactTeamOut(BaseModel):
    """A care team and its care unit."""

    id: str
    name: str | None
    care_unit: str | None


class CareContactOut(BaseModel):
    """Whom the patient calls: a named clinician, their team, phone and hours."""

    clinician: PersonOut | None
    title: str
    team: CareContactTeamOut
    phone: str
    hours: str
    set_at: AwareDatetime
    set_by: PersonOut | None


class StoryIn(BaseModel):
    """What matters to the patient, and questions for the next contact."""

    model_config = ConfigDict(extra="forbid")

    what_matters: MultiLine = Field(default="", max_length=4000)
    questions: list[Annotated[MultiLine, Field(min_length=1, max_length=1000)]] = Field(
        default_factory=list, max_length=20
    )


class StoryOut(BaseModel):
    """One version of the patient's story (version 0: nothing written yet)."""

    version: int
    what_matters: str
    questions: list[str]
    written_at: AwareDatetime | None
    written_by: PersonOut | None


class StoryVersionsOut(BaseModel):
    """Every version of the story, newest first."""

    items: list[StoryOut]


Number = int | float  # kept as computed: an int stays an int on the wire


class RuleOut(RootModel[dict[str, Any]]):
    """A rule of the library as the rule language writes it (its fields depend on its kind)."""


class RuleListOut(BaseModel):
    """The rule library."""

    items: list[RuleOut]


class PlanOut(BaseModel):
    """A plan version: rules, measuring schedule and agreements (each with its status today).

    Entries are as the plan language writes them (``rules.plan``); ``created_at`` is an ISO
    string (``+00:00``).
    """

    rules: list[dict[str, Any]]
    schedule: list[dict[str, Any]]
    contact: dict[str, Any] | None = None  # stored only when set: left out otherwise
    agreements: list[dict[str, Any]]
    version: int
    created_at: str
    created_by: str | None


class PlanVersionsOut(BaseModel):
    """Every version of the plan, newest first."""

    items: list[PlanOut]


class RuleBurdenOut(BaseModel):
    """One rule's alert burden over the backtest."""

    rule: str
    mode: str
    firings: int
    advice: int
    flags: int
    firings_per_week: Number
    advice_per_week: Number
    flags_per_week: Number


class BacktestOut(BaseModel):
    """The alert burden a plan would have had over the last days, per rule."""

    model_config = ConfigDict(populate_by_name=True)

    plan: Literal["current", "proposed"]
    from_: str = Field(alias="from")
    to: str
    weeks: Number
    readings: int
    episode_days: int
    rules: list[RuleBurdenOut]
