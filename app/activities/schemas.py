"""Activities' requests and answers, and the calendar link's."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from app.activities.models import MAX_NOTE, MAX_WHERE_OR_HOW, Kind, Status
from app.auth.people import PersonOut
from rules.text import MultiLine, SingleLine

Note = Annotated[MultiLine, Field(max_length=MAX_NOTE)]
WhereOrHow = Annotated[SingleLine, Field(max_length=MAX_WHERE_OR_HOW)]


class ActivityIn(BaseModel):
    """A new activity; ``who`` defaults to the clinician booking it."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    start: AwareDatetime
    end: AwareDatetime | None = None
    who: str | None = Field(default=None, max_length=36)
    where_or_how: WhereOrHow = ""
    note: Note | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> ActivityIn:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class ActivityPatchIn(BaseModel):
    """Move, cancel or mark done: any of the fields; ``end`` and ``note`` may be set to null."""

    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    where_or_how: WhereOrHow | None = None
    note: Note | None = None
    status: Status | None = None


class ActivityOut(BaseModel):
    """One activity; ``who`` names the clinician and the care unit they meet the patient from."""

    id: str
    patient_id: str
    kind: Kind
    start: AwareDatetime
    end: AwareDatetime | None
    who: PersonOut
    where_or_how: str
    status: Status
    note: str | None
    created_at: AwareDatetime
    created_by: str
    updated_at: AwareDatetime


class ActivityListOut(BaseModel):
    """A patient's activities, by start."""

    items: list[ActivityOut]


class CalendarLinkOut(BaseModel):
    """The address of the patient's .ics feed: unguessable, shown once."""

    url: str
