"""HTTP for advice, flags and the clinician's worklist."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, ConfigDict, Field

from app.auth.policy import Action, advice_audience, visible_patient_ids
from app.clock import utcnow
from app.deps import (
    ActorDep,
    ReadAccess,
    SessionDep,
    audit_access,
    audit_listing,
    authorize_audited,
)
from app.errors import NotFound
from app.findings import service as findings_service
from app.findings.models import FlagStatus
from rules.text import MultiLine

router = APIRouter(tags=["findings"])

AcceptLanguage = Annotated[str | None, Header(alias="accept-language")]


class FlagNote(BaseModel):
    """A note on acknowledging or resolving a flag."""

    model_config = ConfigDict(extra="forbid")

    note: MultiLine = Field(default="", max_length=2000)


@router.get("/v1/patients/{pid}/advice", summary="The patient's advice, newest first")
def list_advice(
    access: ReadAccess,
    session: SessionDep,
    accept_language: AcceptLanguage = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Advice in the caller's language (Accept-Language, else the patient's, else sv).

    A proxy reads each advice addressed to a relative, about the patient by first name.
    """
    lang = findings_service.pick_language(accept_language, access.patient.language)
    rows = findings_service.list_advice(session, access.patient.id, limit=limit)
    audience = advice_audience(access)
    return {"items": [findings_service.advice_dict(a, lang, audience) for a in rows]}


@router.get("/v1/patients/{pid}/flags", summary="The patient's flags")
def patient_flags(
    access: ReadAccess,
    session: SessionDep,
    status: FlagStatus | None = None,
    accept_language: AcceptLanguage = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """The patient's flags, most severe first, then oldest."""
    lang = findings_service.pick_language(accept_language, access.actor.user.language)
    rows = findings_service.list_flags(session, [access.patient.id], status=status, limit=limit)
    now = utcnow()
    return {"items": [findings_service.flag_dict(f, lang, now) for f in rows]}


@router.get("/v1/flags", summary="The worklist: flags across the caller's patients")
def worklist(
    actor: ActorDep,
    session: SessionDep,
    status: FlagStatus | None = FlagStatus.OPEN,
    accept_language: AcceptLanguage = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Flags of every patient the caller may see: most severe first, then oldest."""
    now = utcnow()
    ids = visible_patient_ids(session, actor, now)
    rows = findings_service.list_flags(session, ids, status=status, limit=limit)
    audit_listing(session, actor, "GET /v1/flags", tuple(sorted({f.patient_id for f in rows})))
    lang = findings_service.pick_language(accept_language, actor.user.language)
    return {"items": [findings_service.flag_dict(f, lang, now) for f in rows]}


def _flag_action(flag_id: str, actor: ActorDep, session: SessionDep, verb: str) -> tuple[Any, Any]:
    flag = findings_service.get_flag(session, flag_id)
    if flag is None:
        raise NotFound("No such flag.")
    resource = f"POST /v1/flags/{{flag_id}}/{verb}"
    try:
        access = authorize_audited(
            session, actor, flag.patient_id, Action.MANAGE_FLAGS, resource, utcnow()
        )
    except NotFound as exc:
        raise NotFound("No such flag.") from exc
    audit_access(session, access, Action.MANAGE_FLAGS, resource)
    return flag, access


@router.post("/v1/flags/{flag_id}/acknowledge", summary="Acknowledge a flag (care team)")
def acknowledge_flag(
    flag_id: str, actor: ActorDep, session: SessionDep, body: FlagNote | None = None
) -> dict[str, Any]:
    """Mark a flag as seen; it stays on the patient until resolved."""
    flag, _ = _flag_action(flag_id, actor, session, "acknowledge")
    now = utcnow()
    findings_service.acknowledge(
        session, flag, by=actor.id, note=body.note if body else "", now=now
    )
    return findings_service.flag_dict(flag, actor.user.language, now)


@router.post("/v1/flags/{flag_id}/resolve", summary="Resolve a flag with a note (care team)")
def resolve_flag(
    flag_id: str, actor: ActorDep, session: SessionDep, body: FlagNote | None = None
) -> dict[str, Any]:
    """Close the flag's episode."""
    flag, _ = _flag_action(flag_id, actor, session, "resolve")
    now = utcnow()
    findings_service.resolve(session, flag, by=actor.id, note=body.note if body else "", now=now)
    return findings_service.flag_dict(flag, actor.user.language, now)
