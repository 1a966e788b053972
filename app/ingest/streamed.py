"""Streamed imports: an Apple Health export, hundreds of MB, read and stored in bounded memory.

The file arrives in a temporary file (the request body is streamed to it, hashed and counted
against ``Settings.apple_health_max_bytes`` on the way; the CLI reads it from disk). The pure
reader (:mod:`sync.imports.apple_health`) yields readings while it parses, and every
``Settings.import_chunk_readings`` of them go through the same ingest as a sync batch and are
committed on their own, as :mod:`app.ingest.imports` does for the other formats.

Only counts are kept for the whole file; the answer lists the first ``SHOWN_ITEMS`` results,
rejections and advice (a year of heart rate is a million results).

A file that breaks (malformed XML, a truncated zip): when nothing was committed yet the
import is refused (400) and nothing is stored; after whole chunks were committed, the run
stops with ``stopped_at`` saying where and why, and the complete file completes it (the
records already stored answer duplicate). A file that declares XML entities is refused at
its DTD, before any record.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from fastapi import Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import BadRequest, PayloadTooLarge
from app.ingest import pipeline
from app.ingest.imports import (
    DEFAULT_SOURCES,
    ImportFormat,
    ImportOutcome,
    run_dict,
    start_run,
)
from app.patients.models import Patient
from app.readings.models import ImportRun
from sync.imports.apple_health import EntitiesDeclared, ExportReader, ExportUnreadable
from sync.imports.result import Rejection
from sync.wire import ItemResult, SourceIn

log = logging.getLogger("selfcare.imports")

STREAMED = frozenset({ImportFormat.APPLE_HEALTH})
"""The formats read from a file as they are parsed, never whole into memory."""

SHOWN_ITEMS = 1000
"""How many results, rejections and pieces of advice the answer lists (the counts are all)."""

SPOOL_MEMORY_BYTES = 1024 * 1024
READ_BYTES = 1024 * 1024


@dataclass
class Upload:
    """An import file on disk (or in a small spool), with its sha256 and size."""

    file: IO[bytes]
    sha256: str
    size: int


@dataclass(frozen=True)
class Progress:
    """How far a streamed import got: for the CLI's progress bar."""

    bytes_read: int
    records_read: int
    created: int
    duplicate: int
    rejected: int


@dataclass
class StreamedOutcome(ImportOutcome):
    """An import outcome that counts every item but lists only the first ``SHOWN_ITEMS``."""

    counts: Counter[str] = field(default_factory=Counter)

    def summary(self) -> dict[str, int]:
        """Counts per outcome."""
        return {
            "created": self.counts["created"],
            "duplicate": self.counts["duplicate"],
            "rejected": self.counts["rejected"],
            "skipped": self.skipped,
            "unprocessed": self.unprocessed,
        }

    def add_results(self, results: list[dict[str, Any]]) -> None:
        """Count a chunk's results; keep the first few for the answer."""
        self.counts.update(r["status"] for r in results)
        self.results.extend(results[: max(0, SHOWN_ITEMS - len(self.results))])

    def add_rejection(self, rejection: Rejection) -> None:
        """Count a record the reader could not make a reading of; keep the first few."""
        self.counts["rejected"] += 1
        if len(self.rejected) < SHOWN_ITEMS:
            item = ItemResult.rejected(rejection.client_id, list(rejection.errors))
            self.rejected.append(
                {"where": rejection.where, **item.model_dump(mode="json", exclude_unset=True)}
            )


async def spool_request(request: Request, cap: int) -> Upload:
    """Stream the request body to a temporary file, hashing it; 413 past ``cap`` bytes."""
    # Handed to the caller open (it closes it after the import), so no with-block here.
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
    digest = hashlib.sha256()
    size = 0
    try:
        async for piece in request.stream():
            size += len(piece)
            if size > cap:
                raise PayloadTooLarge(f"The file is larger than {cap} bytes.")
            digest.update(piece)
            spool.write(piece)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return Upload(spool, digest.hexdigest(), size)


def open_path(path: Path) -> Upload:
    """Open a file on disk for a streamed import, hashing it in pieces (never read whole)."""
    digest = hashlib.sha256()
    file = path.open("rb")
    while piece := file.read(READ_BYTES):
        digest.update(piece)
    size = file.tell()
    file.seek(0)
    return Upload(file, digest.hexdigest(), size)


