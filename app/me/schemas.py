"""Identity bodies and answers: the caller's own preferences, who they are, their teams."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.consent.schemas import GrantOut


class QuietHours(BaseModel):
    """Local times between which routine pushes wait (urgent ones never wait)."""

    model_config = ConfigDict(extra="forbid")

    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["22:00"])
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["07:00"])


class PreferencesIn(BaseModel):
    """What a user may change about themselves; ``null`` quiet hours or lock screen: the default."""

    model_config = ConfigDict(extra="forbid")

    language: Literal["sv", "en"] | None = None
    quiet_hours: QuietHours | None = None
    # What a push may show on a locked screen: a neutral text (default) or the advice's title.
    lock_screen: Literal["neutral", "title"] | None = None


class CallerOut(BaseModel):
    """The caller as ``GET /v1/me`` shows them."""

    id: str
    handle: str
    display_name: str | None
    role: str
    language: str
    quiet_hours: QuietHours | None
    lock_screen: Literal["neutral", "title"] = "neutral"


class MyPatientOut(BaseModel):
    """A patient the caller may act for, with the relation and (a proxy's) scopes.

    ``valid_to`` is there for a proxy only: when the grant in force ends (null: no end).
    """

    id: str
    display_name: str
    relation: str
    scopes: list[str]
    valid_to: datetime | None = None


class MeOut(BaseModel):
    """The caller, the patients they may act for, and their grants (given and held)."""

    user: CallerOut
    patients: list[MyPatientOut]
    grants: list[GrantOut]


class TeamCareUnitOut(BaseModel):
    """The care unit a team belongs to."""

    id: str
    name: str


class MyTeamOut(BaseModel):
    """A care team of the caller."""

    id: str
    name: str
    care_unit: TeamCareUnitOut


class MyTeamListOut(BaseModel):
    """The caller's care teams (an administrator: every team)."""

    items: list[MyTeamOut]
