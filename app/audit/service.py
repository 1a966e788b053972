"""Audit: every access to patient data is appended to a hash chain in the same transaction.

Entries are collected on the session while the request runs and written just before it
commits, under a lock on the chain's head. If writing them fails, the commit fails and the
caller gets no data: the log fails closed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent, AuditHead, AuditSubject

GENESIS_HASH = "0" * 64
_PENDING = "audit_pending"


@dataclass(frozen=True)
class AuditEntry:
    """What one request did to whose data; never any measurement values."""

    occurred_at: datetime
    actor_id: str | None
    actor_handle: str
    actor_role: str
    relation: str
    action: str
    resource: str
    patient_ids: tuple[str, ...]
    care_unit_id: str | None = None
    care_unit_name: str | None = None
    outcome: str = "ok"
    extra: dict[str, Any] = field(default_factory=dict)


def record(session: Session, entry: AuditEntry) -> None:
    """Queue an audit entry; it is written in the same transaction, before commit."""
    session.info.setdefault(_PENDING, []).append(entry)


def pending(session: Session) -> list[AuditEntry]:
    """The entries queued on this session and not yet written."""
    return list(session.info.get(_PENDING, []))


def row_hash(prev_hash: str, event_row: AuditEvent, patient_ids: Sequence[str]) -> str:
    """The chain hash of one audit row."""
    content = {
        "seq": event_row.seq,
        "occurred_at": event_row.occurred_at.isoformat(),
        "actor_id": event_row.actor_id,
        "actor_handle": event_row.actor_handle,
        "actor_role": event_row.actor_role,
        "care_unit_id": event_row.care_unit_id,
        "care_unit_name": event_row.care_unit_name,
        "relation": event_row.relation,
        "action": event_row.action,
        "resource": event_row.resource,
        "outcome": event_row.outcome,
        "patients": sorted(patient_ids),
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def write_pending(session: Session) -> None:
    """Append the queued entries to the chain (called from the before-commit hook)."""
    entries: list[AuditEntry] = session.info.pop(_PENDING, [])
    if not entries:
        return
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one()
    for entry in entries:
        row = AuditEvent(
            seq=head.last_seq + 1,
            occurred_at=entry.occurred_at,
            actor_id=entry.actor_id,
            actor_handle=entry.actor_handle,
            actor_role=entry.actor_role,
            care_unit_id=entry.care_unit_id,
            care_unit_name=entry.care_unit_name,
            relation=entry.relation,
            action=entry.action,
            resource=entry.resource,
            outcome=entry.outcome,
            prev_hash=head.last_hash,
            hash="",
        )
        row.hash = row_hash(head.last_hash, row, entry.patient_ids)
        session.add(row)
        session.flush()
        session.add_all(
            AuditSubject(event_seq=row.seq, patient_id=pid) for pid in set(entry.patient_ids)
        )
        head.last_seq, head.last_hash = row.seq, row.hash
    session.flush()


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    write_pending(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def access_log(
    session: Session, patient_id: str, *, limit: int, before_seq: int | None
) -> list[AuditEvent]:
    """The audit events that touched a patient's data, newest first."""
    query = (
        select(AuditEvent)
        .join(AuditSubject, AuditSubject.event_seq == AuditEvent.seq)
        .where(AuditSubject.patient_id == patient_id)
        .order_by(AuditEvent.seq.desc())
        .limit(limit)
    )
    if before_seq is not None:
        query = query.where(AuditEvent.seq < before_seq)
    return list(session.scalars(query))


def verify_chain(session: Session) -> int | None:
    """The seq of the first row whose hash does not follow from the chain, or None if intact."""
    prev = GENESIS_HASH
    expected_seq = 1
    subjects: dict[int, list[str]] = {}
    for seq, pid in session.execute(select(AuditSubject.event_seq, AuditSubject.patient_id)):
        subjects.setdefault(seq, []).append(pid)
    for row in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
        if row.seq != expected_seq or row.prev_hash != prev:
            return row.seq
        if row_hash(prev, row, subjects.get(row.seq, [])) != row.hash:
            return row.seq
        prev, expected_seq = row.hash, row.seq + 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.last_hash != prev or head.last_seq != expected_seq - 1):
        return expected_seq
    return None


def count_events(session: Session) -> int:
    """How many audit events exist."""
    return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)
