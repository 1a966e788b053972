"""Audit events, their subjects and the chain's head from the database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent, AuditHead, AuditSubject

_EVENTS = cast(Table, AuditEvent.__table__)
_SUBJECTS = cast(Table, AuditSubject.__table__)
_HEAD = cast(Table, AuditHead.__table__)


_LOCKED_HEAD = (
    select(AuditHead.last_seq, AuditHead.last_hash).where(AuditHead.id == 1).with_for_update()
)
_INSERT_EVENTS = insert(_EVENTS)
_INSERT_SUBJECTS = insert(_SUBJECTS)
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(last_seq=bindparam("seq"), last_hash=bindparam("hash"))
)


def locked_head(session: Session) -> tuple[int, str]:
    """The chain's head ``(last_seq, last_hash)``, locked for this transaction (appends are
    one at a time); read from the database, never from the session's objects."""
    head = session.execute(_LOCKED_HEAD).one()
    return int(head.last_seq), str(head.last_hash)


def append(
    session: Session,
    events: Sequence[dict[str, Any]],
    subjects: Sequence[dict[str, Any]],
    head: tuple[int, str],
) -> None:
    """Insert chain rows and their subjects, and move the head to ``(last_seq, last_hash)``."""
    session.execute(_INSERT_EVENTS, list(events))
    if subjects:
        session.execute(_INSERT_SUBJECTS, list(subjects))
    session.execute(_MOVE_HEAD, {"seq": head[0], "hash": head[1]})


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
