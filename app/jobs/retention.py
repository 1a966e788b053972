"""Retention: forget finished notifications, ended subscriptions and old reminder claims.

Rows older than ``retention_days`` go: outbox rows in a final state (counted from when they
ended), subscriptions that are dead or deleted, and reminder rows (their unique key only has
to outlive the reminder window). Deleting is idempotent, so several workers may run it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Delete, delete, text
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from app.config import Settings
from app.jobs import unit_of_work
from app.push.models import (
    FINISHED,
    OutboxMessage,
    PushSubscription,
    Reminder,
    SubscriptionStatus,
)


def finished_before(horizon: datetime) -> Delete:
    """The outbox rows that reached a final state before a time (read off their index).

    Not synchronised with the session: the ORM cannot evaluate the SQL condition in Python
    and would fetch every deleted row's id back (``RETURNING``), hundreds of thousands.
    """
    return (
        delete(OutboxMessage)
        .where(text(FINISHED), OutboxMessage.finished_at < horizon)
        .execution_options(synchronize_session=False)
    )


@unit_of_work
def clean_up(session: Session, settings: Settings, now: datetime) -> dict[str, int]:
    """Delete what is past retention; the counts by table."""
    horizon = now - timedelta(days=settings.retention_days)
    reminder_horizon = min(
        horizon, now - timedelta(minutes=settings.reminder_window_minutes, days=2)
    )
    statements = {
        "outbox": finished_before(horizon),
        "subscriptions": delete(PushSubscription).where(
            PushSubscription.status.in_([SubscriptionStatus.DEAD, SubscriptionStatus.DELETED]),
            PushSubscription.ended_at < horizon,
        ),
        "reminders": delete(Reminder).where(Reminder.created_at < reminder_horizon),
    }
    counts: dict[str, int] = {}
    for name, statement in statements.items():
        result = session.execute(statement)
        counts[name] = result.rowcount if isinstance(result, CursorResult) else 0
    return counts
