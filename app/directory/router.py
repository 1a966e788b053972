"""HTTP for the directory (``/v1/admin/…``, administrators only) and for team requests."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.clock import utcnow
from app.deps import AdminDep, SessionDep, TeamRequestAccess
from app.directory import repository as directory_repository
from app.directory import service, team_requests
from app.directory.schemas import (
    CareUnitIn,
    CareUnitListOut,
    CareUnitOut,
    ClinicianIn,
    ConfirmIn,
    DecisionIn,
    LoginIn,
    MembershipOut,
    OrganisationIn,
    OrganisationListOut,
    OrganisationOut,
    TeamIn,
    TeamListOut,
    TeamOut,
    TeamRequestAdminListOut,
    TeamRequestAdminOut,
    TeamRequestListOut,
    TeamRequestOut,
    UserListOut,
    UserOut,
)
from app.errors import NotFound

router = APIRouter(tags=["directory"])

READ, WRITE = "read_directory", "manage_directory"


@router.get("/v1/admin/organisations", response_model=OrganisationListOut, summary="Organisations")
def list_organisations(admin: AdminDep, session: SessionDep) -> dict[str, Any]:
    """Every organisation (region or municipality), by name."""
    admin.audit(session, READ)
    return {"items": service.list_organisations(session)}


@router.post(
    "/v1/admin/organisations",
    status_code=201,
    response_model=OrganisationOut,
    summary="Add an organisation",
)
def create_organisation(admin: AdminDep, session: SessionDep, body: OrganisationIn) -> Any:
    """Add a region or municipality; 409 when the name is taken."""
    admin.audit(session, WRITE)
    return service.create_organisation(session, name=body.name, kind=body.kind)


@router.get("/v1/admin/care-units", response_model=CareUnitListOut, summary="Care units")
def list_care_units(admin: AdminDep, session: SessionDep) -> dict[str, Any]:
    """Every care unit, by name."""
    admin.audit(session, READ)
    return {"items": service.list_care_units(session)}


@router.post(
    "/v1/admin/care-units", status_code=201, response_model=CareUnitOut, summary="Add a care unit"
)
def create_care_unit(admin: AdminDep, session: SessionDep, body: CareUnitIn) -> Any:
    """Add a care unit to an organisation; 404 unknown organisation, 409 name taken there."""
    admin.audit(session, WRITE)
    return service.create_care_unit(session, organisation_id=body.organisation_id, name=body.name)


@router.get("/v1/admin/teams", response_model=TeamListOut, summary="Care teams")
def list_teams(admin: AdminDep, session: SessionDep) -> dict[str, Any]:
    """Every care team with its care unit and members, by name."""
    admin.audit(session, READ)
    return {"items": service.list_teams(session)}


@router.post("/v1/admin/teams", status_code=201, response_model=TeamOut, summary="Add a team")
def create_team(admin: AdminDep, session: SessionDep, body: TeamIn) -> Any:
    """Add a care team to a care unit; 404 unknown unit, 409 name taken there."""
    admin.audit(session, WRITE)
    return service.create_team(
        session, care_unit_id=body.care_unit_id, name=body.name, phone=body.phone
    )


@router.get("/v1/admin/clinicians", response_model=UserListOut, summary="Clinicians")
def list_clinicians(admin: AdminDep, session: SessionDep) -> dict[str, Any]:
    """Every clinician with their teams and linked login, by name."""
    admin.audit(session, READ)
    return {"items": service.list_clinicians(session)}


@router.post(
    "/v1/admin/clinicians", status_code=201, response_model=UserOut, summary="Add a clinician"
)
def create_clinician(admin: AdminDep, session: SessionDep, body: ClinicianIn) -> Any:
    """Add a clinician; 409 when the handle or the login is taken."""
    admin.audit(session, WRITE)
    return service.create_clinician(
        session,
        handle=body.handle,
        display_name=body.display_name,
        title=body.title,
        language=body.language,
        subject=body.subject,
        now=utcnow(),
    )


@router.put(
    "/v1/admin/teams/{team_id}/members/{user_id}",
    response_model=MembershipOut,
    summary="Make a clinician a member of a team",
)
def add_member(admin: AdminDep, session: SessionDep, team_id: str, user_id: str) -> Any:
    """Add the membership (again: unchanged); 404 unknown team or user, 422 not a clinician."""
    admin.audit(session, WRITE)
    return service.add_member(session, team_id=team_id, user_id=user_id, now=utcnow())


@router.delete(
    "/v1/admin/teams/{team_id}/members/{user_id}",
    response_model=MembershipOut,
    summary="End a clinician's membership of a team",
)
def remove_member(admin: AdminDep, session: SessionDep, team_id: str, user_id: str) -> Any:
    """Remove the membership (none: unchanged); 404 unknown team or user."""
    admin.audit(session, WRITE)
    return service.remove_member(session, team_id=team_id, user_id=user_id)


@router.put(
    "/v1/admin/users/{user_id}/login",
    response_model=UserOut,
    summary="Link a login (the issuer's sub) to a user",
)
def link_login(admin: AdminDep, session: SessionDep, user_id: str, body: LoginIn) -> Any:
    """Set the user's ``subject``; 409 when another user has this login."""
    admin.audit(session, WRITE)
    return service.link_login(session, user_id=user_id, subject=body.subject)


