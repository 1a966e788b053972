"""HTTP for advice, flags and the clinician's worklist."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from app.auth import people
from app.auth.policy import (
    Access,
    Relation,
    advice_audience,
    care_team_patient_ids,
    visible_patient_ids,
)
from app.clock import utcnow
from app.deps import (
    AcceptLanguage,
    ActorDep,
    FlagActionDep,
    ReadAccess,
    SessionDep,
    audit_listing,
)
from app.dialogue import service as dialogue_service
from app.findings import service as findings_service
from app.findings.models import Flag, FlagStatus
from app.findings.schemas import (
    AdviceListOut,
    FlagActionIn,
    FlagListOut,
    FlagOut,
    NoteIn,
    NoteOut,
)

router = APIRouter(tags=["findings"])


@router.get(
    "/v1/patients/{pid}/advice",
    response_model=AdviceListOut,
    summary="The patient's advice, newest first",
)
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


@router.get(
    "/v1/patients/{pid}/flags",
    response_model=FlagListOut,
    response_model_exclude_unset=True,
    summary="The patient's flags",
)
def patient_flags(
    access: ReadAccess,
    session: SessionDep,
    status: FlagStatus | None = None,
    accept_language: AcceptLanguage = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """The patient's flags, most severe first, then oldest; the care team's carry notes."""
    lang = findings_service.pick_language(accept_language, access.actor.user.language)
    rows = findings_service.list_flags(session, [access.patient.id], status=status, limit=limit)
    now = utcnow()
    team = {access.patient.id} if access.relation == Relation.CARE_TEAM else set()
    unread = dialogue_service.unread_for(session, access.actor, [access.patient.id], now)
    items = findings_service.flag_dicts(session, rows, lang, now, team_patients=team, unread=unread)
    return {"items": items}


@router.get(
    "/v1/flags",
    response_model=FlagListOut,
    response_model_exclude_unset=True,
    summary="The worklist: flags across the caller's patients",
)
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
    patient_ids = {f.patient_id for f in rows}
    # One query each for notes, people and unread counts, whatever the number of rows.
    team = care_team_patient_ids(session, actor) & patient_ids
    unread = dialogue_service.unread_for(session, actor, patient_ids, now)
    items = findings_service.flag_dicts(session, rows, lang, now, team_patients=team, unread=unread)
    return {"items": items}


def _team_answer(session: Session, flag: Flag, access: Access, lang: str) -> dict[str, Any]:
    now = utcnow()
    unread = dialogue_service.unread_for(session, access.actor, [flag.patient_id], now)
    return findings_service.flag_dicts(
        session, [flag], lang, now, team_patients={flag.patient_id}, unread=unread
    )[0]


@router.post(
    "/v1/flags/{flag_id}/acknowledge",
    response_model=FlagOut,
    response_model_exclude_unset=True,
    summary="Acknowledge a flag (care team)",
)
def acknowledge_flag(
    flag_id: str,
    flags: FlagActionDep,
    actor: ActorDep,
    session: SessionDep,
    body: FlagActionIn | None = None,
) -> dict[str, Any]:
    """Mark a flag as seen; it stays on the patient until resolved. A note is appended."""
    flag, access = flags.authorize(flag_id, "acknowledge")
    findings_service.acknowledge(
        session,
        flag,
        by=actor.id,
        care_unit=access.care_unit_name,
        note=body.note if body else "",
        now=utcnow(),
    )
    return _team_answer(session, flag, access, actor.user.language)


@router.post(
    "/v1/flags/{flag_id}/resolve",
    response_model=FlagOut,
    response_model_exclude_unset=True,
    summary="Resolve a flag with a note (care team)",
)
def resolve_flag(
    flag_id: str,
    flags: FlagActionDep,
    actor: ActorDep,
    session: SessionDep,
    body: FlagActionIn | None = None,
) -> dict[str, Any]:
    """Close the flag's episode. A note is appended."""
    flag, access = flags.authorize(flag_id, "resolve")
    findings_service.resolve(
        session,
        flag,
        by=actor.id,
        care_unit=access.care_unit_name,
        note=body.note if body else "",
        now=utcnow(),
    )
    return _team_answer(session, flag, access, actor.user.language)


@router.post(
    "/v1/flags/{flag_id}/notes",
    status_code=201,
    response_model=NoteOut,
    summary="Add a note to a flag (care team; never shown to the patient)",
)
def add_flag_note(
    flag_id: str, flags: FlagActionDep, actor: ActorDep, session: SessionDep, body: NoteIn
) -> dict[str, Any]:
    """Append a note to the flag's history; earlier notes stay as written."""
    flag, access = flags.authorize(flag_id, "notes")
    note = findings_service.add_note(
        session,
        flag,
        by=actor.id,
        care_unit=access.care_unit_name,
        body=body.body,
        now=utcnow(),
    )
    return findings_service.note_dict(note, people.users_by_id(session, [note.author_id]))
