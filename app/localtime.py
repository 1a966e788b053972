"""The patient's local time: zone, today, the start of a local day (in UTC).

The default zone is the rules core's (:data:`rules.engine.DEFAULT_TZ`, Europe/Stockholm):
local days in the app are the days the rules count in.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.patients.models import Patient
from rules.engine import DEFAULT_TZ


def zone_of(patient: Patient) -> tzinfo:
    """The patient's IANA zone."""
    return ZoneInfo(patient.timezone or DEFAULT_TZ)


def zone_named(name: str | None) -> ZoneInfo:
    """The IANA zone by name; the default zone when the name is unknown."""
    try:
        return ZoneInfo(name or DEFAULT_TZ)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TZ)


def local_today(patient: Patient, now: datetime) -> date:
    """The patient's local date at ``now``."""
    return now.astimezone(zone_of(patient)).date()


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The start of a local day, in UTC."""
    return datetime.combine(day, time(0), tz).astimezone(UTC)
