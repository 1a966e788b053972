"""HTTP for sync, the change feed and readings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from app.auth.policy import Action, advice_audience, may, reading_correction_check
from app.bounds import BoundedTime, bounded_time
from app.clock import utcnow
from app.consent.service import hide_other_grants
from app.deps import ReadAccess, SessionDep, SettingsDep, WriteReadingsAccess, verified_claims
from app.errors import (
    BadRequest,
    Unauthorized,
    UnsupportedMediaType,
)
from app.feed import service as feed
from app.findings import service as findings_service
from app.ingest import imports as imports_service
from app.ingest import pipeline as ingest_pipeline
from app.ingest import service as sync_service
from app.ingest import streamed as streamed_imports
from app.ingest.imports import ImportFormat
from app.ingest.schemas import ChangesOut, ImportOut, ReadingListOut, SyncOut
from app.readings import service as readings_service
from app.readings.ratelimit import OwnPatients, RateLimiter
from sync.wire import SyncRequest

router = APIRouter(prefix="/v1/patients/{pid}", tags=["sync"])

MAX_PAGE = 1000


def limit_rate(request: Request, pid: str, settings: SettingsDep) -> None:
    """Refuse a flooding device (429) before its body is read or the database is touched.

    Keyed on the token's verified subject and the patient (``me`` and the caller's own id are
    one key, see ``OwnPatients``), so a refused request costs one signature check: a flood
    cannot take the database (or SQLite's one writer) from other patients. Requests without
    a valid token pass here and get their 401 (or 429, app/probing.py) later.
    """
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return
    try:
        subject = verified_claims(request, settings, header[7:].strip()).subject
    except Unauthorized:
        return
    limiter: RateLimiter = request.app.state.sync_limiter
    own: OwnPatients = request.app.state.own_patients
    limiter.check((subject, own.patient_key(subject, pid)), request.app.state.sync_clock())


async def require_json(request: Request) -> None:
    """Refuse (415) a body that does not say it is JSON, before reading it."""
    # async: a header check needs no worker thread (see app.deps.get_settings_dep).
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise UnsupportedMediaType("Send the sync envelope as application/json.")


async def read_body(request: Request) -> bytes:
    """The raw request body (its size is capped by the body-limit middleware)."""
    return await request.body()


# Routes that take a body declare, in this order: the rate limit (a token check, no database),
# the access dependency (authorisation), then the body: nothing is read for a caller who may
# not write, and a flood is refused before the database is touched.
RateLimited = Annotated[None, Depends(limit_rate)]
JsonOnly = Annotated[None, Depends(require_json)]
RawBody = Annotated[bytes, Depends(read_body)]


async def import_body(
    request: Request, settings: SettingsDep, format: ImportFormat
) -> AsyncIterator[bytes | streamed_imports.Upload]:
    """The import file: in memory for the small formats, a temporary file for a streamed one."""
    if format not in streamed_imports.STREAMED:
        yield await request.body()
        return
    upload = await streamed_imports.spool_request(request, settings.apple_health_max_bytes)
    try:
        yield upload
    finally:
        upload.file.close()


ImportBody = Annotated[bytes | streamed_imports.Upload, Depends(import_body)]


@router.post(
    "/sync",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": SyncRequest.model_json_schema()}},
        }
    },
    response_model=SyncOut,
    response_model_exclude_unset=True,
    summary="Upload readings; answer per item, with new advice and the changes since a cursor",
)
def sync(
    request: Request,
    _rate: RateLimited,
    access: WriteReadingsAccess,
    _json: JsonOnly,
    body: RawBody,
    session: SessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Upload a batch of readings (idempotent on patient + source + client_id).

    The answer carries advice and the change feed only for a caller who may read the
    patient's data: a proxy who may only enter readings gets its per-item results.
    """
    envelope = sync_service.envelope_of(sync_service.parse_json_body(body))
    language = request.headers.get("accept-language")
    return sync_service.sync(session, settings, access, envelope, language)


@router.get(
    "/changes", response_model=ChangesOut, summary="The patient's change feed after a cursor"
)
def changes(
    access: ReadAccess,
    session: SessionDep,
    settings: SettingsDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=feed.MAX_CHANGES)] = feed.MAX_CHANGES,
) -> dict[str, Any]:
    """Every change after ``cursor``; 410 when the cursor is too old."""
    page = feed.read(session, settings, access.patient.id, cursor, limit=limit)
    shown = hide_other_grants(page.changes, access)
    changes = findings_service.addressed_changes(
        shown, advice_audience(access), messages=may(access, Action.MESSAGE)
    )
    return {"changes": changes, "cursor": page.cursor, "has_more": page.has_more}


