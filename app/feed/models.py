"""The per-patient change feed: its head (the lock and last number) and its entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class FeedHead(Base):
    """The last change sequence number of a patient's feed.

    Appending a change locks this row, so a patient's changes get their numbers in commit
    order and a reader polling with ``seq > cursor`` never skips one.
    """

    __tablename__ = "feed_heads"

    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class Change(Base):
    """One entry of a patient's change feed."""

    __tablename__ = "changes"
    __table_args__ = (UniqueConstraint("patient_id", "seq"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    entity: Mapped[str] = mapped_column(String(16))
    op: Mapped[str] = mapped_column(String(8))
    entity_id: Mapped[str] = mapped_column(String(36))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
