"""Organisations, care units, teams, clinicians and team requests from the database."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.models import Role, User
from app.directory.models import TeamRequest, TeamRequestStatus
from app.patients.models import CareTeam, CareUnit, Organisation, TeamMember

T = TypeVar("T")


def _same_name(column: Any, name: str) -> Any:
    return func.lower(column) == name.lower()


def organisations(session: Session) -> Iterable[Organisation]:
    """Every organisation, by name."""
    return session.scalars(select(Organisation).order_by(Organisation.name, Organisation.id))


def organisation_named(session: Session, name: str) -> str | None:
    """The id of an organisation with this name, in any case, if any."""
    return session.scalars(
        select(Organisation.id).where(_same_name(Organisation.name, name))
    ).first()


def care_units(session: Session) -> Iterable[CareUnit]:
    """Every care unit, by name."""
    return session.scalars(select(CareUnit).order_by(CareUnit.name, CareUnit.id))


def care_unit_named(session: Session, organisation_id: str, name: str) -> str | None:
    """The id of the organisation's care unit with this name, in any case, if any."""
    return session.scalars(
        select(CareUnit.id).where(
            CareUnit.organisation_id == organisation_id, _same_name(CareUnit.name, name)
        )
    ).first()


def teams(session: Session) -> Iterable[CareTeam]:
    """Every care team, by name."""
    return session.scalars(select(CareTeam).order_by(CareTeam.name, CareTeam.id))


def team_named(session: Session, care_unit_id: str, name: str) -> str | None:
    """The id of the care unit's team with this name, in any case, if any."""
    return session.scalars(
        select(CareTeam.id).where(
            CareTeam.care_unit_id == care_unit_id, _same_name(CareTeam.name, name)
        )
    ).first()


def member_ids(session: Session, team_id: str) -> list[str]:
    """The ids of a team's members, longest-standing first."""
    return list(
        session.scalars(
            select(TeamMember.user_id)
            .where(TeamMember.team_id == team_id)
            .order_by(TeamMember.since)
        )
    )


def team_ids_of(session: Session, user_id: str) -> list[str]:
    """The ids of the teams a user belongs to, oldest membership first."""
    return list(
        session.scalars(
            select(TeamMember.team_id)
            .where(TeamMember.user_id == user_id)
            .order_by(TeamMember.since)
        )
    )


def clinicians(session: Session) -> Iterable[User]:
    """Every clinician, by name."""
    return session.scalars(
        select(User).where(User.role == Role.CLINICIAN).order_by(User.display_name, User.id)
    )


def user_id_with_subject(session: Session, subject: str) -> str | None:
    """The id of the user who holds this login, if any."""
    return session.scalars(select(User.id).where(User.subject == subject)).first()


def user_by_handle(session: Session, handle: str) -> User | None:
    """The user with this handle, if any."""
    return session.scalars(select(User).where(User.handle == handle)).first()


def with_name(session: Session, model: type[T], name: str) -> list[T]:
    """The organisations, care units or teams called exactly ``name``."""
    return list(session.scalars(select(model).where(model.name == name)))  # type: ignore[attr-defined]


def pending_request_for(session: Session, patient_id: str, team_id: str) -> TeamRequest | None:
    """The team's pending request for the patient, if there is one."""
    return session.scalars(
        select(TeamRequest).where(
            TeamRequest.patient_id == patient_id,
            TeamRequest.team_id == team_id,
            TeamRequest.status == TeamRequestStatus.PENDING,
        )
    ).first()


def patient_requests(session: Session, patient_id: str) -> list[TeamRequest]:
    """Every team request about the patient, newest first."""
    return list(
        session.scalars(
            select(TeamRequest)
            .where(TeamRequest.patient_id == patient_id)
            .order_by(TeamRequest.requested_at.desc(), TeamRequest.id)
        )
    )


def pending_requests(session: Session) -> list[TeamRequest]:
    """Every pending team request, oldest first (what operations may have to confirm)."""
    return list(
        session.scalars(
            select(TeamRequest)
            .where(TeamRequest.status == TeamRequestStatus.PENDING)
            .order_by(TeamRequest.requested_at, TeamRequest.id)
        )
    )
