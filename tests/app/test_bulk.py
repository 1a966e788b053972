"""A batch's rows inserted in bulk (``COPY`` on PostgreSQL) read back as an INSERT stores them,
and a bad batch fails as an INSERT fails: a SQLAlchemy error, nothing stored (both databases)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app import bulk
from app.db import transaction
from app.feed.service import CHANGES
from tests.app.factories import patient_id

# What a client may put in ids and values: COPY's text format has its own escapes (tab,
# newline, backslash), and JSON its own.
HOSTILE = [
    "tab\there",
    "new\nline",
    "back\\slash\\.",
    "\\N",
    'quote\'s "double"',
    "x') OR ('1'='1",
    "åäö ÅÄÖ – 😀",
    "%(patient)s %s %%",
    "\r\n\\t",
]


def _rows(pid: str, first_seq: int, count: int) -> list[dict[str, Any]]:
    zone = timezone(timedelta(hours=1))  # an aware time not in UTC: stored as its UTC instant
    base = datetime(2026, 12, 1, 8, 30, 15, 123456, tzinfo=zone)
    return [
        {
            "patient_id": pid,
            "seq": first_seq + i,
            "entity": "reading",
            "op": "upsert",
            "entity_id": HOSTILE[i % len(HOSTILE)][:36],
            "data": {
                "text": HOSTILE[i % len(HOSTILE)],
                "nested": {"list": [1, 2.5, None, True], "empty": {}},
                "number": i,
            },
            "created_at": base + timedelta(seconds=i),
        }
        for i in range(count)
    ]


def _stored(factory: sessionmaker[Session], pid: str) -> list[dict[str, Any]]:
    with transaction(factory) as s:
        found = s.execute(
            select(
                CHANGES.c.patient_id, CHANGES.c.seq, CHANGES.c.entity, CHANGES.c.op,
                CHANGES.c.entity_id, CHANGES.c.data, CHANGES.c.created_at,
            ).where(CHANGES.c.patient_id == pid).order_by(CHANGES.c.seq)
        ).mappings()  # fmt: skip
        return [dict(row) for row in found]


@pytest.mark.parametrize("count", [1, bulk.COPY_FROM_ROWS, 300])
def test_rows_read_back_as_given(factory: sessionmaker[Session], count: int) -> None:
    """Few rows (INSERT) and many (COPY on PostgreSQL) store the same values: strings with
    COPY's and JSON's special characters, nested JSON, an aware time as its UTC instant."""
    with transaction(factory) as s:
        pid = patient_id(s, "allan")
        s.execute(delete(CHANGES).where(CHANGES.c.patient_id == pid))
    rows = _rows(pid, 1, count)
    with transaction(factory) as s:
        bulk.insert_rows(s, CHANGES, rows)
    stored = _stored(factory, pid)
    assert len(stored) == count
    for given, got in zip(rows, stored, strict=True):
        assert got["created_at"] == given["created_at"]
        assert got["created_at"].utcoffset() == timedelta(0)
        assert {**got, "created_at": None} == {**given, "created_at": None}


def test_a_duplicate_fails_the_batch_as_an_insert_would(factory: sessionmaker[Session]) -> None:
    """A row that breaks a unique constraint fails the whole batch with IntegrityError (not
    a driver's own error), and none of its rows is stored."""
    with transaction(factory) as s:
        pid = patient_id(s, "allan")
        s.execute(delete(CHANGES).where(CHANGES.c.patient_id == pid))
    rows = _rows(pid, 1, 50)
    rows[40]["seq"] = rows[3]["seq"]  # (patient_id, seq) is unique
    with pytest.raises(IntegrityError), transaction(factory) as s:
        bulk.insert_rows(s, CHANGES, rows)
    assert _stored(factory, pid) == []
