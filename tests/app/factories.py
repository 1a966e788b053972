"""Typed builders of request bodies and lookups shared by the API tests."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import User
from app.clock import utcnow
from app.patients.models import Patient

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def patient_id(session: Session, handle: str) -> str:
    """The patient id of a seeded patient handle."""
    user = session.scalars(select(User).where(User.handle == handle)).one()
    return session.scalars(select(Patient.id).where(Patient.user_id == user.id)).one()


def when(minutes_ago: float = 5, *, now: datetime | None = None) -> str:
    """An ISO time with the Stockholm winter offset, ``minutes_ago`` before now."""
    moment = (now or utcnow()) - timedelta(minutes=minutes_ago)
    return moment.astimezone(STOCKHOLM).isoformat()


def bp(
    systolic: float, diastolic: float, *, minutes_ago: float = 5, client_id: str | None = None
) -> dict[str, Any]:
    """A blood-pressure reading."""
    return {
        "client_id": client_id or str(uuid.uuid4()),
        "type": "blood_pressure",
        "time": when(minutes_ago),
        "value": {"systolic": systolic, "diastolic": diastolic},
        "unit": "mm[Hg]",
        "context": {"position": "sitting", "arm": "left"},
    }


def scalar(
    type_: str,
    value: float,
    unit: str,
    *,
    minutes_ago: float = 5,
    client_id: str | None = None,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A reading of a scalar type."""
    item: dict[str, Any] = {
        "client_id": client_id or str(uuid.uuid4()),
        "type": type_,
        "time": when(minutes_ago),
        "value": value,
        "unit": unit,
    }
    if context:
        item["context"] = context
    return item


def batch(
    *readings: dict[str, Any],
    source: str = "test-phone",
    cursor: str | None = None,
    kind: str = "app",
) -> dict[str, Any]:
    """A sync request body."""
    return {
        "source": {"id": source, "kind": kind, "name": "Testappen", "version": "1.0"},
        "readings": list(readings),
        "cursor": cursor,
    }