def _page_token(time: datetime, reading_id: str) -> str:
    return f"{time.isoformat()}|{reading_id}"


def _parse_page_token(token: str) -> tuple[datetime, str]:
    try:
        time, rid = token.split("|", 1)
        parsed = bounded_time(datetime.fromisoformat(time))
    except ValueError as exc:
        raise BadRequest("Invalid page cursor.") from exc
    return parsed, rid


@router.get(
    "/readings", response_model=ReadingListOut, summary="The patient's readings in time order"
)
def list_readings(
    access: ReadAccess,
    session: SessionDep,
    type: str | None = None,
    from_: Annotated[BoundedTime | None, Query(alias="from")] = None,
    to: BoundedTime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """A page of readings; ``next_cursor`` continues it."""
    rows = readings_service.list_readings(
        session,
        access.patient.id,
        type_=type,
        start=from_,
        end=to,
        after=_parse_page_token(cursor) if cursor else None,
        limit=limit + 1,
    )
    page = rows[:limit]
    return {
        "items": [readings_service.reading_dict(r) for r in page],
        "next_cursor": _page_token(page[-1]["time"], page[-1]["id"]) if len(rows) > limit else None,
    }


@router.delete("/readings/{reading_id}", status_code=204, summary="Mark a reading entered-in-error")
def delete_reading(
    reading_id: str, access: WriteReadingsAccess, session: SessionDep, settings: SettingsDep
) -> Response:
    """Tombstone a reading; it disappears from lists and rules and shows in the feed."""
    ingest_pipeline.delete_reading(
        session,
        settings,
        patient=access.patient,
        reading_id=reading_id,
        by=access.actor.id,
        now=utcnow(),
        check_entered_by=reading_correction_check(access),
    )
    return Response(status_code=204)


@router.post(
    "/import",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"description": "Open mHealth data point(s)"}},
                "text/csv": {"schema": {"type": "string", "description": "Dexcom Clarity CSV"}},
                "application/fhir+json": {
                    "schema": {"description": "a FHIR R4 Observation or a Bundle of them"}
                },
                "application/xml": {
                    "schema": {"type": "string", "description": "Apple Health export.xml"}
                },
                "application/zip": {
                    "schema": {
                        "type": "string",
                        "format": "binary",
                        "description": "Apple Health export.zip",
                    }
                },
            },
        }
    },
    response_model=ImportOut,
    response_model_exclude_unset=True,
    summary="Import Open mHealth, a Dexcom Clarity CSV, FHIR R4 Observations or Apple Health",
)
def import_readings(
    request: Request,
    _rate: RateLimited,
    access: WriteReadingsAccess,
    body: ImportBody,
    session: SessionDep,
    settings: SettingsDep,
    format: ImportFormat,
    source_id: Annotated[
        str | None, Query(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    ] = None,
) -> dict[str, Any]:
    """Import a file through the same ingest as sync; per-item results and a summary."""
    if isinstance(body, streamed_imports.Upload):
        outcome: imports_service.ImportOutcome = streamed_imports.import_upload(
            session,
            settings,
            patient=access.patient,
            fmt=format,
            upload=body,
            source_id=source_id,
            entered_by=access.actor.id,
            now=utcnow(),
        )
    else:
        outcome = imports_service.import_file(
            session,
            settings,
            patient=access.patient,
            fmt=format,
            body=body,
            source_id=source_id,
            entered_by=access.actor.id,
            now=utcnow(),
        )
    lang = findings_service.pick_language(
        request.headers.get("accept-language"), access.actor.user.language
    )
    readable = may(access, Action.READ)
    return {
        "import": outcome.run,
        "summary": outcome.summary(),
        "results": outcome.results,
        "rejected": outcome.rejected,
        "ignored": outcome.ignored,
        "advice": [
            findings_service.advice_dict(a, lang, advice_audience(access)) for a in outcome.advice
        ]
        if readable
        else [],
    }
