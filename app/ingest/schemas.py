"""Readings answers: sync, the change feed, the reading list and file imports.

Measured values are JSON numbers with the decimals as stored (``7.1``, ``96.0``, ``142``);
times are the ISO strings the service writes (``isoformat()``, offset ``+00:00``). Per-item
results are ``sync.wire``'s ``ItemResult``; keys a result does not carry are left out
(``response_model_exclude_unset``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict

from app.findings.schemas import AdviceOut
from sync.wire import ItemErrorOut, ItemResult

# Strict: decimal text is refused, never coerced, so a string slipping back into an answer
# fails loudly instead of being patched over here.
Number = Annotated[int, Strict()] | Annotated[float, Strict()]
Value = Number | dict[str, Number]  # one value, or named components (systolic, diastolic)


class ChangeOut(BaseModel):
    """One entry of the change feed: which entity, what happened, and its current form.

    ``data`` is the entity as its own answer shows it (a reading, advice, a flag, a goal …).
    """

    entity: str
    op: str
    id: str
    data: dict[str, Any] | None


class SyncOut(BaseModel):
    """The answer to a sync: per-item results, new advice, and the changes since the cursor."""

    results: list[ItemResult]
    advice: list[AdviceOut]
    changes: list[ChangeOut]
    cursor: str | None
    has_more: bool


class ChangesOut(BaseModel):
    """A page of the change feed; ``cursor`` continues it."""

    changes: list[ChangeOut]
    cursor: str | None
    has_more: bool


class OriginalOut(BaseModel):
    """A reading as it was sent, before conversion to the canonical unit."""

    value: Value
    unit: str | None


class ReadingOut(BaseModel):
    """A stored reading."""

    id: str
    client_id: str | None
    source_id: str | None
    type: str
    time: str
    utc_offset_minutes: int | None
    end_time: str | None
    value: Value
    unit: str
    original: OriginalOut
    loinc: str | None
    context: dict[str, Any] | None
    status: str
    duplicate_of: str | None
    received_at: str


class ReadingListOut(BaseModel):
    """A page of readings in time order; ``next_cursor`` continues it."""

    items: list[ReadingOut]
    next_cursor: str | None


class ImportStopOut(BaseModel):
    """Where a stopped import stopped: the chunk the database refused, and why."""

    chunk: int
    reading_index: int
    client_id: str
    reason: str


class ImportRunOut(BaseModel):
    """The import run: how far it got, in chunks committed one by one."""

    id: str
    status: str
    readings: int
    chunks: int
    chunks_committed: int
    attempts: int
    stopped_at: ImportStopOut | None


class ImportSummaryOut(BaseModel):
    """How many readings of the file ended how."""

    created: int
    duplicate: int
    rejected: int
    skipped: int
    unprocessed: int


class ImportRejectedOut(BaseModel):
    """A part of the file that could not be read as a reading, and where it is."""

    where: str
    client_id: str | None
    status: str
    errors: list[ItemErrorOut]


class ImportOut(BaseModel):
    """The answer to a file import: the run, a summary, per-item results and new advice."""

    model_config = ConfigDict(populate_by_name=True)

    import_: ImportRunOut = Field(alias="import")
    summary: ImportSummaryOut
    results: list[ItemResult]
    rejected: list[ImportRejectedOut]
    ignored: list[str] = Field(
        default_factory=list, description="what was skipped (not a measurement), where and why"
    )
    advice: list[AdviceOut]
