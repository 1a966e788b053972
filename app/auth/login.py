"""Who a verified token is: the user with its ``sub``, or a known person at their first login.

A known person is a patient with a login (by the personnummer claim) or a user with an HSA-id
(by the HSA-id claim) whose ``subject`` is still empty: their first login links the token's
``sub`` to them, audited. A user already linked to another ``sub`` is never relinked (that is
an administrator's decision), and claims that match nobody find nobody (401).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth import repository
from app.auth.models import User
from app.auth.tokens import TokenClaims
from app.errors import Unauthorized, Unprocessable
from app.patients.personnummer import canonical_personnummer

LINK_ACTION = "link_login"


def user_for_token(session: Session, claims: TokenClaims, now: datetime) -> User:
    """The active user the verified claims name, linking a known person's first login.

    The link is written in the request's transaction: if the request is then refused, the
    link rolls back with it (its audit row stays, as ``refused:<status>``, like any other
    refused request's) and the next login links again.
    """
    user = _by_subject(session, claims.subject)
    if user is None:
        user = link_first_login(session, claims, now)
    if user is None or not user.active:
        raise Unauthorized("The token's subject is not a user of this service.")
    return user


def _by_subject(session: Session, subject: str) -> User | None:
    return repository.user_by_subject(session, subject)


def _known_person(session: Session, claims: TokenClaims) -> tuple[User, str, str | None] | None:
    """The user the claims identify, the claim that did, and the patient id (for the log)."""
    if claims.personnummer is not None:
        try:
            number = canonical_personnummer(claims.personnummer)
        except Unprocessable:
            number = None
        if number is not None:
            found = repository.patient_user_by_personnummer(session, number)
            if found is not None:
                return found[0], "personnummer", found[1]
    if claims.hsa_id is not None:
        user = repository.user_by_hsa_id(session, claims.hsa_id)
        if user is not None:
            return user, "hsa_id", None
    return None


def link_first_login(session: Session, claims: TokenClaims, now: datetime) -> User | None:
    """Link ``claims.subject`` to the known person the claims name; None when nobody matches."""
    found = _known_person(session, claims)
    if found is None:
        return None
    user, claim, patient_id = found
    if not user.active:
        return None
    if user.subject is not None and user.subject != claims.subject:
        raise Unauthorized("This person already logs in with another account.")
    # Only an empty subject is filled: of two first logins at once, one links, one re-reads.
    linked = session.execute(
        update(User)
        .where(User.id == user.id, User.subject.is_(None))
        .values(subject=claims.subject)
        .execution_options(synchronize_session=False)
    )
    session.refresh(user)
    if getattr(linked, "rowcount", 0) != 1:
        return user if user.subject == claims.subject else None
    audit.record(
        session,
        audit.AuditEntry(
            occurred_at=now,
            actor_id=user.id,
            actor_handle=user.handle,
            actor_role=user.role,
            relation="self",
            action=LINK_ACTION,
            resource=f"login by {claim}",
            patient_ids=(patient_id,) if patient_id is not None else (),
        ),
    )
    return user
