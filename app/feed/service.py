"""The per-patient change feed.

Every change to a patient's data is appended with the next number of that patient's feed,
taken under a row lock on the patient's ``FeedHead``. The lock is held until commit, so a
patient's numbers are assigned in commit order: a reader that polls ``seq > cursor`` never
skips a change that was committed late. (A global autoincrement id would: a transaction that
took id 7 but committed after id 8 was read is skipped for ever.)
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app import bulk
from app.config import Settings
from app.errors import BadRequest, Gone
from app.feed.models import Change, FeedHead
from rules.catalogue import json_value
from rules.engine import explanation_json
from sync.cursor import InvalidCursor, decode_cursor, encode_cursor

_LOCKED = "feed_locked_patients"
CHANGES = cast(Table, Change.__table__)
HEADS = cast(Table, FeedHead.__table__)
MAX_CHANGES = 500


def _head_upsert(insert: Any) -> Any:
    # One statement: create the head, or touch it. An upsert that updates the row locks it
    # for the transaction as SELECT … FOR UPDATE would (PostgreSQL; SQLite's one writer
    # holds the whole database), and returns the head as it is now.
    return (
        insert(HEADS)
        .values(patient_id=bindparam("patient"), last_seq=0)
        .on_conflict_do_update(
            index_elements=[HEADS.c.patient_id], set_={"last_seq": HEADS.c.last_seq}
        )
        .returning(HEADS.c.last_seq)
    )


# Built once: the sync's statements are the same each time, and building one (and its cache
# key) costs as much as SQLAlchemy's whole execution of it from the compiled cache.
_HEAD_UPSERTS = {
    "postgresql": _head_upsert(postgresql.insert),
    "sqlite": _head_upsert(sqlite.insert),
}
_MOVE_HEAD = (
    update(HEADS)
    .where(HEADS.c.patient_id == bindparam("patient"))
    .values(last_seq=bindparam("seq"))
)
_CHANGES_AFTER = (  # plain rows: a page is up to 500 changes, each read once into the answer
    select(CHANGES.c.seq, CHANGES.c.entity, CHANGES.c.op, CHANGES.c.entity_id, CHANGES.c.data)
    .where(CHANGES.c.patient_id == bindparam("patient"), CHANGES.c.seq > bindparam("after"))
    .order_by(CHANGES.c.seq)
    .limit(bindparam("limit"))
)


@dataclass
class HeldHead:
    """A patient's feed head as this transaction holds it: the last number given out."""

    last_seq: int


def lock_patient(session: Session, patient_id: str) -> HeldHead:
    """Take the patient's feed lock for this transaction (creating the head on first use).

    Ingest takes it first thing, so concurrent batches for one patient serialise: that makes
    cross-source duplicate detection and feed ordering race-free. The lock is taken once per
    transaction; later calls return the held head. Core rows, not an ORM object: the head is
    read and moved once or twice a request, and the unit of work's flush for it cost more
    than the statements.
    """
    held: dict[str, HeldHead] = session.info.setdefault(_LOCKED, {})
    if patient_id in held:
        return held[patient_id]
    upsert = _HEAD_UPSERTS[session.get_bind().dialect.name]
    head = HeldHead(session.execute(upsert, {"patient": patient_id}).scalar_one())
    held[patient_id] = head
    return head


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _release(session: Session) -> None:
    session.info.pop(_LOCKED, None)  # row locks end with the transaction


@dataclass(frozen=True)
class ChangeEntry:
    """One change to append: what kind of thing, what happened, its id and its API form."""

    entity: str
    op: str
    entity_id: str
    data: dict[str, Any]


def append_many(
    session: Session, patient_id: str, entries: Sequence[ChangeEntry], *, now: datetime
) -> None:
    """Append changes to the patient's feed, numbered in order, in one statement."""
    if not entries:
        return
    head = lock_patient(session, patient_id)
    first = head.last_seq + 1
    head.last_seq += len(entries)
    session.execute(_MOVE_HEAD, {"patient": patient_id, "seq": head.last_seq})
    bulk.insert_rows(
        session,
        CHANGES,  # Core rows: no ORM bulk machinery for a batch's thousands of rows
        [
            {
                "patient_id": patient_id,
                "seq": first + offset,
                "entity": e.entity,
                "op": e.op,
                "entity_id": e.entity_id,
                "data": e.data,
                "created_at": now,
            }
            for offset, e in enumerate(entries)
        ],
    )


def append(
    session: Session,
    patient_id: str,
    *,
    entity: str,
    op: str,
    entity_id: str,
    data: dict[str, Any],
    now: datetime,
) -> None:
    """Append one change to the patient's feed."""
    append_many(session, patient_id, [ChangeEntry(entity, op, entity_id, data)], now=now)


def last_seq(session: Session, patient_id: str) -> int:
    """The last number of the patient's feed: as this transaction holds it, else as read."""
    held: dict[str, HeldHead] | None = session.info.get(_LOCKED)
    if held is not None and patient_id in held:
        return held[patient_id].last_seq
    found = session.scalar(select(FeedHead.last_seq).where(FeedHead.patient_id == patient_id))
    return found or 0


@dataclass(frozen=True)
class FeedPage:
    """Changes after a cursor, the cursor to continue from, and whether more wait."""

    changes: list[dict[str, Any]]
    cursor: str
    has_more: bool


def answer_data(entity: str, data: dict[str, Any]) -> dict[str, Any]:
    """A change's data as answers show it: measured values as JSON numbers (DESIGN §4.9).

    Rows written before values were numbers keep their decimal text in the feed; they are
    converted here, on the way out, so old and new rows answer alike.
    """
    if entity == "reading" and "value" in data:
        shown = {**data, "value": json_value(data["value"])}
        original = data.get("original")
        if isinstance(original, dict) and "value" in original:
            shown["original"] = {**original, "value": json_value(original["value"])}
        return shown
    if entity == "flag" and isinstance(data.get("explanation"), dict):
        return {**data, "explanation": explanation_json(data["explanation"])}
    return data


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
    limit = max(1, min(limit, MAX_CHANGES))
    rows = session.execute(
        _CHANGES_AFTER, {"patient": patient_id, "after": after, "limit": limit + 1}
    ).all()
    # Retention drops the oldest changes first: when the change right after the cursor is
    # still there, none it needs is gone, and the oldest need not be asked for.
    if cursor and not (rows and rows[0].seq == after + 1):
        oldest = session.scalar(select(func.min(Change.seq)).where(Change.patient_id == patient_id))
        if oldest is not None and after < oldest - 1:
            raise Gone("The cursor is too old; read the patient's data again.")
    page = rows[:limit]
    last = page[-1].seq if page else after
    return FeedPage(
        changes=[
            {
                "entity": c.entity,
                "op": c.op,
                "id": c.entity_id,
                "data": answer_data(c.entity, c.data),
            }
            for c in page
        ],
        cursor=encode_cursor(patient_id, last, key=key),
        has_more=len(rows) > limit,
    )
