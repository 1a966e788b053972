"""The answer of the plan overview."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel

from app.activities.schemas import ActivityOut
from app.plans.schemas import AgreementOut, CareContactOut, StoryOut


class OverviewPatientOut(BaseModel):
    """Whose plan it is."""

    id: str
    display_name: str


class PlanRefOut(BaseModel):
    """Which plan version the overview shows."""

    version: int
    created_at: AwareDatetime
    created_by: str | None


class OverviewOut(BaseModel):
    """The shared plan on one screen."""

    patient: OverviewPatientOut
    plan: PlanRefOut | None
    goals: list[dict[str, Any]]
    agreements: list[AgreementOut]
    activities: list[ActivityOut]
    care_contact: CareContactOut | None
    story: StoryOut
    advice: list[dict[str, Any]]
    as_of: AwareDatetime
