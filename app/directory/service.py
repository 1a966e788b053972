"""Directory administration: organisations, care units, teams, clinicians, membership, logins.

Both doors (the ``/v1/admin`` routes and ``selfcare admin``) call these functions; they check
what they are given and raise AppErrors (404 unknown id, 409 duplicate, 422 wrong kind of
user), so that a refused change leaves nothing behind when the caller rolls back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from app.auth.models import Role, User
from app.directory import repository
from app.errors import Conflict, ErrorItem, NotFound, Unprocessable
from app.patients.models import CareTeam, CareUnit, Organisation, TeamMember

T = TypeVar("T")


def _get(session: Session, model: type[T], entity_id: str, what: str) -> T:
    """A row by id, or 404 naming what was looked for."""
    found = session.get(model, entity_id) if 0 < len(entity_id) <= 36 else None
    if found is None:
        raise NotFound(f"No such {what}.")
    return found


def organisation_dict(org: Organisation) -> dict[str, Any]:
    """The API form of an organisation."""
    return {"id": org.id, "name": org.name, "kind": org.kind}


def list_organisations(session: Session) -> list[dict[str, Any]]:
    """Every organisation, by name."""
    return [organisation_dict(o) for o in repository.organisations(session)]


def create_organisation(session: Session, *, name: str, kind: str) -> dict[str, Any]:
    """Add an organisation; 409 when one has this name already."""
    if repository.organisation_named(session, name):
        raise Conflict("An organisation with this name exists.")
    org = Organisation(name=name, kind=kind)
    session.add(org)
    session.flush()
    return organisation_dict(org)


def care_unit_dict(session: Session, unit: CareUnit) -> dict[str, Any]:
    """The API form of a care unit."""
    org = session.get(Organisation, unit.organisation_id)
    assert org is not None  # a foreign key
    return {"id": unit.id, "name": unit.name, "organisation": organisation_dict(org)}


def list_care_units(session: Session) -> list[dict[str, Any]]:
    """Every care unit, by name."""
    return [care_unit_dict(session, u) for u in repository.care_units(session)]


def create_care_unit(session: Session, *, organisation_id: str, name: str) -> dict[str, Any]:
    """Add a care unit to an organisation; 409 when the organisation has one of this name."""
    org = _get(session, Organisation, organisation_id, "organisation")
    if repository.care_unit_named(session, org.id, name):
        raise Conflict("The organisation has a care unit with this name.")
    unit = CareUnit(organisation_id=org.id, name=name)
    session.add(unit)
    session.flush()
    return care_unit_dict(session, unit)


def team_dict(session: Session, team: CareTeam) -> dict[str, Any]:
    """The API form of a care team, with its members' ids."""
    unit = session.get(CareUnit, team.care_unit_id)
    assert unit is not None  # a foreign key
    return {
        "id": team.id,
        "name": team.name,
        "phone": team.phone,
        "care_unit": {"id": unit.id, "name": unit.name},
        "member_ids": repository.member_ids(session, team.id),
    }


def list_teams(session: Session) -> list[dict[str, Any]]:
    """Every care team, by name."""
    return [team_dict(session, t) for t in repository.teams(session)]


def create_team(session: Session, *, care_unit_id: str, name: str, phone: str) -> dict[str, Any]:
    """Add a care team to a care unit; 409 when the unit has one of this name."""
    unit = _get(session, CareUnit, care_unit_id, "care unit")
    if repository.team_named(session, unit.id, name):
        raise Conflict("The care unit has a team with this name.")
    team = CareTeam(care_unit_id=unit.id, name=name, phone=phone)
    session.add(team)
    session.flush()
    return team_dict(session, team)


def user_dict(session: Session, user: User) -> dict[str, Any]:
    """The directory's form of a user, with the teams they belong to."""
    return {
        "id": user.id,
        "handle": user.handle,
        "display_name": user.display_name,
        "role": user.role,
        "title": user.title,
        "language": user.language,
        "subject": user.subject,
        "active": user.active,
        "team_ids": repository.team_ids_of(session, user.id),
    }


