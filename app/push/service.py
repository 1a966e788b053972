"""Push: who should hear about a patient's advice, and the outbox rows that tell them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import ProxyGrant, Scope, User
from app.auth.policy import grant_is_active
from app.findings.models import Advice
from app.patients.models import Patient
from app.push.models import OutboxMessage, PushSubscription

ADVICE_TTL_SECONDS = {"urgent": 6 * 3600, "routine": 24 * 3600}


def advice_recipients(session: Session, patient: Patient, now: datetime) -> list[User]:
    """The patient and every proxy whose grant lets them receive advice, now."""
    users: list[User] = []
    if patient.user_id is not None:
        own = session.get(User, patient.user_id)
        if own is not None and own.active:
            users.append(own)
    grants = session.scalars(select(ProxyGrant).where(ProxyGrant.patient_id == patient.id))
    for grant in grants:
        if grant_is_active(grant, now) and Scope.RECEIVE_ADVICE in grant.scopes:
            proxy = session.get(User, grant.grantee_id)
            if proxy is not None and proxy.active:
                users.append(proxy)
    return users


def enqueue_advice(session: Session, advice: Advice, patient: Patient, now: datetime) -> int:
    """Write one outbox row per subscription that should receive this advice."""
    count = 0
    for user in advice_recipients(session, patient, now):
        subscriptions = session.scalars(
            select(PushSubscription).where(
                PushSubscription.user_id == user.id, PushSubscription.status == "active"
            )
        )
        lang = user.language if user.language in ("sv", "en") else "sv"
        for sub in subscriptions:
            is_own = patient.user_id == user.id
            if not is_own and patient.id not in sub.patient_ids:
                continue
            session.add(
                OutboxMessage(
                    patient_id=patient.id,
                    user_id=user.id,
                    subscription_id=sub.id,
                    advice_id=advice.id,
                    kind="advice",
                    # No measurement values in a push: a title and where to read more.
                    payload={
                        "title": advice.title.get(lang, advice.title["sv"]),
                        "advice_id": advice.id,
                        "patient_id": patient.id,
                        "priority": advice.priority,
                        "url": f"/patients/{patient.id}/advice/{advice.id}",
                    },
                    urgency="high" if advice.priority == "urgent" else "normal",
                    ttl_seconds=ADVICE_TTL_SECONDS.get(advice.priority, 24 * 3600),
                    topic=f"advice-{advice.rule_id}"[:32],
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            count += 1
    return count
