"""Read-only lookups of the patient list and the overview, a fixed number of queries each.

The policy has decided who the patients are before any of these run; each returns only
what the page shows (counts, a window of readings, the events of a window).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.dialogue.models import Message
from app.findings.models import Flag, FlagNote
from app.patients.models import Patient
from app.readings.models import Reading, ReadingStatus
from app.readings.repository import list_readings

READINGS_LIMIT = 60_000  # 90 days of CGM (25,920) and every other type besides


def patients(session: Session, patient_ids: Collection[str]) -> list[Patient]:
    """The patients by name."""
    if not patient_ids:
        return []
    query = select(Patient).where(Patient.id.in_(list(patient_ids)))
    return list(session.scalars(query.order_by(Patient.display_name, Patient.id)))


def received_by_type(
    session: Session, patient_ids: Collection[str], start: datetime, end: datetime
) -> dict[str, dict[str, int]]:
    """Counted readings per patient and type with ``start ≤ time < end``."""
    if not patient_ids:
        return {}
    c = Reading
    rows = session.execute(
        select(c.patient_id, c.type, func.count())
        .where(
            c.patient_id.in_(list(patient_ids)),
            c.time >= start,
            c.time < end,
            c.status == ReadingStatus.FINAL,
            c.duplicate_of.is_(None),
        )
        .group_by(c.patient_id, c.type)
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for pid, type_, n in rows:
        counts.setdefault(pid, {})[type_] = int(n)
    return counts


def window_readings(
    session: Session, patient_id: str, start: datetime, end: datetime
) -> list[Mapping[str, Any]]:
    """The patient's counted readings in the window, in time order."""
    rows = list_readings(
        session, patient_id, type_=None, start=start, end=end, after=None, limit=READINGS_LIMIT
    )
    return [r for r in rows if r["duplicate_of"] is None]


def notes_of(
    session: Session, patient_id: str, start: datetime, end: datetime
) -> list[tuple[FlagNote, Flag]]:
    """Notes on the patient's flags written in the window."""
    rows = session.execute(
        select(FlagNote, Flag)
        .join(Flag, Flag.id == FlagNote.flag_id)
        .where(
            Flag.patient_id == patient_id, FlagNote.created_at >= start, FlagNote.created_at <= end
        )  # fmt: skip
        .order_by(FlagNote.created_at)
    ).all()
    return [(note, flag) for note, flag in rows]


def messages_of(session: Session, patient_id: str, start: datetime, end: datetime) -> list[Message]:
    """The thread's messages written in the window."""
    query = select(Message).where(
        Message.patient_id == patient_id, Message.created_at >= start, Message.created_at <= end
    )
    return list(session.scalars(query.order_by(Message.created_at)))


def age_of(personnummer: str, today: date) -> int | None:
    """Whole years from a personnummer's birth date (a samordningsnummer's day is +60)."""
    try:
        year, month, day = int(personnummer[:4]), int(personnummer[4:6]), int(personnummer[6:8])
        born = date(year, month, day - 60 if day > 60 else day)
    except ValueError:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
