"""The dialogue's requests and answers."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.auth.people import PersonOut
from app.dialogue.models import MAX_BODY, Side
from rules.text import MultiLine


class MessageIn(BaseModel):
    """A message to the thread, stored as written (line breaks and tabs kept)."""

    model_config = ConfigDict(extra="forbid")

    body: MultiLine = Field(min_length=1, max_length=MAX_BODY)


class MessageOut(BaseModel):
    """One message; ``read_at`` is when the other side first opened it."""

    id: str
    patient_id: str
    author: PersonOut
    side: Side
    body: str
    created_at: AwareDatetime
    read_at: AwareDatetime | None


class ThreadOut(BaseModel):
    """The latest messages, oldest first; ``unread``: how many this opening marked read."""

    items: list[MessageOut]
    unread: int
