"""Patients, the organisations and care units that care for them, and care teams."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdColumn, new_id
from rules.engine import DEFAULT_TZ


class Organisation(Base):
    """A region or a municipality (huvudman)."""

    __tablename__ = "organisations"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # region | municipality


class CareUnit(Base):
    """A vårdcentral, a clinic or a municipal home-care unit."""

    __tablename__ = "care_units"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    name: Mapped[str] = mapped_column(String(200))


class CareTeam(Base):
    """The clinicians of a care unit who share the care of a set of patients."""

    __tablename__ = "care_teams"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    care_unit_id: Mapped[str] = mapped_column(ForeignKey("care_units.id"))
    name: Mapped[str] = mapped_column(String(200))
    # Whom advice tells the patient to call when the plan names no contact ("" : none).
    phone: Mapped[str] = mapped_column(String(50), default="", server_default="")


class TeamMember(Base):
    """A clinician's membership of a care team."""

    __tablename__ = "team_members"

    team_id: Mapped[str] = mapped_column(ForeignKey("care_teams.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    since: Mapped[datetime]


class Patient(Base):
    """A person with a self-care plan. ``user_id`` links the patient's own login."""

    __tablename__ = "patients"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    personnummer: Mapped[str] = mapped_column(String(12), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TZ)
    language: Mapped[str] = mapped_column(String(8), default="sv")
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), unique=True)
    created_at: Mapped[datetime]


class TeamPatient(Base):
    """A patient's enrolment with a care team."""

    __tablename__ = "team_patients"

    team_id: Mapped[str] = mapped_column(ForeignKey("care_teams.id"), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), primary_key=True, index=True)
    enrolled_at: Mapped[datetime]
    enrolled_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
