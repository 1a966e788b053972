"""Imports as sources: Open mHealth documents, Dexcom Clarity CSV exports and FHIR R4.

(Apple Health exports are streamed from a file instead: :mod:`app.ingest.streamed`.)

The file is turned into sync readings by the pure importers in ``sync.imports`` and then goes
through the very same ingest as a sync batch: the same normalisation, dedup and rules. A
large file goes in chunks of at most ``Settings.import_chunk_readings`` (5,000), each
committed on its own, so that a year of CGM neither holds the write lock for minutes nor is
lost whole when one chunk fails; the import's row (``ImportRun``) says how far it got, and
posting the same file again completes it without duplicates.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import BadRequest
from app.findings.models import Advice
from app.ingest import pipeline
from app.patients.models import Patient
from app.readings import repository as readings_repository
from app.readings.models import ImportRun
from sync.imports import ImportResult, dexcom_csv_to_readings, fhir_to_readings, omh_to_readings
from sync.wire import ItemResult, SourceIn

log = logging.getLogger("selfcare.imports")


class ImportFormat(StrEnum):
    """The file formats an import accepts."""

    OMH = "omh"
    DEXCOM_CSV = "dexcom-csv"
    FHIR = "fhir"
    APPLE_HEALTH = "apple-health"  # streamed: app.ingest.streamed


DEFAULT_SOURCES = {
    ImportFormat.OMH: ("import-omh", "Open mHealth import"),
    ImportFormat.DEXCOM_CSV: ("import-dexcom", "Dexcom Clarity export"),
    ImportFormat.FHIR: ("import-fhir", "FHIR R4 import"),
    ImportFormat.APPLE_HEALTH: ("import-apple-health", "Apple Health export"),
}


@dataclass
class ImportOutcome:
    """What an import did, item by item."""

    results: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    ignored: list[str] = field(default_factory=list)
    advice: list[Advice] = field(default_factory=list)
    run: dict[str, Any] = field(default_factory=dict)
    unprocessed: int = 0

    def summary(self) -> dict[str, int]:
        """Counts per outcome."""
        statuses = [r["status"] for r in self.results]
        return {
            "created": statuses.count("created"),
            "duplicate": statuses.count("duplicate"),
            "rejected": statuses.count("rejected") + len(self.rejected),
            "skipped": self.skipped,
            "unprocessed": self.unprocessed,
        }


def parse(fmt: ImportFormat, body: bytes, *, timezone: str) -> ImportResult:
    """Read an import file into sync readings; 400 when the file cannot be read at all."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest("The file is not UTF-8 text.") from exc
    if fmt is ImportFormat.DEXCOM_CSV:
        return dexcom_csv_to_readings(text, zone=timezone)
    what = "FHIR resource" if fmt is ImportFormat.FHIR else "Open mHealth document"
    try:
        document = json.loads(text, parse_float=Decimal)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"The {what} is not valid JSON: {exc}"[:300]) from exc
    if fmt is ImportFormat.FHIR:
        return fhir_to_readings(document)
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
                **ItemResult.rejected(r.client_id, r.errors).model_dump(
                    mode="json", exclude_unset=True
                ),
            }
            for r in parsed.rejected
        ],
        skipped=parsed.skipped,
        ignored=parsed.ignored,
    )
    size = settings.import_chunk_readings
    chunks = [parsed.readings[i : i + size] for i in range(0, len(parsed.readings), size)]
    digest = hashlib.sha256(f"{fmt.value}\n{source.id}\n".encode() + body).hexdigest()
    run = start_run(
        session,
        patient,
        fmt,
        source,
        digest,
        len(parsed.readings),
        len(chunks),
        entered_by,
        now,
    )
    session.commit()  # the run is known even if the first chunk fails
    for number, chunk in enumerate(chunks, start=1):
        try:
            ingested = pipeline.ingest(
                session,
                settings,
                patient=patient,
                source=source,
                items=chunk,
                entered_by=entered_by,
                now=now,
            )
            run.chunks_committed = max(run.chunks_committed, number)
            run.updated_at = now
            session.commit()
        except DBAPIError as exc:
            # Stop here: what committed stays, the answer says where it stopped, and the
            # same file posted again completes the import.
            session.rollback()
            log.warning(
                "import %s stopped at chunk %d of %d: %s", run.id, number, len(chunks), exc.orig
            )
            first = (number - 1) * size
            run.status = "stopped"
            run.stopped_at = {
                "chunk": number,
                "reading_index": first,
                "client_id": str(chunk[0].get("client_id", "")) if chunk else "",
                "reason": "the database refused the chunk; send the same file again",
            }
            run.updated_at = now
            session.commit()
            outcome.unprocessed = len(parsed.readings) - first
            outcome.run = run_dict(run)
            return outcome
        outcome.results.extend(ingested.results)
        outcome.advice.extend(ingested.advice)
    run.status = "complete"
    run.stopped_at = None
    session.commit()
    outcome.run = run_dict(run)
    return outcome


def start_run(
    session: Session,
    patient: Patient,
    fmt: ImportFormat,
    source: SourceIn,
    digest: str,
    readings: int,
    chunks: int,
    entered_by: str | None,
    now: datetime,
) -> ImportRun:
    """The patient's run for this file by its digest (the same file again: one more try)."""
    run = readings_repository.import_run(session, patient.id, digest)
    if run is None:
        run = ImportRun(
            patient_id=patient.id,
            digest=digest,
            format=fmt.value,
            client_source_id=source.id,
            readings=readings,
            chunks=chunks,
            chunks_committed=0,
            attempts=0,
            entered_by=entered_by,
            created_at=now,
        )
        session.add(run)
    run.attempts += 1
    run.status = "running"
    run.updated_at = now
    session.flush()
    return run


def run_dict(run: ImportRun) -> dict[str, Any]:
    """The run as the answer shows it."""
    return {
        "id": run.id,
        "status": run.status,
        "readings": run.readings,
        "chunks": run.chunks,
        "chunks_committed": run.chunks_committed,
        "attempts": run.attempts,
        "stopped_at": run.stopped_at,
    }
