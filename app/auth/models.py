"""Users, their roles and the proxy grants patients give to relatives."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String
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
    ACTIVE = "active"
    REVOKED = "revoked"


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    handle: Mapped[str] = mapped_column(String(64), unique=True)
    subject: Mapped[str | None] = mapped_column(String(255), unique=True)  # OIDC `sub`
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(100), default="")
    language: Mapped[str] = mapped_column(String(8), default="sv")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    quiet_hours: Mapped[dict[str, Any] | None]  # {"start": "22:00", "end": "07:00"}
    created_at: Mapped[datetime]


class ProxyGrant(Base):
    """Consent from a patient that a grantee (a relative) may act for them, within scopes."""

    __tablename__ = "proxy_grants"
    __table_args__ = (Index("ix_proxy_grants_grantee_patient", "grantee_id", "patient_id"),)

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
