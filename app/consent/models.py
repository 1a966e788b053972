"""Invitations: the one-time codes a patient gives a relative to become their proxy."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdColumn, new_id


class ProxyInvitation(Base):
    """An offer of a grant, redeemable once within its lifetime by whoever holds the code.

    Only the SHA-256 of the code is stored: the code carries 160 random bits, so a fast hash
    is enough, and a database reader cannot redeem an invitation.
    """

    __tablename__ = "proxy_invitations"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]]
    valid_from: Mapped[datetime]
    valid_to: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    used_at: Mapped[datetime | None]
    used_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    grant_id: Mapped[str | None] = mapped_column(ForeignKey("proxy_grants.id"))
