"""Users, their roles and the proxy grants patients give to relatives."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdColumn, new_id


class Role(StrEnum):
    """What kind of person a user is; access follows from relations, not from this alone."""

    PATIENT = "patient"
    PROXY = "proxy"
    CLINICIAN = "clinician"
    ADMIN = "admin"


class Scope(StrEnum):
    """What a proxy grant allows."""

    READ = "read"
    RECEIVE_ADVICE = "receive_advice"
    ENTER_READINGS = "enter_readings"
    MESSAGE = "message"
    AGREE = "agree"


class GrantStatus(StrEnum):
    """A grant's stored state; ``expired`` is never stored, it is read from ``valid_to``."""

    PENDING = "pending"  # accepted by the grantee, not yet confirmed by the patient: no access
    ACTIVE = "active"  # in force from valid_from until valid_to
    EXPIRED = "expired"
    REVOKED = "revoked"  # by the patient, by the proxy, or replaced by a newer grant


class GrantBasis(StrEnum):
    """Why a grant exists: the patient's consent, or a legal representative's appointment."""

    CONSENT = "consent"
    LEGAL_REPRESENTATIVE = "legal_representative"


class User(Base):
    """A login: a patient, a proxy, a clinician or an administrator (see ``Role``)."""

    __tablename__ = "users"
    # A unique index (not a constraint): SQLite adds it without rebuilding the users table.
    __table_args__ = (Index("uq_users_hsa_id", "hsa_id", unique=True),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    handle: Mapped[str] = mapped_column(String(64), unique=True)
    subject: Mapped[str | None] = mapped_column(String(255), unique=True)  # OIDC `sub`
    # A clinician's HSA-id: how their first login is recognised (the `sub` is linked then).
    hsa_id: Mapped[str | None] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(100), default="")
    language: Mapped[str] = mapped_column(String(8), default="sv")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    quiet_hours: Mapped[dict[str, Any] | None]  # {"start": "22:00", "end": "07:00"}
    # What a push may show on a locked screen: "neutral" (a fixed text) or "title" (advice's).
    lock_screen: Mapped[str] = mapped_column(
        String(16), default="neutral", server_default="neutral"
    )
    created_at: Mapped[datetime]


class ProxyGrant(Base):
    """Consent from a patient that a grantee (a relative) may act for them, within scopes.

    One grant in force per (patient, grantee): confirming a new one revokes the earlier one
    (``replaced_by``), and the partial unique indexes make a second pending or active grant
    for the same pair impossible even under concurrent requests.
    """

    __tablename__ = "proxy_grants"
    __table_args__ = (
        Index("ix_proxy_grants_grantee_patient", "grantee_id", "patient_id"),
        Index(
            "uq_proxy_grants_pending",
            "patient_id",
            "grantee_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "uq_proxy_grants_active",
            "patient_id",
            "grantee_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    grantee_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    scopes: Mapped[list[str]]
    valid_from: Mapped[datetime]
    valid_to: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default=GrantStatus.ACTIVE)
    created_at: Mapped[datetime]
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    basis: Mapped[str] = mapped_column(String(32), default=GrantBasis.CONSENT)
    basis_note: Mapped[str | None] = mapped_column(String(2000))
    accepted_at: Mapped[datetime | None]  # the grantee used the invitation's code
    confirmed_at: Mapped[datetime | None]  # the patient saw who accepted and said yes
    replaced_by: Mapped[str | None] = mapped_column(String(36))
    updated_at: Mapped[datetime | None]


class EndedSession(Base):
    """A page session ended by logout: its cookie is refused by every process until it expires."""

    __tablename__ = "web_sessions_ended"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    # When the session would have expired anyway (its maximum age): the row may go then.
    expires_at: Mapped[datetime] = mapped_column(index=True)
