"""The patient's local time: zone, today, the start of a local day (in UTC)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo
from zoneinfo import ZoneInfo

from app.patients.models import Patient


def zone_of(patient: Patient) -> tzinfo:
    """The patient's IANA zone."""
    return ZoneInfo(patient.timezone or "Europe/Stockholm")


def local_today(patient: Patient, now: datetime) -> date:
    """The patient's local date at ``now``."""
    return now.astimezone(zone_of(patient)).date()


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The start of a local day, in UTC."""
    return datetime.combine(day, time(0), tz).astimezone(UTC)
