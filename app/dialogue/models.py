"""Messages of a patient's thread."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdColumn, new_id

MAX_BODY = 4000


class Side(StrEnum):
    """Which side of the thread wrote a message."""

    PATIENT = "patient"  # the patient, or a proxy with the message scope
    CARE_TEAM = "care_team"


class Message(Base):
    """One message, stored as written; ``read_at`` is when the other side first opened it."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_patient_created", "patient_id", "created_at"),
        # Unread counts per patient for the worklist: side and read_at, by patient.
        Index("ix_messages_patient_side_read", "patient_id", "side", "read_at"),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    author_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    # The care unit the author wrote from, as named then (None for the patient side).
    author_care_unit: Mapped[str | None] = mapped_column(String(200))
    side: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]
