"""Proxy grants and invitations from the database."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.auth.models import GrantStatus, ProxyGrant
from app.consent.models import ProxyInvitation
from app.patients.models import Patient


def patient_grants(session: Session, patient_id: str) -> Iterable[ProxyGrant]:
    """Every grant of the patient, newest first."""
    return session.scalars(
        select(ProxyGrant)
        .where(ProxyGrant.patient_id == patient_id)
        .order_by(ProxyGrant.created_at.desc(), ProxyGrant.id)
    )


def grants_given_or_held(session: Session, user_id: str) -> Iterable[ProxyGrant]:
    """Grants the user gave (as a patient) or holds (as a proxy), not revoked, newest first."""
    own = select(Patient.id).where(Patient.user_id == user_id)
    return session.scalars(
        select(ProxyGrant)
        .where(
            (ProxyGrant.grantee_id == user_id) | ProxyGrant.patient_id.in_(own),
            ProxyGrant.status != GrantStatus.REVOKED,
        )
        .order_by(ProxyGrant.created_at.desc(), ProxyGrant.id)
    )


def grants_between(
    session: Session, patient_id: str, grantee_id: str, status: str
) -> list[ProxyGrant]:
    """The grants from the patient to the grantee with this status."""
    return list(
        session.scalars(
            select(ProxyGrant).where(
                ProxyGrant.patient_id == patient_id,
                ProxyGrant.grantee_id == grantee_id,
                ProxyGrant.status == status,
            )
        )
    )


def invitation_by_code_hash(session: Session, hashed: str) -> ProxyInvitation | None:
    """The invitation whose code has this hash, if any."""
    return session.scalars(
        select(ProxyInvitation).where(ProxyInvitation.code_hash == hashed)
    ).first()


def spend_invitation(session: Session, invitation_id: str, grantee_id: str, now: datetime) -> bool:
    """Mark the invitation used, only if it is still unused; whether this call spent it."""
    spent = session.execute(
        update(ProxyInvitation)
        .where(ProxyInvitation.id == invitation_id, ProxyInvitation.used_at.is_(None))
        .values(used_at=now, used_by=grantee_id)
    )
    return bool(spent.rowcount == 1)  # type: ignore[attr-defined]
