"""Plan versions from the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.plans.models import PlanVersion


def current(session: Session, patient_id: str) -> PlanVersion | None:
    """The patient's newest plan version, if any."""
    return session.scalars(
        select(PlanVersion)
        .where(PlanVersion.patient_id == patient_id)
        .order_by(PlanVersion.version.desc())
        .limit(1)
    ).first()


def latest_number(session: Session, patient_id: str) -> int | None:
    """The number of the patient's newest plan version, if any."""
    return session.scalar(
        select(func.max(PlanVersion.version)).where(PlanVersion.patient_id == patient_id)
    )


def first_created_at(session: Session, patient_id: str) -> datetime | None:
    """When the patient's first plan version was made, if any."""
    return session.scalars(
        select(PlanVersion.created_at)
        .where(PlanVersion.patient_id == patient_id)
        .order_by(PlanVersion.version)
        .limit(1)
    ).first()


def versions(session: Session, patient_id: str) -> list[PlanVersion]:
    """Every version of the patient's plan, newest first."""
    return list(
        session.scalars(
            select(PlanVersion)
            .where(PlanVersion.patient_id == patient_id)
            .order_by(PlanVersion.version.desc())
        )
    )
