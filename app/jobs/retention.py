"""Retention: forget finished notifications, ended subscriptions, old reminder claims and the
change feed's old entries.

Rows older than ``retention_days`` go: outbox rows in a final state (counted from when they
ended), subscriptions that are dead or deleted, and reminder rows (their unique key only has
to outlive the reminder window). The change feed keeps ``feed_retention_days``: its entries
repeat what the readings, plans, advice and flags hold, and a client whose cursor is older is
answered 410 and reads the patient's data again (DESIGN §4.2; ``sync.client`` does). Deleting
is idempotent, so several workers may run it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import transaction
from app.feed import service as feed
from app.jobs import unit_of_work
from app.push.models import (
    FINAL_STATUSES,
    OutboxMessage,
    PushSubscription,
    Reminder,
    SubscriptionStatus,
)

FEED_CHUNK = 5_000
"""Changes dropped per transaction: on SQLite a sync waits for the write lock meanwhile."""
FEED_CHUNKS_PER_RUN = 200
"""At most this many chunks a run (a million changes); the next run goes on from there."""


def clean_up(factory: sessionmaker[Session], settings: Settings, now: datetime) -> dict[str, int]:
    """Delete what is past retention; the counts by table."""
    counts = _finished_rows(factory, settings, now)
    counts["changes"] = trim_feed(factory, settings, now)
    return counts


@unit_of_work
def _finished_rows(session: Session, settings: Settings, now: datetime) -> dict[str, int]:
    horizon = now - timedelta(days=settings.retention_days)
    reminder_horizon = min(
        horizon, now - timedelta(minutes=settings.reminder_window_minutes, days=2)
    )
    statements = {
        "outbox": delete(OutboxMessage).where(
            OutboxMessage.status.in_(sorted(FINAL_STATUSES)),
            OutboxMessage.finished_at < horizon,
        ),
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


def trim_feed(
    factory: sessionmaker[Session], settings: Settings, now: datetime, *, chunk: int = FEED_CHUNK
) -> int:
    """Drop the change feed's entries older than ``feed_retention_days``, a chunk per
    transaction (:func:`app.feed.service.drop_oldest`); how many went."""
    before = now - timedelta(days=settings.feed_retention_days)
    dropped = 0
    for _ in range(FEED_CHUNKS_PER_RUN):
        with transaction(factory) as session:
            done = feed.drop_oldest(session, before, limit=chunk)
        dropped += done
        if done < chunk:
            break
    return dropped
