"""Push subscriptions and outbox rows from the database."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Update, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from app.auth.models import ProxyGrant, User
from app.patients.models import Patient
from app.push.models import OutboxMessage, OutboxStatus, PushSubscription, SubscriptionStatus


def active_subscriptions(session: Session, user_id: str) -> list[PushSubscription]:
    """A user's subscriptions that still receive pushes, oldest first."""
    return list(
        session.scalars(
            select(PushSubscription)
            .where(
                PushSubscription.user_id == user_id,
                PushSubscription.status == SubscriptionStatus.ACTIVE,
            )
            .order_by(PushSubscription.created_at, PushSubscription.id)
        )
    )


def proxy_grants(session: Session, patient_id: str) -> Iterable[ProxyGrant]:
    """Every proxy grant of the patient, in force or not."""
    return session.scalars(select(ProxyGrant).where(ProxyGrant.patient_id == patient_id))


def subscription_by_endpoint(session: Session, endpoint: str) -> PushSubscription | None:
    """The stored subscription with this endpoint, if any."""
    return session.scalars(
        select(PushSubscription).where(PushSubscription.endpoint == endpoint)
    ).first()


def notifications(session: Session, patient_id: str, *, limit: int) -> list[OutboxMessage]:
    """A patient's notifications, newest first."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.patient_id == patient_id)
            .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id)
            .limit(limit)
        )
    )


def due_messages(session: Session, now: datetime, limit: int) -> Sequence[OutboxMessage]:
    """Up to ``limit`` outbox rows due now, locked for this worker (skip locked ones)."""
    return session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
            OutboxMessage.next_attempt_at <= now,
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()


def preload(session: Session, rows: Sequence[OutboxMessage]) -> list[Any]:
    """The rows' subscriptions, users and patients, in three queries, not three per row."""
    loaded: list[Any] = []
    for model, ids in (
        (PushSubscription, {r.subscription_id for r in rows if r.subscription_id}),
        (User, {r.user_id for r in rows}),
        (Patient, {r.patient_id for r in rows}),
    ):
        if ids:
            loaded += session.scalars(select(model).where(model.id.in_(sorted(ids)))).all()
    return loaded


def _held_claim(message_id: str, token: str) -> Update:
    return update(OutboxMessage).where(
        OutboxMessage.id == message_id,
        OutboxMessage.claim_token == token,
        OutboxMessage.status == OutboxStatus.SENDING,
    )


def finish_claimed(session: Session, message_id: str, token: str, **values: Any) -> bool:
    """Update the row only while it is sending under this claim token; whether it did."""
    statement = _held_claim(message_id, token).values(claim_token=None, **values)
    done = session.execute(statement, execution_options={"synchronize_session": False})
    return isinstance(done, CursorResult) and done.rowcount == 1


def mark_delivered(session: Session, subscription_id: str, at: datetime) -> None:
    """Note the subscription's latest successful delivery."""
    session.execute(
        update(PushSubscription)
        .where(PushSubscription.id == subscription_id)
        .values(last_success_at=at),
        execution_options={"synchronize_session": False},
    )


def mark_gone(session: Session, subscription_id: str, at: datetime) -> None:
    """End an active subscription the push service says no longer exists."""
    session.execute(
        update(PushSubscription)
        .where(
            PushSubscription.id == subscription_id,
            PushSubscription.status == SubscriptionStatus.ACTIVE,
        )
        .values(status=SubscriptionStatus.DEAD, ended_at=at),
        execution_options={"synchronize_session": False},
    )
