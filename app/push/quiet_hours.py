"""Local time for pushes: the patient's zone, and a user's quiet hours in it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

_HH_MM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_hh_mm(text: Any) -> time | None:
    """``"HH:MM"`` as a time, or None when it is not one."""
    match = _HH_MM.match(text) if isinstance(text, str) else None
    return time(int(match.group(1)), int(match.group(2))) if match else None


def local_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """A wall-clock time on a local day, in UTC.

    DST: a time that does not exist (the spring gap, 02:30 on the last Sunday of March in
    Stockholm) is read with the offset before the switch, so it lands an hour later on the
    clock (03:30); a time that exists twice (autumn) means its first occurrence.
    """
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def quiet_until(quiet: Mapping[str, Any] | None, zone: ZoneInfo, now: datetime) -> datetime | None:
    """When the quiet hours around ``now`` end (UTC), or None when it is not quiet now.

    ``quiet`` is ``{"start": "22:00", "end": "07:00"}`` in the zone; start is inclusive, end
    exclusive; a window may span midnight; equal or malformed times mean no quiet hours.
    """
    if not quiet:
        return None
    start, end = parse_hh_mm(quiet.get("start")), parse_hh_mm(quiet.get("end"))
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    today = local.date()
    if start < end:
        if not start <= clock < end:
            return None
        end_day = today
    else:
        if not (clock >= start or clock < end):
            return None
        end_day = today if clock < end else today + timedelta(days=1)
    return max(local_to_utc(end_day, end, zone), now)
