"""The per-patient change feed.

Every change to a patient's data is appended with the next number of that patient's feed,
taken under a row lock on the patient's ``FeedHead``. The lock is held until commit, so a
patient's numbers are assigned in commit order: a reader that polls ``seq > cursor`` never
skips a change that was committed late. (A global autoincrement id would: a transaction that
took id 7 but committed after id 8 was read is skipped for ever.)
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import BadRequest, Gone
from app.readings.models import Change, FeedHead
from sync.cursor import InvalidCursor, decode_cursor, encode_cursor

_LOCKED = "feed_locked_patients"
MAX_CHANGES = 500


def lock_patient(session: Session, patient_id: str) -> FeedHead:
    """Take the patient's feed lock for this transaction (creating the head on first use).

    Ingest takes it first thing, so concurrent batches for one patient serialise: that makes
    cross-source duplicate detection and feed ordering race-free.
    """
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(FeedHead).values(patient_id=patient_id, last_seq=0).on_conflict_do_nothing()
    )
    head = session.execute(
        select(FeedHead).where(FeedHead.patient_id == patient_id).with_for_update()
    ).scalar_one()
    session.info.setdefault(_LOCKED, set()).add(patient_id)
    return head


def append(
    session: Session,
    patient_id: str,
    *,
    entity: str,
    op: str,
    entity_id: str,
    data: dict[str, Any],
    now: datetime,
) -> Change:
    """Append one change to the patient's feed."""
    head = lock_patient(session, patient_id)
    head.last_seq += 1
    change = Change(
        patient_id=patient_id,
        seq=head.last_seq,
        entity=entity,
        op=op,
        entity_id=entity_id,
        data=data,
        created_at=now,
    )
    session.add(change)
    return change


@dataclass(frozen=True)
class FeedPage:
    """Changes after a cursor, the cursor to continue from, and whether more wait."""

    changes: list[dict[str, Any]]
    cursor: str
    has_more: bool


def cursor_key(settings: Settings) -> bytes:
    """The key that signs cursors: configured, or generated into ``var/`` once."""
    if settings.cursor_secret:
        return settings.cursor_secret.encode()
    path = settings.var_dir / "cursor-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(secrets.token_hex(32))
        tmp.replace(path)
    return path.read_text().strip().encode()


def read(
    session: Session,
    settings: Settings,
    patient_id: str,
    cursor: str | None,
    *,
    limit: int = MAX_CHANGES,
) -> FeedPage:
    """The changes after ``cursor`` (all of them when None), at most ``limit``."""
    key = cursor_key(settings)
    after = 0
    if cursor:
        try:
            after = decode_cursor(cursor, patient_id, key=key)
        except InvalidCursor as exc:
            raise BadRequest("The cursor is not valid for this patient.") from exc
        oldest = session.scalar(select(func.min(Change.seq)).where(Change.patient_id == patient_id))
        if oldest is not None and after < oldest - 1:
            raise Gone("The cursor is too old; read the patient's data again.")
    limit = max(1, min(limit, MAX_CHANGES))
    rows = session.scalars(
        select(Change)
        .where(Change.patient_id == patient_id, Change.seq > after)
        .order_by(Change.seq)
        .limit(limit + 1)
    ).all()
    page = rows[:limit]
    last = page[-1].seq if page else after
    return FeedPage(
        changes=[{"entity": c.entity, "op": c.op, "id": c.entity_id, "data": c.data} for c in page],
        cursor=encode_cursor(patient_id, last, key=key),
        has_more=len(rows) > limit,
    )
