"""Requests from a care team to take part in the care of a patient enrolled elsewhere."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdColumn, new_id

MAX_BASIS_NOTE = 2000


class TeamRequestStatus(StrEnum):
    """Where a team request stands; only ``pending`` may still change."""

    PENDING = "pending"
    ACCEPTED = "accepted"  # by the patient (or a proxy with the agree scope)
    DECLINED = "declined"
    CONFIRMED = "confirmed"  # by an administrator, with a basis note


class TeamRequest(Base):
    """A team asked to join a patient's care; no access until accepted or confirmed.

    At most one pending request per (patient, team): the partial unique index holds it even
    when two clinicians of the team ask at once.
    """

    __tablename__ = "team_requests"
    __table_args__ = (
        Index(
            "uq_team_requests_pending",
            "patient_id",
            "team_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("care_teams.id"))
    status: Mapped[str] = mapped_column(String(16), default=TeamRequestStatus.PENDING)
    requested_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    basis_note: Mapped[str | None] = mapped_column(String(MAX_BASIS_NOTE))
