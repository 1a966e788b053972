"""The access log as the API shows it (times as the log's ISO strings, offset ``+00:00``)."""

from __future__ import annotations

from pydantic import BaseModel


class LoggedActorOut(BaseModel):
    """Who accessed: the logged fields, and their name and care unit in words."""

    id: str | None
    handle: str
    role: str
    display_name: str | None
    care_unit: str | None


class LoggedCareUnitOut(BaseModel):
    """The care unit the access was made from."""

    id: str
    name: str | None


class AccessLogEntryOut(BaseModel):
    """One access to the patient's data."""

    seq: int
    at: str
    actor: LoggedActorOut
    relation: str
    care_unit: LoggedCareUnitOut | None
    action: str
    resource: str
    outcome: str


class AccessLogOut(BaseModel):
    """A page of the access log, newest first; ``next_before`` pages back."""

    items: list[AccessLogEntryOut]
    next_before: int | None
