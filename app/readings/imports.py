"""Imports as sources: Open mHealth documents and Dexcom Clarity CSV exports.

The file is turned into sync readings by the pure importers in ``sync.imports`` and then goes
through the very same ingest as a sync batch: the same normalisation, dedup and rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import BadRequest
from app.findings.models import Advice
from app.patients.models import Patient
from app.readings import service as readings_service
from sync.imports import ImportResult, dexcom_csv_to_readings, omh_to_readings
from sync.wire import SourceIn


class ImportFormat(StrEnum):
    """The file formats an import accepts."""

    OMH = "omh"
    DEXCOM_CSV = "dexcom-csv"


DEFAULT_SOURCES = {
    ImportFormat.OMH: ("import-omh", "Open mHealth import"),
    ImportFormat.DEXCOM_CSV: ("import-dexcom", "Dexcom Clarity export"),
}


@dataclass
class ImportOutcome:
    """What an import did, item by item."""

    results: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    advice: list[Advice] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        """Counts per outcome."""
        statuses = [r["status"] for r in self.results]
        return {
            "created": statuses.count("created"),
            "duplicate": statuses.count("duplicate"),
            "rejected": statuses.count("rejected") + len(self.rejected),
            "skipped": self.skipped,
        }


def parse(fmt: ImportFormat, body: bytes, *, timezone: str) -> ImportResult:
    """Read an import file into sync readings; 400 when the file cannot be read at all."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest("The file is not UTF-8 text.") from exc
    if fmt is ImportFormat.DEXCOM_CSV:
        return dexcom_csv_to_readings(text, zone=timezone)
    try:
        document = json.loads(text, parse_float=Decimal)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"The Open mHealth document is not valid JSON: {exc}"[:300]) from exc
    return omh_to_readings(document)


def import_file(
    session: Session,
    settings: Settings,
    *,
    patient: Patient,
    fmt: ImportFormat,
    body: bytes,
    source_id: str | None,
    entered_by: str | None,
    now: datetime,
) -> ImportOutcome:
    """Import a file for a patient through the sync ingest."""
    parsed = parse(fmt, body, timezone=patient.timezone)
    default_id, name = DEFAULT_SOURCES[fmt]
    source = SourceIn(id=source_id or default_id, kind="import", name=name)
    outcome = ImportOutcome(
        rejected=[
            {
                "where": r.where,
                "client_id": r.client_id,
                "status": "rejected",
                "errors": [{"loc": e.loc, "code": e.code, "message": e.message} for e in r.errors],
            }
            for r in parsed.rejected
        ],
        skipped=parsed.skipped,
    )
    if parsed.readings:
        ingested = readings_service.ingest(
            session,
            settings,
            patient=patient,
            source=source,
            items=parsed.readings,
            entered_by=entered_by,
            now=now,
        )
        outcome.results, outcome.advice = ingested.results, ingested.advice
    return outcome
