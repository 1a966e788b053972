"""The queries of enrolment: teams, pages of patients, a patient by number, a user by handle."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from app.auth.models import User
from app.patients.models import CareTeam, CareUnit, Patient, TeamMember


def teams_with_units(session: Session, member_id: str | None) -> Sequence[Row[CareTeam, CareUnit]]:
    """Care teams with their units, by name: the member's, or every team when None."""
    query = (
        select(CareTeam, CareUnit)
        .join(CareUnit, CareUnit.id == CareTeam.care_unit_id)
        .order_by(CareTeam.name)
    )
    if member_id is not None:
        query = query.join(TeamMember, TeamMember.team_id == CareTeam.id).where(
            TeamMember.user_id == member_id
        )
    return session.execute(query).all()


def patients_page(
    session: Session, ids: Collection[str], *, offset: int, limit: int
) -> list[Patient]:
    """Up to ``limit`` of these patients from ``offset``, by name then id."""
    return list(
        session.scalars(
            select(Patient)
            .where(Patient.id.in_(ids))
            .order_by(Patient.display_name, Patient.id)
            .offset(offset)
            .limit(limit)
        )
    )


def patient_id_by_personnummer(session: Session, number: str) -> str | None:
    """The id of the patient with this (canonical) personnummer."""
    return session.scalars(select(Patient.id).where(Patient.personnummer == number)).first()


def user_by_handle(session: Session, handle: str) -> User | None:
    """A user by handle."""
    return session.scalars(select(User).where(User.handle == handle)).first()
