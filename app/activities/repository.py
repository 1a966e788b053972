"""Activities, calendar links and activity reminders from the database."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.activities.models import Activity, ActivityReminder, CalendarLink, Status
from app.db import new_id


def list_activities(
    session: Session,
    patient_id: str,
    *,
    start_from: datetime | None = None,
    to: datetime | None = None,
    status: Status | None = None,
) -> list[Activity]:
    """The patient's activities by start, within ``[start_from, to)`` when given."""
    query = select(Activity).where(Activity.patient_id == patient_id)
    if start_from is not None:
        query = query.where(Activity.start >= start_from)
    if to is not None:
        query = query.where(Activity.start < to)
    if status is not None:
        query = query.where(Activity.status == status)
    return list(session.scalars(query.order_by(Activity.start, Activity.id)))


def upcoming(session: Session, patient_id: str, now: datetime, limit: int) -> list[Activity]:
    """The patient's next planned activities (from now on), soonest first."""
    return list(
        session.scalars(
            select(Activity)
            .where(
                Activity.patient_id == patient_id,
                Activity.status == Status.PLANNED,
                Activity.start >= now,
            )
            .order_by(Activity.start, Activity.id)
            .limit(limit)
        )
    )


def active_links(session: Session, patient_id: str) -> list[CalendarLink]:
    """The patient's calendar links that have not ended."""
    return list(
        session.scalars(
            select(CalendarLink).where(
                CalendarLink.patient_id == patient_id, CalendarLink.ended_at.is_(None)
            )
        )
    )


def active_link_with_hash(session: Session, hashed: str) -> CalendarLink | None:
    """The calendar link, not ended, whose token has this hash, if any."""
    return session.scalars(
        select(CalendarLink).where(
            CalendarLink.token_hash == hashed, CalendarLink.ended_at.is_(None)
        )
    ).first()


def due_activity_ids(session: Session, now: datetime, lead: timedelta) -> list[str]:
    """Planned activities that start after now and within the lead time, soonest first."""
    return list(
        session.scalars(
            select(Activity.id)
            .where(
                Activity.status == Status.PLANNED,
                Activity.start > now,
                Activity.start <= now + lead,
            )
            .order_by(Activity.start, Activity.id)
        )
    )


def claim_reminder(session: Session, activity: Activity, now: datetime) -> str | None:
    """Record the reminder for the activity's start time; its id, or None if one exists."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return session.scalar(
        insert(ActivityReminder)
        .values(
            id=new_id(),
            activity_id=activity.id,
            start=activity.start,
            notifications=0,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["activity_id", "start"])
        .returning(ActivityReminder.id)
    )
