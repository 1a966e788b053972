"""Goals (mål) and milestones (delmål) of a plan, with their computed progress."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdColumn, new_id


class Goal(Base):
    """A measurable goal; lifecycle (proposed…cancelled) is kept apart from achievement."""

    __tablename__ = "goals"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    measure: Mapped[dict[str, Any]]  # {"type","aggregate","window_days","component"}
    target: Mapped[dict[str, Any]]  # {"value","unit","direction","inclusive"}
    start: Mapped[date] = mapped_column(Date)  # FHIR Goal.startDate; progress counts from it
    due: Mapped[date | None] = mapped_column(Date)
    lifecycle: Mapped[str] = mapped_column(String(16), default="proposed")
    personal: Mapped[bool] = mapped_column(Boolean, default=False)
    agreements: Mapped[list[str]]
    progress: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime]


class Milestone(Base):
    """A step on the way to a goal, with its own target and date."""

    __tablename__ = "milestones"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    goal_id: Mapped[str] = mapped_column(ForeignKey("goals.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    target: Mapped[dict[str, Any]]
    due: Mapped[date | None] = mapped_column(Date)
    achieved_at: Mapped[datetime | None]
