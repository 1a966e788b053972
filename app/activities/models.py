"""Activities of a patient, their history of changes, the calendar link and reminders."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdColumn, new_id

MAX_WHERE_OR_HOW = 300
MAX_NOTE = 2000


class Kind(StrEnum):
    """What sort of contact an activity is."""

    VISIT = "visit"
    PHONE = "phone"
    VIDEO = "video"
    HOME_VISIT = "home_visit"
    TEST = "test"


class Status(StrEnum):
    """Where an activity stands; only a planned one can be moved or reminds."""

    PLANNED = "planned"
    DONE = "done"
    CANCELLED = "cancelled"


class Activity(Base):
    """One booked contact: a visit, a call, a video meeting, a home visit or a test."""

    __tablename__ = "activities"
    __table_args__ = (
        Index("ix_activities_patient_start", "patient_id", "start"),
        # The reminder job looks for planned activities starting soon, across patients.
        Index("ix_activities_status_start", "status", "start"),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    kind: Mapped[str] = mapped_column(String(16))
    start: Mapped[datetime]
    end: Mapped[datetime | None]
    who_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    # The care unit ``who`` meets the patient from, as named when booked (the .ics names it).
    who_care_unit: Mapped[str | None] = mapped_column(String(200))
    where_or_how: Mapped[str] = mapped_column(String(MAX_WHERE_OR_HOW))
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    # Bumped by every change: the .ics SEQUENCE, so calendars take the newest version.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(ForeignKey("users.id"))


class ActivityChange(Base):
    """One change to an activity: who, when, and the changed fields before and after."""

    __tablename__ = "activity_changes"
    __table_args__ = (Index("ix_activity_changes_activity_at", "activity_id", "changed_at"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    activity_id: Mapped[str] = mapped_column(ForeignKey("activities.id"))
    changed_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime]
    before: Mapped[dict[str, Any]]
    after: Mapped[dict[str, Any]]


class CalendarLink(Base):
    """A patient's .ics feed link; only the token's sha256 is kept. One active per patient."""

    __tablename__ = "calendar_links"
    __table_args__ = (Index("ix_calendar_links_patient", "patient_id"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    ended_at: Mapped[datetime | None]


class ActivityReminder(Base):
    """A reminder claimed for one start time of an activity: moving it re-arms the reminder."""

    __tablename__ = "activity_reminders"
    __table_args__ = (UniqueConstraint("activity_id", "start"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    activity_id: Mapped[str] = mapped_column(ForeignKey("activities.id"))
    start: Mapped[datetime]
    notifications: Mapped[int] = mapped_column(Integer, default=0)  # outbox rows written
    created_at: Mapped[datetime]
