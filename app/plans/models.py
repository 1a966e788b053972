"""Self-care plans (every change a new, immutable version) and the shared plan around them.

Agreements keep their decisions as records of their own; the care contact and the patient's
own words (the story) are versioned by time and number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdColumn, new_id


class PlanVersion(Base):
    """One version of a patient's plan; never updated after insert."""

    __tablename__ = "plan_versions"
    __table_args__ = (UniqueConstraint("patient_id", "version"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))


class AgreementRecord(Base):
    """An agreement as the team proposed it, keyed by the id the plan versions carry.

    ``content`` is what was proposed (text, what, when, responsible); it never changes, so a
    changed agreement is a new one. Its decision and status live in ``agreement_events``.
    """

    __tablename__ = "agreements"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    content: Mapped[dict[str, Any]]
    proposed_in: Mapped[int] = mapped_column(Integer)  # the plan version that proposed it
    proposed_at: Mapped[datetime]
    proposed_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))


class AgreementEvent(Base):
    """A decision on an agreement (agreed, declined) or a later status (paused, done, resumed).

    Appended, never updated: the agreement's status is its latest event (by ``seq``).
    """

    __tablename__ = "agreement_events"
    __table_args__ = (Index("ix_agreement_events_agreement_seq", "agreement_id", "seq"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"))
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "decision" (patient side) or "status" (team)
    status: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    actor_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    actor_care_unit: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime]


class CareContactRecord(Base):
    """The named care contact (fast vårdkontakt); every change a row, the newest counts."""

    __tablename__ = "care_contacts"
    __table_args__ = (Index("ix_care_contacts_patient_seq", "patient_id", "seq"),)

    # The newest by insertion counts, whatever clocks said: a sequence, not set_at.
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    clinician_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    team_id: Mapped[str] = mapped_column(ForeignKey("care_teams.id"))
    phone: Mapped[str] = mapped_column(String(50), default="")
    hours: Mapped[str] = mapped_column(String(200), default="")
    set_at: Mapped[datetime]
    set_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))


class StoryVersion(Base):
    """One version of what matters to the patient and their questions for the next contact."""

    __tablename__ = "story_versions"
    __table_args__ = (UniqueConstraint("patient_id", "version"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    version: Mapped[int] = mapped_column(Integer)
    what_matters: Mapped[str] = mapped_column(Text, default="")
    questions: Mapped[list[str]]
    written_at: Mapped[datetime]
    written_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
