"""Consent use cases: invite, accept, confirm, change, revoke, register a representative.

The lifecycle (DESIGN §4.6): the patient invites with scopes and a period and gets a one-time
code; whoever holds the code accepts it and the grant is *pending* (no access); the patient,
who now sees who accepted, confirms and the grant is *active* from ``valid_from`` until
``valid_to``. One grant per (patient, grantee): confirming revokes the grantee's earlier
grant (``replaced_by``). The access policy reads grants at every request, so a revocation
holds from the very next one. Every change writes a change-feed entry and tells the patient.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.auth import people
from app.auth.models import GrantBasis, GrantStatus, ProxyGrant, Role, User
from app.auth.policy import Access, GrantChange, grant_change_check, grant_is_active, visible_grant
from app.consent import notices, repository
from app.consent.models import ProxyInvitation
from app.consent.schemas import GrantChangeIn, InvitationIn, RepresentativeIn
from app.errors import Conflict, ErrorItem, NotFound, Unprocessable
from app.feed import service as feed
from app.patients.models import Patient

INVITATION_LIFETIME = timedelta(hours=72)
CODE_BYTES = 20  # 160 random bits; the issue asks for at least 128


def new_code() -> str:
    """A one-time code: 160 random bits in base32, in groups of four for reading aloud."""
    raw = base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode().rstrip("=")
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def code_hash(code: str) -> str:
    """The stored form of a code; spaces, dashes and case are ignored."""
    canonical = "".join(code.split()).replace("-", "").upper()
    return hashlib.sha256(canonical.encode()).hexdigest()


def status_of(grant: ProxyGrant, now: datetime) -> str:
    """The grant's status as the API shows it: an active grant past its end is expired."""
    if grant.status == GrantStatus.ACTIVE and grant.valid_to is not None and grant.valid_to <= now:
        return GrantStatus.EXPIRED
    return grant.status


def grant_dict(session: Session, grant: ProxyGrant, now: datetime) -> dict[str, Any]:
    """The API form of a grant, naming people, never bare ids."""
    patient = session.get(Patient, grant.patient_id)
    assert patient is not None
    users = people.users_by_id(session, [grant.grantee_id, grant.created_by, grant.revoked_by])
    return {
        "id": grant.id,
        "patient_id": grant.patient_id,
        "patient": {"id": patient.id, "display_name": patient.display_name},
        "grantee": people.person_of(grant.grantee_id, None, users),
        "scopes": sorted(grant.scopes),
        "valid_from": grant.valid_from,
        "valid_to": grant.valid_to,
        "status": status_of(grant, now),
        "in_force": grant_is_active(grant, now),
        "basis": grant.basis,
        "basis_note": grant.basis_note,
        "created_at": grant.created_at,
        "created_by": people.person_of(grant.created_by, None, users),
        "accepted_at": grant.accepted_at,
        "confirmed_at": grant.confirmed_at,
        "revoked_at": grant.revoked_at,
        "revoked_by": people.person_of(grant.revoked_by, None, users),
        "replaced_by": grant.replaced_by,
    }


def list_grants(session: Session, access: Access, now: datetime) -> list[dict[str, Any]]:
    """The patient's grants the caller may see, newest first (a proxy: their own)."""
    grants = repository.patient_grants(session, access.patient.id)
    return [grant_dict(session, g, now) for g in grants if visible_grant(access, g)]


def grants_of_user(session: Session, user: User, now: datetime) -> list[dict[str, Any]]:
    """Grants a user gave (as a patient) or holds (as a proxy), not revoked, for ``GET /me``."""
    grants = repository.grants_given_or_held(session, user.id)
    return [grant_dict(session, g, now) for g in grants]


def invite(session: Session, access: Access, body: InvitationIn, now: datetime) -> dict[str, Any]:
    """Make an invitation; the code is returned once and stored only as its hash."""
    valid_from = body.valid_from or now
    if body.valid_to is not None and body.valid_to <= valid_from:
        raise _unprocessable("valid_to", "must be after valid_from (now, when not given)")
    if body.valid_to is not None and body.valid_to <= now:
        raise _unprocessable("valid_to", "must lie in the future")
    code = new_code()
    invitation = ProxyInvitation(
        patient_id=access.patient.id,
        code_hash=code_hash(code),
        scopes=[str(s) for s in body.scopes],
        valid_from=valid_from,
        valid_to=body.valid_to,
        expires_at=now + INVITATION_LIFETIME,
        created_at=now,
        created_by=access.actor.id,
    )
    session.add(invitation)
    session.flush()
    return {
        "id": invitation.id,
        "code": code,
        "expires_at": invitation.expires_at,
        "scopes": invitation.scopes,
        "valid_from": invitation.valid_from,
        "valid_to": invitation.valid_to,
    }


