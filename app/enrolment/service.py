"""Patient use cases: who am I, my teams, the patient list, enrolment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy.orm import Session

from app.auth import policy
from app.auth.models import Role, User
from app.auth.policy import Actor, Forbidden, relation_to, visible_patient_ids
from app.consent import service as consent_service
from app.directory import repository as directory_repository
from app.directory import team_requests
from app.directory.models import TeamRequest
from app.enrolment import repository
from app.errors import Conflict, ErrorItem, Unprocessable
from app.patients.models import CareTeam, Patient, TeamMember, TeamPatient
from app.patients.personnummer import canonical_personnummer


class AlreadyEnrolled(Conflict):
    """The personnummer belongs to an enrolled patient (whose id is kept for the audit log)."""

    def __init__(
        self,
        patient_id: str,
        detail: str = "A patient with this personnummer is already enrolled with this team.",
    ) -> None:
        super().__init__(detail)
        self.patient_id = patient_id


@dataclass(frozen=True)
class Enrolment:
    """What an enrolment did: enrolled a new patient, or asked to join an enrolled one's care."""

    patient: Patient
    request: TeamRequest | None = None


def patient_dict(patient: Patient) -> dict[str, Any]:
    """The API form of a patient."""
    return {
        "id": patient.id,
        "display_name": patient.display_name,
        "personnummer": patient.personnummer,
        "timezone": patient.timezone,
        "language": patient.language,
        "created_at": patient.created_at.isoformat(),
    }


def me(session: Session, actor: Actor, now: datetime) -> dict[str, Any]:
    """The caller and the patients they may act for, with relation and scopes."""
    user = actor.user
    grants = consent_service.grants_of_user(session, user, now)
    patients: list[dict[str, Any]] = []
    for pid in visible_patient_ids(session, actor, now):
        patient = session.get(Patient, pid)
        if patient is None or user.role == Role.ADMIN and patient.user_id != user.id:
            continue
        access = relation_to(session, actor, patient, now)
        if access is None:
            continue
        row: dict[str, Any] = {
            "id": patient.id,
            "display_name": patient.display_name,
            "relation": access.relation,
            "scopes": sorted(access.scopes),  # a proxy's: those of the grant in force
        }
        if access.relation == "proxy":
            row["valid_to"] = next(
                (g["valid_to"] for g in grants if g["patient_id"] == pid and g["in_force"]), None
            )
        patients.append(row)
    return {
        "user": {
            "id": user.id,
            "handle": user.handle,
            "display_name": user.display_name,
            "role": user.role,
            "language": user.language,
            "quiet_hours": user.quiet_hours,
            "lock_screen": user.lock_screen or "neutral",
        },
        "patients": patients,
        # The grants the caller gave as a patient and holds as a proxy, pending ones included.
        "grants": grants,
    }


def update_preferences(user: User, changes: dict[str, Any]) -> None:
    """Set the caller's language, quiet hours and lock screen (validated by the request model)."""
    if "language" in changes:
        user.language = changes["language"]
    if "lock_screen" in changes:
        user.lock_screen = changes["lock_screen"] or "neutral"  # null: the default
    if "quiet_hours" in changes:
        user.quiet_hours = changes["quiet_hours"]


def teams(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """The caller's care teams (an admin sees every team)."""
    member = None if actor.role == Role.ADMIN else actor.id
    return [
        {
            "id": team.id,
            "name": team.name,
            "care_unit": {"id": unit.id, "name": unit.name},
        }
        for team, unit in repository.teams_with_units(session, member)
    ]


def list_patients(
    session: Session, actor: Actor, now: datetime, *, offset: int, limit: int
) -> tuple[list[Patient], bool]:
    """A page of the patients the caller may see, by name; and whether more follow."""
    ids = visible_patient_ids(session, actor, now)
    if not ids:
        return [], False
    rows = repository.patients_page(session, ids, offset=offset, limit=limit + 1)
    return rows[:limit], len(rows) > limit


def enrol(
    session: Session,
    actor: Actor,
    *,
    personnummer_value: str,
    display_name: str,
    timezone: str,
    language: str,
    team_id: str,
    now: datetime,
) -> Enrolment:
    """Enrol a new patient in one of the caller's care teams.

    A personnummer enrolled with another team becomes a pending team request (DESIGN §4.10):
    the patient decides, the team sees nothing until then. The same team again is a 409.
    """
    if not policy.may_enrol(actor):
        raise Forbidden("Only clinicians and administrators enrol patients.")
    pnr = canonical_personnummer(personnummer_value)
    if timezone not in available_timezones():
        raise Unprocessable(
            "Unknown time zone.",
            errors=[ErrorItem(loc="timezone", code="invalid", message="Not an IANA time zone.")],
        )
    ZoneInfo(timezone)
    team = session.get(CareTeam, team_id) if len(team_id) <= 36 else None
    member = (
        team is not None
        and session.get(TeamMember, {"team_id": team_id, "user_id": actor.id}) is not None
    )
    if team is None or not policy.may_enrol_to_team(actor, member=member):
        raise Unprocessable(
            "Unknown care team.",
            errors=[ErrorItem(loc="team_id", code="invalid", message="Not one of your teams.")],
        )
    enrolled = repository.patient_id_by_personnummer(session, pnr)
    if enrolled is not None:
        existing = session.get(Patient, enrolled)
        assert existing is not None
        if session.get(TeamPatient, {"team_id": team_id, "patient_id": enrolled}) is not None:
            raise AlreadyEnrolled(enrolled)
        if directory_repository.pending_request_for(session, enrolled, team_id) is not None:
            raise AlreadyEnrolled(enrolled, "This team's request is waiting for the patient.")
        try:
            request = team_requests.create(
                session, patient=existing, team_id=team_id, requested_by=actor.id, now=now
            )
        except team_requests.RequestPending as exc:
            raise AlreadyEnrolled(enrolled, exc.detail) from exc
        return Enrolment(existing, request)
    patient = Patient(
        personnummer=pnr,
        display_name=display_name,
        timezone=timezone,
        language=language,
        created_at=now,
    )
    session.add(patient)
    session.flush()
    session.add(
        TeamPatient(team_id=team_id, patient_id=patient.id, enrolled_at=now, enrolled_by=actor.id)
    )
    session.flush()
    return Enrolment(patient)


def user_by_handle(session: Session, handle: str) -> User | None:
    """A user by handle."""
    return repository.user_by_handle(session, handle)
