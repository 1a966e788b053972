"""The queries behind identity and access: who a user is, and whom they are related to.

The policy (``app.auth.policy``) decides; these only look up the facts it decides on.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.auth.models import EndedSession, GrantStatus, ProxyGrant, Role, User
from app.patients.models import CareTeam, CareUnit, Patient, TeamMember, TeamPatient


def users_by_id(session: Session, user_ids: Collection[str]) -> dict[str, User]:
    """The users with these ids, by id (one query)."""
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(user_ids)))}


_BY_SUBJECT = select(User).where(User.subject == bindparam("subject"))


def user_by_subject(session: Session, subject: str) -> User | None:
    """The user an identity provider's subject is linked to."""
    return session.scalars(_BY_SUBJECT, {"subject": subject}).first()


def user_by_hsa_id(session: Session, hsa_id: str) -> User | None:
    """The clinician with this HSA-id."""
    return session.scalars(select(User).where(User.hsa_id == hsa_id)).first()


def patient_user_by_personnummer(session: Session, number: str) -> tuple[User, str] | None:
    """The patient's user and patient id for a (canonical) personnummer."""
    row = session.execute(
        select(User, Patient.id)
        .join(Patient, Patient.user_id == User.id)
        .where(Patient.personnummer == number)
    ).first()
    return None if row is None else (row[0], row[1])


def units_treating(session: Session, user_id: str, patient_id: str) -> Sequence[Row[str, str]]:
    """The care units (id, name) through which the clinician's teams treat the patient."""
    return session.execute(
        select(CareUnit.id, CareUnit.name)
        .join(CareTeam, CareTeam.care_unit_id == CareUnit.id)
        .join(TeamMember, TeamMember.team_id == CareTeam.id)
        .join(TeamPatient, TeamPatient.team_id == CareTeam.id)
        .where(TeamMember.user_id == user_id, TeamPatient.patient_id == patient_id)
        .order_by(CareUnit.name)
    ).all()


def units_of(session: Session, user_id: str) -> Sequence[Row[str, str]]:
    """The care units (id, name) of every team the clinician belongs to, by name."""
    return session.execute(
        select(CareUnit.id, CareUnit.name)
        .join(CareTeam, CareTeam.care_unit_id == CareUnit.id)
        .join(TeamMember, TeamMember.team_id == CareTeam.id)
        .where(TeamMember.user_id == user_id)
        .order_by(CareUnit.name)
    ).all()


def grants_to(session: Session, grantee_id: str, patient_id: str) -> Sequence[ProxyGrant]:
    """Every grant (in any state) a patient gave this person."""
    return session.scalars(
        select(ProxyGrant).where(
            ProxyGrant.grantee_id == grantee_id, ProxyGrant.patient_id == patient_id
        )
    ).all()


def active_grants_held(session: Session, grantee_id: str) -> Sequence[ProxyGrant]:
    """The grants this person holds that are active (their time window is checked apart)."""
    return session.scalars(
        select(ProxyGrant).where(
            ProxyGrant.grantee_id == grantee_id, ProxyGrant.status == GrantStatus.ACTIVE
        )
    ).all()


def all_patient_ids(session: Session) -> list[str]:
    """Every patient's id."""
    return list(session.scalars(select(Patient.id)))


_OWN_PATIENT = select(Patient).where(Patient.user_id == bindparam("user_id"))


def own_patient(session: Session, user_id: str) -> Patient | None:
    """The patient record that is this user's own, if they are a patient."""
    return session.scalars(_OWN_PATIENT, {"user_id": user_id}).first()


def active_users(session: Session, *order_by: Any) -> list[User]:
    """Every active user, in the order given (by display name when none is)."""
    ordering = order_by or (User.display_name,)
    return list(session.scalars(select(User).where(User.active.is_(True)).order_by(*ordering)))


def own_patient_ids(session: Session, user_id: str) -> set[str]:
    """The patient record(s) that are this user's own."""
    return set(session.scalars(select(Patient.id).where(Patient.user_id == user_id)))


def team_patient_ids(session: Session, user_id: str) -> set[str]:
    """The patients enrolled with any team the user belongs to."""
    return set(
        session.scalars(
            select(TeamPatient.patient_id)
            .join(TeamMember, TeamMember.team_id == TeamPatient.team_id)
            .where(TeamMember.user_id == user_id)
        )
    )


def team_clinicians(session: Session, patient_id: str) -> list[User]:
    """The active clinicians of every care team the patient is enrolled with."""
    return list(
        session.scalars(
            select(User)
            .join(TeamMember, TeamMember.user_id == User.id)
            .join(TeamPatient, TeamPatient.team_id == TeamMember.team_id)
            .where(
                TeamPatient.patient_id == patient_id,
                User.role == Role.CLINICIAN,
                User.active.is_(True),
            )
            .distinct()
            .order_by(User.id)
        )
    )


def end_web_session(session: Session, sid: str, expires_at: datetime, now: datetime) -> None:
    """Record that a page session ended (again is a no-op); forget ended ones that expired."""
    session.execute(delete(EndedSession).where(EndedSession.expires_at < now))
    dialect_insert = (
        postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    )
    session.execute(
        dialect_insert(EndedSession).values(sid=sid, expires_at=expires_at).on_conflict_do_nothing()
    )


def web_session_ended(session: Session, sid: str) -> bool:
    """Whether a page session was ended by logout (one primary-key lookup)."""
    return session.get(EndedSession, sid) is not None
