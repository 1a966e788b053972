"""Effective time frames of Open mHealth: date-times, intervals and durations."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sync.imports.omh.errors import Errors
from sync.imports.omh.fields import number
from sync.normalise import ItemErrorCode

_DURATION_SECONDS = {
    "ps": Decimal("1e-12"),
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "ms": Decimal("1e-3"),
    "sec": Decimal(1),
    "min": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86400),
    "wk": Decimal(604800),
}  # Mo and yr are valid OMH units but have no fixed length


def time_frame(frame: Any, errors: Errors) -> tuple[datetime, datetime | None] | None:
    """Return (start, end or None) of an effective time frame, with offsets kept."""
    loc = "effective_time_frame"
    if frame is None:
        errors.invalid(loc, "effective_time_frame is required: a reading needs a time")
        return None
    if not isinstance(frame, dict) or ("date_time" in frame) == ("time_interval" in frame):
        errors.invalid(loc, "effective_time_frame needs exactly one of date_time, time_interval")
        return None
    if "date_time" in frame:
        point = _date_time(frame["date_time"], f"{loc}.date_time", errors)
        return None if point is None else (point, None)
    return _time_interval(frame["time_interval"], f"{loc}.time_interval", errors)


def _time_interval(
    interval: Any, loc: str, errors: Errors
) -> tuple[datetime, datetime | None] | None:
    if not isinstance(interval, dict):
        errors.invalid(loc, "time_interval must be an object")
        return None
    if "part_of_day" in interval or "date" in interval:
        errors.invalid(loc, "a date and part of day is not a time; a reading needs a time")
        return None
    before = len(errors)
    start = _date_time(interval.get("start_date_time"), f"{loc}.start_date_time", errors, True)
    end = _date_time(interval.get("end_date_time"), f"{loc}.end_date_time", errors, True)
    duration = _duration(interval.get("duration"), f"{loc}.duration", errors)
    if len(errors) > before:
        return None
    if sum(x is not None for x in (start, end, duration)) != 2:
        errors.invalid(loc, "time_interval needs two of start_date_time, end_date_time, duration")
        return None
    if start is None:
        assert end is not None and duration is not None
        start = end - duration
    elif end is None:
        assert duration is not None
        end = start + duration
    if end <= start:
        errors.invalid(loc, "the interval ends before it starts")
        return None
    return start, end


def _date_time(value: Any, loc: str, errors: Errors, optional: bool = False) -> datetime | None:
    if value is None:
        if not optional:
            errors.invalid(loc, "a date-time is required")
        return None
    if not isinstance(value, str) or not 10 < len(value) <= 64:
        errors.invalid(loc, "expected an RFC 3339 date-time text")
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        errors.invalid(loc, "not a valid RFC 3339 date-time")
        return None
    if parsed.utcoffset() is None:
        errors.add(loc, ItemErrorCode.missing_offset, "the date-time has no UTC offset")
        return None
    return parsed


def _duration(value: Any, loc: str, errors: Errors) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("unit") not in _DURATION_SECONDS:
        units = ", ".join(_DURATION_SECONDS)
        errors.invalid(loc, f"duration must be a value with a unit of fixed length ({units})")
        return None
    amount = number(value.get("value"), f"{loc}.value", errors)
    if amount is None:
        return None
    seconds = Decimal(str(amount)) * _DURATION_SECONDS[value["unit"]]
    if not 0 < seconds <= Decimal(86400 * 366):
        errors.invalid(loc, "the duration must be positive and at most a year")
        return None
    return timedelta(microseconds=int(seconds * 1_000_000))


__all__ = ["time_frame"]