def find_invitation(session: Session, code: str, now: datetime) -> ProxyInvitation:
    """The unused, unexpired invitation with this code; 404 otherwise (one answer for all)."""
    invitation = repository.invitation_by_code_hash(session, code_hash(code))
    if invitation is None or invitation.used_at is not None or invitation.expires_at <= now:
        raise NotFound("No such invitation.")
    return invitation


def check_invitee(invitation: ProxyInvitation, patient: Patient, grantee: User) -> None:
    """Refuse (422) an acceptance by the patient themselves or by care staff."""
    if patient.user_id == grantee.id:
        raise _unprocessable("code", "you cannot be your own proxy")
    if grantee.role not in (Role.PATIENT, Role.PROXY):
        raise _unprocessable("code", "care staff and operators act through their role, "
                                     "not as a proxy; use a personal account")  # fmt: skip


def accept(
    session: Session, invitation: ProxyInvitation, grantee: User, now: datetime
) -> ProxyGrant:
    """Use the code: the grant is pending until the patient confirms; the code is spent.

    The update is conditional on the code being unused, so two concurrent acceptances of one
    code give one grant (the loser gets the same 404 as a wrong code).
    """
    patient = session.get(Patient, invitation.patient_id)
    assert patient is not None
    check_invitee(invitation, patient, grantee)
    feed.lock_patient(session, patient.id)  # one grant change per patient at a time
    if not repository.spend_invitation(session, invitation.id, grantee.id, now):
        raise NotFound("No such invitation.")
    for earlier in repository.grants_between(session, patient.id, grantee.id, GrantStatus.PENDING):
        _revoke(earlier, by=grantee.id, now=now)  # the newest acceptance is the one to confirm
    session.flush()
    grant = ProxyGrant(
        grantee_id=grantee.id,
        patient_id=patient.id,
        scopes=list(invitation.scopes),
        valid_from=invitation.valid_from,
        valid_to=invitation.valid_to,
        status=GrantStatus.PENDING,
        basis=GrantBasis.CONSENT,
        created_at=now,
        created_by=invitation.created_by,
        accepted_at=now,
        updated_at=now,
    )
    session.add(grant)
    session.flush()
    invitation.grant_id = grant.id
    _changed(session, patient, grant, notices.ACCEPTED, now)
    return grant


def get_grant(session: Session, access: Access, grant_id: str) -> ProxyGrant:
    """A grant of the path's patient that the caller may see; 404 otherwise.

    The answer is the very one a patient the caller may not see gets, so another relative's
    grant id, a wrong id and a wrong patient cannot be told apart.
    """
    grant = session.get(ProxyGrant, grant_id) if len(grant_id) <= 36 else None
    if grant is None or not visible_grant(access, grant):
        raise NotFound("No such patient.")
    return grant


def confirm(session: Session, access: Access, grant: ProxyGrant, now: datetime) -> ProxyGrant:
    """The patient says yes to a pending grant; it replaces the grantee's earlier grant."""
    grant_change_check(access, grant, GrantChange.CONFIRM)
    if grant.status != GrantStatus.PENDING:
        raise Conflict("Only a pending grant can be confirmed.")
    feed.lock_patient(session, grant.patient_id)
    for earlier in repository.grants_between(
        session, grant.patient_id, grant.grantee_id, GrantStatus.ACTIVE
    ):
        _revoke(earlier, by=access.actor.id, now=now)
        earlier.replaced_by = grant.id
    session.flush()  # the old grant leaves the one-active index before the new one enters
    grant.status = GrantStatus.ACTIVE
    grant.confirmed_at = grant.updated_at = now
    _changed(session, access.patient, grant, notices.CONFIRMED, now)
    return grant