@router.delete(
    "/v1/admin/users/{user_id}/login",
    response_model=UserOut,
    summary="Unlink a user's login",
)
def unlink_login(admin: AdminDep, session: SessionDep, user_id: str) -> Any:
    """Clear the user's ``subject``: their tokens stop working, their records stay."""
    admin.audit(session, WRITE)
    return service.unlink_login(session, user_id=user_id)


@router.get(
    "/v1/admin/team-requests",
    response_model=TeamRequestAdminListOut,
    summary="Pending team requests",
)
def list_team_requests(admin: AdminDep, session: SessionDep) -> dict[str, Any]:
    """Every pending team request, oldest first."""
    rows = directory_repository.pending_requests(session)
    admin.audit(session, READ, tuple(sorted({r.patient_id for r in rows})))
    return {"items": team_requests.request_dicts(session, rows, admin=True)}


@router.post(
    "/v1/admin/team-requests/{request_id}/confirm",
    response_model=TeamRequestAdminOut,
    summary="Confirm a team request for the patient, with a basis note",
)
def confirm_team_request(
    admin: AdminDep, session: SessionDep, request_id: str, body: ConfirmIn
) -> Any:
    """Let the team take part in the patient's care; 404 unknown, 409 already decided."""
    try:
        row = team_requests.find(session, request_id)
    except NotFound:
        admin.audit(session, "confirm_team_request")  # the 404 is logged, naming nobody
        raise
    admin.audit(session, "confirm_team_request", (row.patient_id,))
    team_requests.confirm(session, row, by=admin.actor.id, basis_note=body.basis_note, now=utcnow())
    return team_requests.request_dict(session, row, admin=True)


@router.get(
    "/v1/patients/{pid}/team-requests",
    response_model=TeamRequestListOut,
    summary="Care teams asking to take part in the patient's care",
)
def patient_team_requests(access: TeamRequestAccess, session: SessionDep) -> dict[str, Any]:
    """The patient's team requests, newest first (pending and decided)."""
    rows = directory_repository.patient_requests(session, access.patient.id)
    return {"items": team_requests.request_dicts(session, rows)}


@router.post(
    "/v1/patients/{pid}/team-requests/{request_id}/decision",
    response_model=TeamRequestOut,
    summary="Accept or decline a team request (the patient, or a proxy who may agree)",
)
def decide_team_request(
    access: TeamRequestAccess, session: SessionDep, request_id: str, body: DecisionIn
) -> Any:
    """Accept (the team takes part from now) or decline; 409 once decided."""
    row = team_requests.find(session, request_id, access.patient.id)
    team_requests.decide(
        session, row, accept=body.decision == "accept", by=access.actor.id, now=utcnow()
    )
    return team_requests.request_dict(session, row)