def import_upload(
    session: Session,
    settings: Settings,
    *,
    patient: Patient,
    fmt: ImportFormat,
    upload: Upload,
    source_id: str | None,
    entered_by: str | None,
    now: datetime,
    progress: Callable[[Progress], None] | None = None,
) -> StreamedOutcome:
    """Import a streamed file for a patient through the sync ingest, chunk by chunk."""
    default_id, name = DEFAULT_SOURCES[fmt]
    source = SourceIn(id=source_id or default_id, kind="import", name=name)
    reader = ExportReader(upload.file)
    outcome = StreamedOutcome()
    size = settings.import_chunk_readings
    chunk: list[dict[str, Any]] = []
    run: ImportRun | None = None
    stored = 0  # readings in committed chunks

    def report() -> None:
        if progress is not None:
            progress(
                Progress(
                    bytes_read=upload.file.tell(),
                    records_read=reader.records_read,
                    created=outcome.counts["created"],
                    duplicate=outcome.counts["duplicate"],
                    rejected=outcome.counts["rejected"],
                )
            )

    def flush() -> bool:
        """Store the chunk in a transaction of its own; False when the database refused it."""
        nonlocal run, stored
        if run is None:
            # Created with the first chunk: a file refused before it leaves no trace.
            run = _start_run(session, patient, fmt, source, upload, entered_by, now)
            session.commit()
        number = run_chunks(stored, size) + 1
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
            run.readings = max(run.readings, stored + len(chunk))
            run.chunks = max(run.chunks, number)
            run.updated_at = now
            session.commit()
        except DBAPIError as exc:
            session.rollback()
            log.warning("import %s stopped at chunk %d: %s", run.id, number, exc.orig)
            _stop(session, run, number, stored, chunk, now, "the database refused the chunk")
            outcome.unprocessed = len(chunk)  # read but not stored; the rest was never read
            return False
        stored += len(chunk)
        outcome.add_results(ingested.results)
        outcome.advice.extend(ingested.advice[: max(0, SHOWN_ITEMS - len(outcome.advice))])
        chunk.clear()
        report()
        return True

    try:
        for item in reader.items():
            if isinstance(item, Rejection):
                outcome.add_rejection(item)
                continue
            chunk.append(item)
            if len(chunk) >= size and not flush():
                return _stopped(outcome, run, reader)
    except EntitiesDeclared as exc:
        raise BadRequest(f"The file cannot be imported: {exc}.") from exc
    except ExportUnreadable as exc:
        if run is None:
            raise BadRequest(f"The Apple Health export cannot be read: {exc}.") from exc
        _stop(session, run, run_chunks(stored, size) + 1, stored, chunk, now, str(exc))
        outcome.unprocessed = len(chunk)
        return _stopped(outcome, run, reader)
    outcome.skipped = reader.skipped
    if chunk or run is None:
        if run is None:
            run = _start_run(session, patient, fmt, source, upload, entered_by, now)
        if chunk and not flush():
            return _stopped(outcome, run, reader)
    run.status = "complete"
    run.stopped_at = None
    run.readings = stored
    run.chunks = run_chunks(stored, size)
    session.commit()
    report()
    outcome.run = run_dict(run)
    return outcome


def run_chunks(readings: int, size: int) -> int:
    """How many chunks ``readings`` readings make."""
    return -(-readings // size)


def _stopped(
    outcome: StreamedOutcome, run: ImportRun | None, reader: ExportReader
) -> StreamedOutcome:
    assert run is not None  # a run exists once a chunk was tried
    outcome.skipped = reader.skipped
    outcome.run = run_dict(run)
    return outcome


def _stop(
    session: Session,
    run: ImportRun,
    number: int,
    stored: int,
    chunk: list[dict[str, Any]],
    now: datetime,
    reason: str,
) -> None:
    """Record where the import stopped (what committed stays); the same file completes it."""
    run.status = "stopped"
    run.stopped_at = {
        "chunk": number,
        "reading_index": stored,
        "client_id": str(chunk[0].get("client_id", "")) if chunk else "",
        "reason": f"{reason}; send the complete file again"[:500],
    }
    run.updated_at = now
    session.commit()


def _start_run(
    session: Session,
    patient: Patient,
    fmt: ImportFormat,
    source: SourceIn,
    upload: Upload,
    entered_by: str | None,
    now: datetime,
) -> ImportRun:
    """The run of this upload; readings and chunks are counted as the chunks commit."""
    digest = hashlib.sha256(f"{fmt.value}\n{source.id}\n{upload.sha256}".encode()).hexdigest()
    return start_run(session, patient, fmt, source, digest, 0, 0, entered_by, now)


__all__ = [
    "STREAMED",
    "Progress",
    "StreamedOutcome",
    "Upload",
    "import_upload",
    "open_path",
    "spool_request",
]
