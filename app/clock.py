"""The one place the service reads the clock; tests replace it."""

from __future__ import annotations

from datetime import UTC, datetime


class Clock:
    """Returns the current time; tests set ``fixed`` to freeze it."""

    fixed: datetime | None = None

    def now(self) -> datetime:
        """Now, aware, in UTC."""
        return self.fixed if self.fixed is not None else datetime.now(UTC)


clock = Clock()


def utcnow() -> datetime:
    """Now, aware, in UTC (the shared clock)."""
    return clock.now()
