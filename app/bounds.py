"""Bounds on what enters from outside: times and days the service can compute with.

A time like ``9999-12-31T23:59:59-14:00`` is valid ISO 8601 but overflows when it is turned
into UTC, and an integer past 2**63 overflows a PostgreSQL ``bigint``: both used to answer 500.
Every time, day and integer that enters through a query, a path, a body or a cursor goes
through these types, so such input answers 422 with its reason instead.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, Field

EARLIEST_DAY = date(1901, 1, 1)
LATEST_DAY = date(2100, 12, 31)
"""The days a time or a day may fall on (readings before 1901 are placeholder dates)."""

MAX_DB_INT = 2**63 - 1
"""The largest integer a ``bigint`` column (and a sequence) holds."""


def bounded_time(value: datetime) -> datetime:
    """Return an aware time whose UTC day lies in 1901–2100; raise ValueError otherwise."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("needs a UTC offset")
    try:
        day = value.astimezone(UTC).date()
    except OverflowError as exc:
        raise ValueError("must lie between 1901 and 2100") from exc
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ValueError("must lie between 1901 and 2100")
    return value


BoundedTime = Annotated[datetime, AfterValidator(bounded_time)]
"""An aware time within 1901–2100 (UTC)."""

BoundedDay = Annotated[date, Field(ge=EARLIEST_DAY, le=LATEST_DAY)]
"""A calendar day within 1901–2100."""

DbInt = Annotated[int, Field(ge=0, le=MAX_DB_INT)]
"""A non-negative integer a database column can hold."""

__all__ = [
    "EARLIEST_DAY",
    "LATEST_DAY",
    "MAX_DB_INT",
    "BoundedDay",
    "BoundedTime",
    "DbInt",
    "bounded_time",
]
