"""The append-only, hash-chained audit log of every access to patient data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class AuditEvent(Base):
    """One access: who (role, care unit, on whose behalf), what, when, and the outcome.

    ``hash`` = sha256(``prev_hash`` + the row's canonical content), so any change, deletion,
    swap or insertion breaks the chain at the first bad row. Never holds measurement values.
    """

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    occurred_at: Mapped[datetime]
    actor_id: Mapped[str | None] = mapped_column(String(36))
    actor_handle: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(16))
    care_unit_id: Mapped[str | None] = mapped_column(String(36))
    care_unit_name: Mapped[str | None] = mapped_column(String(200))
    relation: Mapped[str] = mapped_column(String(16))  # self | proxy | care_team | admin
    action: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditSubject(Base):
    """A patient whose data an audit event touched (a worklist touches several)."""

    __tablename__ = "audit_subjects"

    event_seq: Mapped[int] = mapped_column(ForeignKey("audit_events.seq"), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)


class AuditHead(Base):
    """The end of the chain: locked while appending so the chain has one order."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
