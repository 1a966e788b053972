"""The sync use case: an envelope in, per-item results, new advice and the changes out.

One function for every door a batch comes through: ``POST /v1/patients/{pid}/sync`` (a
bearer token) and the patient's pages, ``POST /mina/sync`` (the session cookie and its CSRF
token), so both answer the same way.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.auth.policy import Access, Action, advice_audience, may
from app.clock import utcnow
from app.config import Settings
from app.consent.service import hide_other_grants
from app.errors import BadRequest, ErrorItem, PayloadTooLarge, Unprocessable
from app.feed import service as feed
from app.findings import service as findings_service
from app.ingest import pipeline as ingest_pipeline
from sync.wire import MAX_READINGS, SyncRequest


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def parse_json_body(body: bytes) -> Any:
    """Strict JSON in UTF-8 without a BOM; NaN and Infinity refused; decimals kept exact."""
    if body.startswith(b"\xef\xbb\xbf"):
        raise BadRequest("The body starts with a byte-order mark; send plain UTF-8 JSON.")
    try:
        return json.loads(
            body.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant
        )
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}"[:300]) from exc


def validation_errors(exc: ValidationError) -> list[ErrorItem]:
    """A pydantic validation error as the API's error items."""
    return [
        ErrorItem(loc=".".join(str(p) for p in e["loc"]), code=e["type"], message=e["msg"])
        for e in exc.errors(include_url=False, include_input=False)
    ]


def envelope_of(payload: Any) -> SyncRequest:
    """The sync envelope of a parsed body: 413 over the batch cap, 422 when malformed."""
    if (
        isinstance(payload, dict)
        and isinstance(payload.get("readings"), list)
        and len(payload["readings"]) > MAX_READINGS
    ):
        raise PayloadTooLarge(f"At most {MAX_READINGS} readings per batch.")
    try:
        return SyncRequest.model_validate(payload)
    except ValidationError as exc:
        raise Unprocessable(
            "The sync envelope is not valid.", errors=validation_errors(exc)
        ) from exc


def sync(
    session: Session,
    settings: Settings,
    access: Access,
    envelope: SyncRequest,
    accept_language: str | None,
) -> dict[str, Any]:
    """Ingest a batch; the answer carries advice and changes only for a caller who may read.

    A proxy who may only enter readings gets its per-item results.
    """
    outcome = ingest_pipeline.ingest(
        session,
        settings,
        patient=access.patient,
        source=envelope.source,
        items=envelope.readings,
        entered_by=access.actor.id,
        now=utcnow(),
    )
    if not may(access, Action.READ):
        return {"results": outcome.results, "advice": [], "changes": [], "cursor": None,
                "has_more": False}  # fmt: skip
    page = feed.read(session, settings, access.patient.id, envelope.cursor)
    lang = findings_service.pick_language(accept_language, access.actor.user.language)
    audience = advice_audience(access)
    return {
        "results": outcome.results,
        "advice": [findings_service.advice_dict(a, lang, audience) for a in outcome.advice],
        "changes": findings_service.addressed_changes(
            hide_other_grants(page.changes, access), audience, messages=may(access, Action.MESSAGE)
        ),
        "cursor": page.cursor,
        "has_more": page.has_more,
    }
