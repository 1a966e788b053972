"""Audit events, their subjects and the chain's head from the database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent, AuditHead, AuditSubject


def locked_head(session: Session) -> AuditHead:
    """The chain's head row, locked for this transaction (appends are one at a time)."""
    return session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one()


def access_log(
    session: Session,
    patient_id: str,
    *,
    limit: int,
    before_seq: int | None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditEvent]:
    """The audit events that touched a patient's data, newest first; ``[since, until)``."""
    query = (
        select(AuditEvent)
        .join(AuditSubject, AuditSubject.event_seq == AuditEvent.seq)
        .where(AuditSubject.patient_id == patient_id)
        .order_by(AuditEvent.seq.desc())
        .limit(limit)
    )
    if before_seq is not None:
        query = query.where(AuditEvent.seq < before_seq)
    if since is not None:
        query = query.where(AuditEvent.occurred_at >= since)
    if until is not None:
        query = query.where(AuditEvent.occurred_at < until)
    return list(session.scalars(query))


def rows_after(session: Session, after_seq: int, limit: int) -> Sequence[Row[tuple[object, ...]]]:
    """Up to ``limit`` raw audit rows after ``after_seq``, in chain order."""
    table = AuditEvent.__table__
    return session.execute(
        select(table).where(table.c.seq > after_seq).order_by(table.c.seq).limit(limit)
    ).all()


def subjects_between(session: Session, after_seq: int, last_seq: int) -> list[tuple[int, str]]:
    """(event seq, patient id) of the events in ``(after_seq, last_seq]``."""
    rows = session.execute(
        select(AuditSubject.event_seq, AuditSubject.patient_id).where(
            AuditSubject.event_seq > after_seq, AuditSubject.event_seq <= last_seq
        )
    )
    return [(seq, pid) for seq, pid in rows]


def count_events(session: Session) -> int:
    """How many audit events exist."""
    return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)
