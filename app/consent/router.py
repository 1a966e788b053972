"""HTTP for consent: a patient's proxies, invitations and legal representatives (DESIGN §4.6)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.auth.policy import Access, Action, Relation
from app.clock import utcnow
from app.consent import service
from app.consent.schemas import (
    AcceptIn,
    GrantChangeIn,
    GrantListOut,
    GrantOut,
    InvitationIn,
    InvitationOut,
    RepresentativeIn,
)
from app.deps import (
    ActorDep,
    CodeAttemptsLimited,
    ConsentAccess,
    GrantsReadAccess,
    RepresentativeAccess,
    SessionDep,
    audit_access,
)
from app.patients.models import Patient

router = APIRouter(tags=["consent"])


@router.get(
    "/v1/patients/{pid}/proxies",
    summary="The patient's proxies and representatives",
    response_model=GrantListOut,
)
def list_proxies(access: GrantsReadAccess, session: SessionDep) -> dict[str, Any]:
    """Every grant, newest first; a proxy sees only their own."""
    return {"items": service.list_grants(session, access, utcnow())}


@router.post(
    "/v1/patients/{pid}/proxies/invitations",
    status_code=201,
    summary="Invite a proxy: a one-time code (the patient only)",
    response_model=InvitationOut,
)
def invite(body: InvitationIn, access: ConsentAccess, session: SessionDep) -> dict[str, Any]:
    """A code valid 72 hours, for one use; it is shown only in this answer."""
    return service.invite(session, access, body, utcnow())


@router.post(
    "/v1/proxy-invitations/accept",
    status_code=201,
    summary="Accept an invitation: the grant waits for the patient's confirmation",
    response_model=GrantOut,
)
def accept(
    body: AcceptIn, actor: ActorDep, session: SessionDep, _: CodeAttemptsLimited
) -> dict[str, Any]:
    """A wrong, used or expired code answers the same 404; the grant is ``pending``."""
    now = utcnow()
    invitation = service.find_invitation(session, body.code, now)
    patient = session.get(Patient, invitation.patient_id)
    assert patient is not None
    service.check_invitee(invitation, patient, actor.user)
    # The invitee has no relation to the patient yet: the code is the authority, and the
    # acceptance is an access to the patient's consent, so it is logged on the patient.
    access = Access(actor, patient, Relation.PROXY, frozenset())
    audit_access(
        session, access, Action.MANAGE_CONSENT, "POST /v1/proxy-invitations/accept",
        relation="invitee",
    )  # fmt: skip
    grant = service.accept(session, invitation, actor.user, now)
    return service.grant_dict(session, grant, now)


@router.post(
    "/v1/patients/{pid}/proxies/{gid}/confirm",
    summary="Confirm a pending grant (the patient, who sees who accepted)",
    response_model=GrantOut,
)
def confirm(gid: str, access: ConsentAccess, session: SessionDep) -> dict[str, Any]:
    """The grant becomes active from its valid_from and replaces the grantee's earlier one."""
    now = utcnow()
    grant = service.confirm(session, access, service.get_grant(session, access, gid), now)
    return service.grant_dict(session, grant, now)


@router.patch(
    "/v1/patients/{pid}/proxies/{gid}",
    summary="Change a grant's scopes or end (a proxy may only narrow their own)",
    response_model=GrantOut,
)
def change(
    gid: str, body: GrantChangeIn, access: GrantsReadAccess, session: SessionDep
) -> dict[str, Any]:
    """The patient changes their grants; a proxy can never widen or extend their own."""
    now = utcnow()
    grant = service.change(session, access, service.get_grant(session, access, gid), body, now)
    return service.grant_dict(session, grant, now)


@router.post(
    "/v1/patients/{pid}/proxies/{gid}/revoke",
    summary="End a grant now (the patient, or the proxy giving it up)",
    response_model=GrantOut,
)
def revoke(gid: str, access: GrantsReadAccess, session: SessionDep) -> dict[str, Any]:
    """The proxy's very next request for the patient is denied."""
    now = utcnow()
    grant = service.revoke(session, access, service.get_grant(session, access, gid), now)
    return service.grant_dict(session, grant, now)


@router.post(
    "/v1/patients/{pid}/proxies",
    status_code=201,
    summary="Register a legal representative (the care team)",
    response_model=GrantOut,
)
def register_representative(
    body: RepresentativeIn, access: RepresentativeAccess, session: SessionDep
) -> dict[str, Any]:
    """A god man or förvaltare, with the basis noted; active at once, shown to the patient."""
    now = utcnow()
    grant = service.register_representative(session, access, body, now)
    return service.grant_dict(session, grant, now)
