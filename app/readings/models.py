"""Sources, readings and import runs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdColumn, new_id


class ReadingStatus(StrEnum):
    """FHIR Observation status, the two we use."""

    FINAL = "final"
    ENTERED_IN_ERROR = "entered-in-error"


class Source(Base):
    """An app, device or import path that sends a patient's readings."""

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("patient_id", "client_source_id"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    client_source_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    version: Mapped[str] = mapped_column(String(64), default="")
    device: Mapped[dict[str, Any] | None]
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]


class Reading(Base):
    """One measurement: canonical value and unit, the original as sent, UTC time and offset.

    A reading is never physically deleted: a deletion sets ``status`` to entered-in-error.
    ``duplicate_of`` marks the same measurement arriving through a second source; such a row
    is kept (so its retries answer the same) but never counted.
    """

    __tablename__ = "readings"
    __table_args__ = (
        UniqueConstraint("patient_id", "source_id", "client_id"),
        Index("ix_readings_patient_type_time", "patient_id", "type", "time"),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id"))
    client_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(32))
    time: Mapped[datetime]
    utc_offset_minutes: Mapped[int] = mapped_column(Integer)
    end_time: Mapped[datetime | None]
    values: Mapped[dict[str, Any]]  # component -> canonical value as a decimal string
    unit: Mapped[str] = mapped_column(String(32))
    original_values: Mapped[dict[str, Any]]
    original_unit: Mapped[str] = mapped_column(String(64))
    loinc: Mapped[str] = mapped_column(String(16))
    context: Mapped[dict[str, Any]]
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24), default=ReadingStatus.FINAL)
    duplicate_of: Mapped[str | None] = mapped_column(ForeignKey("readings.id"))
    received_at: Mapped[datetime]
    entered_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    deleted_at: Mapped[datetime | None]
    deleted_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))


class ImportRun(Base):
    """One file imported for a patient, chunk by chunk; posting the same file again resumes it.

    The file's digest (with its format and source) identifies the import, so a re-run after a
    failure or a crash finds the same row: the chunks it committed are answered as
    duplicates by the dedup, the rest are stored, and nothing is stored twice.
    """

    __tablename__ = "imports"
    __table_args__ = (UniqueConstraint("patient_id", "digest"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    digest: Mapped[str] = mapped_column(String(64))  # sha256 of format, source and bytes
    format: Mapped[str] = mapped_column(String(16))
    client_source_id: Mapped[str] = mapped_column(String(128))
    readings: Mapped[int] = mapped_column(Integer)
    chunks: Mapped[int] = mapped_column(Integer)
    chunks_committed: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))  # running, complete, stopped
    stopped_at: Mapped[dict[str, Any] | None]
    entered_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
