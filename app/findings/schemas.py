"""Findings bodies and answers: advice, flags, their notes, the worklist.

Times are the ISO strings the service writes (``isoformat()``, offset ``+00:00``), except in
``NoteOut`` (the answer to adding a note), which has always been a parsed time (``Z``).
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.auth.people import PersonOut
from rules.text import MultiLine

MAX_NOTE = 2000


class FlagActionIn(BaseModel):
    """An optional note on acknowledging or resolving a flag (appended to its notes)."""

    model_config = ConfigDict(extra="forbid")

    note: MultiLine = Field(default="", max_length=MAX_NOTE)


class NoteIn(BaseModel):
    """A note on a flag, for the care team."""

    model_config = ConfigDict(extra="forbid")

    body: MultiLine = Field(min_length=1, max_length=MAX_NOTE)


class NoteOut(BaseModel):
    """A flag note and who wrote it, from which care unit."""

    id: str
    flag_id: str
    author: PersonOut | None
    body: str
    created_at: AwareDatetime


class RuleRefOut(BaseModel):
    """Which rule, in which version, produced a finding."""

    id: str
    version: int


class AdviceOut(BaseModel):
    """Advice in one language, to the patient or (about the patient) to a proxy."""

    id: str
    rule: RuleRefOut
    priority: str
    title: str
    body: str
    lang: str
    reading_ids: list[str]
    evaluation_id: str | None
    created_at: str
    not_pushed: str | None  # pushed, or why not: "stale", "muted"
    fresh_until: str | None
    withdrawn_at: str | None
    withdrawn_reason: str | None


class AdviceListOut(BaseModel):
    """The patient's advice, newest first."""

    items: list[AdviceOut]


class FlagNoteOut(BaseModel):
    """A note in a flag's history (for the care team only)."""

    id: str
    flag_id: str
    author: PersonOut | None
    body: str
    created_at: str


class FlagPatientOut(BaseModel):
    """Whose flag it is, with their unread messages (null: not the reader's to read)."""

    id: str
    display_name: str | None
    unread_messages: int | None = None


class FlagOut(BaseModel):
    """A flag for the care team: what fired, why, and who handled it.

    ``explanation`` is the rule engine's account (readings, computed values, thresholds);
    ``notes`` is there only for the care team's own patients.
    """

    id: str
    patient_id: str
    rule: RuleRefOut
    severity: str
    status: str
    title: str
    explanation: dict[str, Any]
    reading_ids: list[str]
    firing_count: int
    created_at: str
    updated_at: str
    due_at: str | None
    overdue: bool
    escalated_at: str | None
    acknowledged_at: str | None
    acknowledged_by: PersonOut | None
    resolved_at: str | None
    resolved_by: PersonOut | None
    entered_in_error: list[str]
    corrected_at: str | None
    correction: str | None
    patient: FlagPatientOut
    notes: list[FlagNoteOut] | None = None


class FlagListOut(BaseModel):
    """Flags, most severe first, then oldest."""

    items: list[FlagOut]
