"""The weekly report's answer: goals and the CGM picture of one ISO week."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ReportPatientOut(BaseModel):
    """Whose report it is."""

    id: str
    display_name: str


class ReportGoalOut(BaseModel):
    """A goal in the week: its measure, progress and daily series (as the goal views write)."""

    id: str
    title: str
    lifecycle: str
    measure: dict[str, Any]
    progress: dict[str, Any]
    series: list[dict[str, Any]]


class WeeklyReportOut(BaseModel):
    """The weekly report: readings per type, goals, and the CGM summary (null without CGM)."""

    model_config = ConfigDict(populate_by_name=True)

    patient: ReportPatientOut
    week: str
    from_: str = Field(alias="from")
    to: str
    as_of: str
    readings: dict[str, int]
    goals: list[ReportGoalOut]
    cgm: dict[str, Any] | None
