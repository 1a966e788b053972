"""Identity bodies: the caller's own preferences."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class QuietHours(BaseModel):
    """Local times between which routine pushes wait (urgent ones never wait)."""

    model_config = ConfigDict(extra="forbid")

    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["22:00"])
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["07:00"])


class PreferencesIn(BaseModel):
    """What a user may change about themselves; ``quiet_hours: null`` means the default."""

    model_config = ConfigDict(extra="forbid")

    language: Literal["sv", "en"] | None = None
    quiet_hours: QuietHours | None = None
