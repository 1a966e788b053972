"""Messages from the database."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.dialogue.models import Message, Side


def unread_from(session: Session, patient_id: str, side: Side) -> list[Message]:
    """The patient's thread's messages from ``side`` no one has opened yet, oldest first."""
    return list(
        session.scalars(
            select(Message)
            .where(
                Message.patient_id == patient_id,
                Message.side == side,
                Message.read_at.is_(None),
            )
            .order_by(Message.created_at, Message.id)
        )
    )


def latest_messages(session: Session, patient_id: str, limit: int) -> list[Message]:
    """The latest ``limit`` messages of the patient's thread, newest first."""
    return list(
        session.scalars(
            select(Message)
            .where(Message.patient_id == patient_id)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(limit)
        )
    )


def unread_counts(
    session: Session, patient_ids: Collection[str], side: Side
) -> list[tuple[str, int]]:
    """(patient id, count) of the unopened messages from ``side``, for patients that have any."""
    rows = session.execute(
        select(Message.patient_id, func.count())
        .where(
            Message.patient_id.in_(sorted(patient_ids)),
            Message.side == side,
            Message.read_at.is_(None),
        )
        .group_by(Message.patient_id)
    ).all()
    return [(patient_id, count) for patient_id, count in rows]