def change(
    session: Session, access: Access, grant: ProxyGrant, body: GrantChangeIn, now: datetime
) -> ProxyGrant:
    """New scopes or a new end; narrowing needs no confirmation, widening is the patient's."""
    fields = body.model_fields_set
    if not fields:
        raise _unprocessable("body", "name scopes, valid_to or both")
    if status_of(grant, now) in (GrantStatus.REVOKED, GrantStatus.EXPIRED):
        raise Conflict("The grant has ended; invite again.")
    scopes = sorted(str(s) for s in body.scopes) if "scopes" in fields and body.scopes else None
    if "scopes" in fields and body.scopes is None:
        raise _unprocessable("scopes", "a grant needs at least one scope; revoke it instead")
    valid_to = body.valid_to if "valid_to" in fields else grant.valid_to
    if valid_to is not None and valid_to <= max(grant.valid_from, now):
        raise _unprocessable("valid_to", "must lie in the future and after valid_from")
    wider = (scopes is not None and not set(scopes) <= set(grant.scopes)) or _later(
        valid_to, grant.valid_to
    )
    grant_change_check(access, grant, GrantChange.WIDEN if wider else GrantChange.NARROW)
    if scopes is not None:
        grant.scopes = scopes
    grant.valid_to = valid_to
    grant.updated_at = now
    _changed(session, access.patient, grant, notices.CHANGED, now)
    return grant


def revoke(session: Session, access: Access, grant: ProxyGrant, now: datetime) -> ProxyGrant:
    """End a grant now (the patient, the proxy giving it up, or the team for a representative)."""
    grant_change_check(access, grant, GrantChange.REVOKE)
    if grant.status == GrantStatus.REVOKED:
        raise Conflict("The grant is already revoked.")
    _revoke(grant, by=access.actor.id, now=now)
    _changed(session, access.patient, grant, notices.REVOKED, now)
    return grant


def register_representative(
    session: Session, access: Access, body: RepresentativeIn, now: datetime
) -> ProxyGrant:
    """The care team registers a god man or förvaltare: active at once, with its basis."""
    grantee = session.get(User, body.grantee_id) if len(body.grantee_id) <= 36 else None
    if grantee is None or not grantee.active or grantee.role not in (Role.PATIENT, Role.PROXY):
        raise _unprocessable("grantee_id", "no such person (a patient or proxy account)")
    if access.patient.user_id == grantee.id:
        raise _unprocessable("grantee_id", "a patient cannot represent themselves")
    valid_from = body.valid_from or now
    if body.valid_to is not None and body.valid_to <= max(valid_from, now):
        raise _unprocessable("valid_to", "must lie in the future and after valid_from")
    feed.lock_patient(session, access.patient.id)
    grant = ProxyGrant(
        grantee_id=grantee.id,
        patient_id=access.patient.id,
        scopes=[str(s) for s in body.scopes],
        valid_from=valid_from,
        valid_to=body.valid_to,
        status=GrantStatus.ACTIVE,
        basis=GrantBasis.LEGAL_REPRESENTATIVE,
        basis_note=body.basis_note,
        created_at=now,
        created_by=access.actor.id,
        confirmed_at=now,
        updated_at=now,
    )
    replaced = repository.grants_between(session, access.patient.id, grantee.id, GrantStatus.ACTIVE)
    for pending in repository.grants_between(
        session, access.patient.id, grantee.id, GrantStatus.PENDING
    ):
        _revoke(pending, by=access.actor.id, now=now)
    for earlier in replaced:
        _revoke(earlier, by=access.actor.id, now=now)
    session.flush()
    session.add(grant)
    session.flush()
    for earlier in replaced:
        earlier.replaced_by = grant.id
    _changed(session, access.patient, grant, notices.REPRESENTATIVE, now)
    return grant


def _revoke(grant: ProxyGrant, *, by: str, now: datetime) -> None:
    grant.status = GrantStatus.REVOKED
    grant.revoked_at = grant.updated_at = now
    grant.revoked_by = by


def _later(new: datetime | None, old: datetime | None) -> bool:
    """Whether an end is later than another (no end is the latest)."""
    if new is None:
        return old is not None
    return old is not None and new > old


def _changed(
    session: Session, patient: Patient, grant: ProxyGrant, event: str, now: datetime
) -> None:
    session.flush()
    data = grant_dict(session, grant, now)
    feed.append(
        session,
        patient.id,
        entity="grant",
        op="upsert",
        entity_id=grant.id,
        data=_jsonable(data),
        now=now,
    )
    notices.tell_patient(session, patient, grant, event, now)


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}


def _unprocessable(loc: str, message: str) -> Unprocessable:
    return Unprocessable(message, errors=[ErrorItem(loc=loc, code="invalid", message=message)])


def hide_other_grants(changes: list[dict[str, Any]], access: Access) -> list[dict[str, Any]]:
    """Feed changes without the grants a proxy may not see (another relative's)."""
    if access.relation != "proxy":
        return changes
    return [
        c for c in changes
        if c.get("entity") != "grant"
        or ((c.get("data") or {}).get("grantee") or {}).get("id") == access.actor.id
    ]  # fmt: skip