def list_clinicians(session: Session) -> list[dict[str, Any]]:
    """Every clinician, by name."""
    return [user_dict(session, u) for u in repository.clinicians(session)]


def _subject_free(session: Session, subject: str, user_id: str | None) -> None:
    """409 when another user holds this login already."""
    holder = repository.user_id_with_subject(session, subject)
    if holder is not None and holder != user_id:
        raise Conflict("This login is linked to another user.")


def create_clinician(
    session: Session,
    *,
    handle: str,
    display_name: str,
    title: str,
    language: str,
    subject: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Add a clinician (no team yet); 409 when the handle or the login is taken."""
    if repository.user_by_handle(session, handle) is not None:
        raise Conflict("A user with this handle exists.")
    if subject is not None:
        _subject_free(session, subject, None)
    user = User(
        handle=handle,
        display_name=display_name,
        role=Role.CLINICIAN,
        title=title,
        language=language,
        subject=subject,
        active=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user_dict(session, user)


def membership_dict(team_id: str, user_id: str, row: TeamMember | None) -> dict[str, Any]:
    """The API form of a membership (``member`` false once it is removed)."""
    return {
        "team_id": team_id,
        "user_id": user_id,
        "member": row is not None,
        "since": row.since if row is not None else None,
    }


def add_member(session: Session, *, team_id: str, user_id: str, now: datetime) -> dict[str, Any]:
    """Make a clinician a member of a team; adding a member again changes nothing."""
    team = _get(session, CareTeam, team_id, "care team")
    user = _get(session, User, user_id, "user")
    if user.role != Role.CLINICIAN:
        # Patients, relatives and operations take part through their own relations.
        raise Unprocessable(
            "Only clinicians are members of care teams.",
            errors=[ErrorItem(loc="user_id", code="not_clinician", message="Not a clinician.")],
        )
    row = session.get(TeamMember, {"team_id": team.id, "user_id": user.id})
    if row is None:
        row = TeamMember(team_id=team.id, user_id=user.id, since=now)
        session.add(row)
        session.flush()
    return membership_dict(team.id, user.id, row)


def remove_member(session: Session, *, team_id: str, user_id: str) -> dict[str, Any]:
    """End a clinician's membership of a team; removing a non-member changes nothing."""
    team = _get(session, CareTeam, team_id, "care team")
    user = _get(session, User, user_id, "user")
    row = session.get(TeamMember, {"team_id": team.id, "user_id": user.id})
    if row is not None:
        session.delete(row)
        session.flush()
    return membership_dict(team.id, user.id, None)


def link_login(session: Session, *, user_id: str, subject: str) -> dict[str, Any]:
    """Link a login (OIDC ``sub``) to a user, replacing theirs; 409 if another user has it."""
    user = _get(session, User, user_id, "user")
    _subject_free(session, subject, user.id)
    user.subject = subject
    session.flush()
    return user_dict(session, user)


def unlink_login(session: Session, *, user_id: str) -> dict[str, Any]:
    """Remove a user's login: their tokens stop working, their records stay."""
    user = _get(session, User, user_id, "user")
    user.subject = None
    session.flush()
    return user_dict(session, user)


def find_user(session: Session, ref: str) -> User:
    """A user by id or handle (the command line's way to name people)."""
    found = session.get(User, ref) if len(ref) <= 36 else None
    found = found or repository.user_by_handle(session, ref)
    if found is None:
        raise NotFound(f"No user {ref!r}.")
    return found


def find_by_name(session: Session, model: type[T], ref: str, what: str) -> T:
    """An organisation, care unit or team by id or by its exact name (one, else 404/409)."""
    found = session.get(model, ref) if len(ref) <= 36 else None
    if found is not None:
        return found
    matches = repository.with_name(session, model, ref)
    if not matches:
        raise NotFound(f"No {what} {ref!r}.")
    if len(matches) > 1:
        raise Conflict(f"Several {what}s are called {ref!r}; give the id.")
    return matches[0]
