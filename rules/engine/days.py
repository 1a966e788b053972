"""The patient's zone and local days: the day starts that ``d`` windows and day anchors use."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

DEFAULT_TZ = "Europe/Stockholm"
"""The patient's zone when none is given: local days are days in this zone."""
DST_MARGIN = timedelta(hours=2)  # a local day may be up to this much longer than 24 h


def zone_of(tz: str | tzinfo) -> tzinfo:
    """Return the zone of a zone name, or the zone itself."""
    return _zone_named(tz) if isinstance(tz, str) else tz


@cache
def _zone_named(name: str) -> tzinfo:
    return ZoneInfo(name)


def local_day_start(moment: datetime, tz: str | tzinfo, days_back: int = 0) -> datetime:
    """Return the local midnight (in UTC) of the moment's local date less some days."""
    zone = zone_of(tz)
    return _midnight(moment.astimezone(zone).date() - timedelta(days=days_back), zone)


@lru_cache(maxsize=4096)
def _midnight(day: date, zone: tzinfo) -> datetime:
    # Every anchor of a day window asks for its day's start: a dense week re-checks ten
    # thousand anchors over a handful of dates.
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


__all__ = ["DEFAULT_TZ", "DST_MARGIN", "local_day_start", "zone_of"]
