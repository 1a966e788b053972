"""Plan versions, agreements, care contacts and stories from the database."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.orm import Session

from app.auth.models import ProxyGrant, Role, User
from app.patients.models import CareTeam, CareUnit, TeamMember, TeamPatient
from app.plans.models import (
    AgreementEvent,
    AgreementRecord,
    CareContactRecord,
    PlanVersion,
    StoryVersion,
)


def current(session: Session, patient_id: str) -> PlanVersion | None:
    """The patient's newest plan version, if any."""
    return session.scalars(
        select(PlanVersion)
        .where(PlanVersion.patient_id == patient_id)
        .order_by(PlanVersion.version.desc())
        .limit(1)
    ).first()


_CURRENT_ID = (
    select(PlanVersion.id)
    .where(PlanVersion.patient_id == bindparam("patient_id"))
    .order_by(PlanVersion.version.desc())
    .limit(1)
)


def current_id(session: Session, patient_id: str) -> str | None:
    """The id of the patient's newest plan version, if any (its body not read)."""
    return session.scalar(_CURRENT_ID, {"patient_id": patient_id})


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


# --- agreements ---------------------------------------------------------------------------------


def grants_to(session: Session, patient_id: str, grantee_id: str | None) -> Sequence[ProxyGrant]:
    """The patient's grants to this grantee, in force or not."""
    return session.scalars(
        select(ProxyGrant).where(
            ProxyGrant.patient_id == patient_id, ProxyGrant.grantee_id == grantee_id
        )
    ).all()


def clinician_name_in_care(session: Session, patient_id: str, user_id: str | None) -> str | None:
    """The clinician's display name, when they are in one of the patient's teams."""
    row = session.execute(
        select(User.display_name)
        .join(TeamMember, TeamMember.user_id == User.id)
        .join(TeamPatient, TeamPatient.team_id == TeamMember.team_id)
        .where(
            User.id == user_id,
            User.role == Role.CLINICIAN,
            TeamPatient.patient_id == patient_id,
        )
        .limit(1)
    ).first()
    return row.display_name if row is not None else None


def team_name_in_care(session: Session, patient_id: str, team_id: str | None) -> str | None:
    """The team's name, when it is one of the patient's teams."""
    team = session.execute(
        select(CareTeam.name)
        .join(TeamPatient, TeamPatient.team_id == CareTeam.id)
        .where(CareTeam.id == team_id, TeamPatient.patient_id == patient_id)
    ).first()
    return team.name if team is not None else None


def first_team_id(session: Session, patient_id: str) -> str | None:
    """The id of the team the patient was enrolled with first, if any."""
    return session.scalars(
        select(TeamPatient.team_id)
        .where(TeamPatient.patient_id == patient_id)
        .order_by(TeamPatient.enrolled_at, TeamPatient.team_id)
        .limit(1)
    ).first()


def agreement_records(session: Session, patient_id: str) -> Sequence[AgreementRecord]:
    """Every agreement ever proposed for the patient."""
    return session.scalars(
        select(AgreementRecord).where(AgreementRecord.patient_id == patient_id)
    ).all()


def recorded_agreement_ids(session: Session, ids: Collection[str]) -> set[str]:
    """Which of these agreement ids have a record already."""
    return set(session.scalars(select(AgreementRecord.id).where(AgreementRecord.id.in_(list(ids)))))


def agreement_events(session: Session, agreement_ids: Collection[str]) -> Sequence[AgreementEvent]:
    """Every event of these agreements, oldest first."""
    return session.scalars(
        select(AgreementEvent)
        .where(AgreementEvent.agreement_id.in_(list(agreement_ids)))
        .order_by(AgreementEvent.seq)
    ).all()


# --- the care contact ---------------------------------------------------------------------------


def current_contact(session: Session, patient_id: str) -> CareContactRecord | None:
    """The patient's care contact now, if the team has named one."""
    return session.scalars(
        select(CareContactRecord)
        .where(CareContactRecord.patient_id == patient_id)
        .order_by(CareContactRecord.seq.desc())
        .limit(1)
    ).first()


def team_and_unit(session: Session, team_id: str) -> tuple[CareTeam, CareUnit] | None:
    """A care team with its care unit, if the team exists."""
    row = session.execute(
        select(CareTeam, CareUnit)
        .join(CareUnit, CareUnit.id == CareTeam.care_unit_id)
        .where(CareTeam.id == team_id)
    ).first()
    return (row[0], row[1]) if row is not None else None


def first_team_with_phone(session: Session, patient_id: str) -> Row[str, str] | None:
    """(name, phone) of the patient's first team that has a phone number, if any."""
    return session.execute(
        select(CareTeam.name, CareTeam.phone)
        .join(TeamPatient, TeamPatient.team_id == CareTeam.id)
        .where(TeamPatient.patient_id == patient_id, CareTeam.phone != "")
        .order_by(TeamPatient.enrolled_at, CareTeam.name)
        .limit(1)
    ).first()


def shared_team_ids(session: Session, clinician_id: str, patient_id: str) -> list[str]:
    """The patient's teams the active clinician is a member of, oldest enrolment first."""
    return list(
        session.scalars(
            select(TeamMember.team_id)
            .join(TeamPatient, TeamPatient.team_id == TeamMember.team_id)
            .join(User, User.id == TeamMember.user_id)
            .where(
                TeamMember.user_id == clinician_id,
                TeamPatient.patient_id == patient_id,
                User.role == Role.CLINICIAN,
                User.active.is_(True),
            )
            .order_by(TeamPatient.enrolled_at)
        )
    )


# --- the patient's story ------------------------------------------------------------------------


def current_story(session: Session, patient_id: str) -> StoryVersion | None:
    """The newest version of the patient's story, if any."""
    return session.scalars(
        select(StoryVersion)
        .where(StoryVersion.patient_id == patient_id)
        .order_by(StoryVersion.version.desc())
        .limit(1)
    ).first()


def story_versions(session: Session, patient_id: str) -> list[StoryVersion]:
    """Every version of the patient's story, newest first."""
    return list(
        session.scalars(
            select(StoryVersion)
            .where(StoryVersion.patient_id == patient_id)
            .order_by(StoryVersion.version.desc())
        )
    )


def latest_story_number(session: Session, patient_id: str) -> int | None:
    """The number of the newest version of the patient's story, if any."""
    return session.scalar(
        select(func.max(StoryVersion.version)).where(StoryVersion.patient_id == patient_id)
    )


def patients_with_plans(session: Session) -> list[str]:
    """Every patient that has a plan, by id."""
    return list(session.scalars(select(PlanVersion.patient_id).distinct().order_by("patient_id")))
