"""Adherence to the plan's schedule: readings received ÷ readings scheduled, in the patient's zone.

Pure functions (no database): the patient list gives them the plan's schedule and how many
counted readings of each type arrived in the window.

How the schedule is counted, in the patient's local time:
- ``daily``: each of the entry's times on every local day of the window;
- ``weekdays``: each time on Monday to Friday only;
- ``weekly``: each time once per whole week of the window (14 days: twice);
- an entry without times asks for one reading a day (or a weekday, or a week).

A reading counts for its type up to that type's scheduled number: two blood pressures at one
sitting do not make up for a missed morning, and the figure never passes 100 %.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from rules.plan import ScheduleEntry

WEEK = 7


@dataclass(frozen=True)
class Adherence:
    """Readings received and scheduled in a window; ``percent`` is None when none is scheduled."""

    received: int
    scheduled: int

    @property
    def percent(self) -> int | None:
        """Received ÷ scheduled as a whole percentage (None when nothing is scheduled)."""
        if self.scheduled == 0:
            return None
        return round(100 * self.received / self.scheduled)


def _local_days(start: datetime, end: datetime, tz: ZoneInfo) -> list[date]:
    first = start.astimezone(tz).date()
    last = end.astimezone(tz).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _slot_times(entry: ScheduleEntry) -> list[time]:
    if not entry.times:
        return [time(12, 0)]  # "once a day": counted at noon, so a partial day is fair
    return [time(int(t[:2]), int(t[3:])) for t in entry.times]


def scheduled_readings(entry: ScheduleEntry, start: datetime, end: datetime, timezone: str) -> int:
    """How many readings one schedule entry asks for with ``start ≤ slot < end``."""
    tz = ZoneInfo(timezone)
    slots = _slot_times(entry)
    if entry.days == "weekly":
        whole_weeks = int((end - start).total_seconds() // (WEEK * 86400))
        return whole_weeks * len(slots)
    count = 0
    for day in _local_days(start, end, tz):
        if entry.days == "weekdays" and day.weekday() >= 5:
            continue
        for slot in slots:
            at = datetime.combine(day, slot, tzinfo=tz)
            if start <= at < end:
                count += 1
    return count


def scheduled_by_type(
    schedule: Sequence[ScheduleEntry], start: datetime, end: datetime, timezone: str
) -> dict[str, int]:
    """Scheduled readings per measurement type in the window (entries of a type add up)."""
    counts: dict[str, int] = {}
    for entry in schedule:
        counts[entry.type] = counts.get(entry.type, 0) + scheduled_readings(
            entry, start, end, timezone
        )
    return counts


def adherence(
    schedule: Sequence[ScheduleEntry],
    received: Mapping[str, int],
    start: datetime,
    end: datetime,
    timezone: str,
) -> Adherence:
    """Readings received ÷ scheduled over the window, each type counted up to its schedule."""
    scheduled = scheduled_by_type(schedule, start, end, timezone)
    got = sum(min(received.get(type_, 0), wanted) for type_, wanted in scheduled.items())
    return Adherence(received=got, scheduled=sum(scheduled.values()))
