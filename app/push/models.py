"""Web Push subscriptions, the transactional outbox of notifications, measurement reminders."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdColumn, new_id


class SubscriptionStatus(StrEnum):
    """Whether a subscription still receives pushes."""

    ACTIVE = "active"
    DEAD = "dead"  # the push service answered 404/410: the browser dropped it
    DELETED = "deleted"  # the owner unsubscribed


class OutboxStatus(StrEnum):
    """Where a notification is on its way; the last five are final."""

    PENDING = "pending"  # waiting for next_attempt_at
    SENDING = "sending"  # claimed by a dispatcher until next_attempt_at (the lease)
    SENT = "sent"  # the push service accepted it (2xx)
    GONE = "gone"  # the push service said the subscription is gone (404/410)
    DEAD = "dead"  # dead letter: refused (413, other 4xx) or out of attempts
    EXPIRED = "expired"  # its TTL ran out before it could be delivered
    CANCELLED = "cancelled"  # the subscription ended or the recipient may no longer receive it


FINAL_STATUSES = frozenset(
    {
        OutboxStatus.SENT,
        OutboxStatus.GONE,
        OutboxStatus.DEAD,
        OutboxStatus.EXPIRED,
        OutboxStatus.CANCELLED,
    }
)

DUE_STATUSES = (OutboxStatus.PENDING, OutboxStatus.SENDING)
"""A row in one of these is waiting to be claimed once its ``next_attempt_at`` has come."""


def _status_in(statuses: Iterable[OutboxStatus]) -> str:
    return f"status IN ({', '.join(repr(str(s)) for s in sorted(statuses))})"


# The two halves of the outbox as SQL with the statuses written out: a query must say exactly
# this for either database to serve it from the partial indexes below (a bound parameter
# would not prove an index's condition). ``status`` is unqualified: for statements on the
# outbox alone (subscriptions and reminders have a status too). Migration 0020 keeps a copy.
WAITING = _status_in(DUE_STATUSES)
FINISHED = _status_in(FINAL_STATUSES)


class PushSubscription(Base):
    """A browser's push subscription, owned by a user, optionally for patients they proxy."""

    __tablename__ = "push_subscriptions"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    endpoint: Mapped[str] = mapped_column(Text, unique=True)
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(100))
    patient_ids: Mapped[list[str]]
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime]
    last_success_at: Mapped[datetime | None]  # the latest delivery, to the hour (dispatcher)
    ended_at: Mapped[datetime | None]  # when it became dead or deleted; retention counts from it


class OutboxMessage(Base):
    """A notification to deliver; written in the same transaction as what caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        # The waiting rows in the order a claim takes them: the claim reads its batch off the
        # front however long the backlog (issue 17 §4; migration 0020).
        Index(
            "ix_outbox_due",
            "next_attempt_at",
            "id",
            "status",  # so the metrics count the waiting rows off the index alone
            sqlite_where=text(WAITING),
            postgresql_where=text(WAITING),
        ),
        # The finished rows by status and by when they finished: the retention deletes the
        # oldest and the metrics count them, without reading the waiting ones or the rows.
        Index(
            "ix_outbox_finished",
            "status",
            "finished_at",
            sqlite_where=text(FINISHED),
            postgresql_where=text(FINISHED),
        ),
        # A correction withdraws the pushes of withdrawn advice by these ids alone.
        Index("ix_outbox_advice", "advice_id"),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    subscription_id: Mapped[str | None] = mapped_column(
        ForeignKey("push_subscriptions.id", ondelete="SET NULL")
    )
    advice_id: Mapped[str | None] = mapped_column(ForeignKey("advice.id"))
    kind: Mapped[str] = mapped_column(String(24))  # advice | reminder | escalation | milestone
    payload: Mapped[dict[str, Any]]
    urgency: Mapped[str] = mapped_column(String(8))
    ttl_seconds: Mapped[int] = mapped_column(Integer)
    topic: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    # Set by each claim; a result is recorded only by the claim that still holds the row.
    claim_token: Mapped[str | None] = mapped_column(String(36))
    finished_at: Mapped[datetime | None]  # when it reached a final status


class Reminder(Base):
    """A reminder to measure, one per (patient, type, local date, scheduled local time).

    The unique key is the claim: whichever worker inserts the row sends the reminder.
    """

    __tablename__ = "reminders"
    __table_args__ = (UniqueConstraint("patient_id", "type", "local_date", "local_time"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    type: Mapped[str] = mapped_column(String(32))
    local_date: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD in the patient's zone
    local_time: Mapped[str] = mapped_column(String(5))  # HH:MM as the plan says
    due_at: Mapped[datetime]  # that local time in UTC
    status: Mapped[str] = mapped_column(String(16))  # sent | skipped (already measured)
    notifications: Mapped[int] = mapped_column(Integer, default=0)  # outbox rows written
    created_at: Mapped[datetime]
