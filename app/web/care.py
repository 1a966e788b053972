"""The care team's pages under ``/vard``: the worklist, and a flag with its notes.

Built from the same service calls as ``GET /v1/flags`` and ``POST /v1/flags/{id}/…``, through
the same policy, writing the same audit rows (the page's route as the resource).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.auth.policy import (
    Access,
    Action,
    Actor,
    Relation,
    care_team_patient_ids,
    visible_patient_ids,
)
from app.clock import utcnow
from app.deps import SessionDep, audit_access, audit_listing, authorize_audited
from app.dialogue import service as dialogue_service
from app.enrolment import service as patients_service
from app.errors import Conflict, NotFound
from app.findings import service as findings_service
from app.findings.models import Flag
from app.web import queries, texts
from app.web.pages import (
    CheckedForm,
    PageActor,
    PageConflict,
    PageNotFound,
    WebSessionDep,
    lang_of,
    render,
    see_other,
)
from rules.language import Severity
from rules.text import text_problem

router = APIRouter(include_in_schema=False)

MAX_NOTE = 2000  # as the API's notes
WORKLIST_LIMIT = 500
STATUSES = ("open", "acknowledged", "resolved", "all")


def _choice(value: str | None, allowed: tuple[str, ...], default: str) -> str:
    return value if value in allowed else default


@router.get("/vard")
def worklist(request: Request, actor: PageActor, session: SessionDep) -> Response:
    """The clinician's open flags across all their teams, most severe first, with filters."""
    now = utcnow()
    lang = lang_of(request)
    query = request.query_params
    teams = patients_service.teams(session, actor)
    team = _choice(query.get("team"), tuple(t["id"] for t in teams), "")
    severity = _choice(query.get("severity"), tuple(s.value for s in Severity), "")
    status = _choice(query.get("status"), STATUSES, "open")
    overdue_only = query.get("overdue") == "1"

    ids = visible_patient_ids(session, actor, now)
    if team:
        in_team = queries.team_patient_ids(session, team)
        ids = [i for i in ids if i in in_team]
    rows = findings_service.list_flags(
        session, ids, status=None if status == "all" else status, limit=WORKLIST_LIMIT
    )
    if severity:
        rows = [f for f in rows if f.severity == severity]
    items = _flag_rows(session, actor, rows, lang, now)
    if overdue_only:
        items = [i for i in items if i["overdue"]]
    audit_listing(session, actor, "GET /vard", tuple(sorted({i["patient_id"] for i in items})))
    context = {
        "user": actor.user,
        "items": items,
        "teams": teams,
        "filters": {"team": team, "severity": severity, "status": status, "overdue": overdue_only},
        "severities": [s.value for s in Severity],
        "statuses": STATUSES,
    }
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "results":
        return render(request, "worklist_results.html", context)
    return render(request, "worklist.html", context)


def _flag_rows(
    session: Session, actor: Actor, rows: list[Flag], lang: str, now: datetime
) -> list[dict[str, Any]]:
    """The API's worklist rows, with the care unit, last upload and age the page shows."""
    patient_ids = {f.patient_id for f in rows}
    team = care_team_patient_ids(session, actor) & patient_ids
    unread = dialogue_service.unread_for(session, actor, patient_ids, now)
    items = findings_service.flag_dicts(session, rows, lang, now, team_patients=team, unread=unread)
    units = queries.care_units(session, actor, patient_ids)
    uploads = queries.last_uploads(session, patient_ids)
    for item in items:
        pid = item["patient_id"]
        item["care_unit"] = units.get(pid, "")
        item["last_upload"] = uploads.get(pid)
        created = datetime.fromisoformat(item["created_at"])
        item["age"] = texts.duration((now - created).total_seconds(), lang)
    return items


def _flag_or_404(session: Session, flag_id: str) -> Flag:
    flag = findings_service.get_flag(session, flag_id)
    if flag is None:
        raise PageNotFound("No such flag.")
    return flag


def _authorised(
    session: Session, actor: Actor, flag: Flag, action: Action, resource: str
) -> Access:
    """The policy's answer for this flag's patient, audited; an unseen flag is a missing one."""
    try:
        access = authorize_audited(session, actor, flag.patient_id, action, resource, utcnow())
    except NotFound as exc:
        raise PageNotFound("No such flag.") from exc
    audit_access(session, access, action, resource)
    return access


@router.get("/vard/flags/{flag_id}")
def flag_page(flag_id: str, request: Request, actor: PageActor, session: SessionDep) -> Response:
    """One flag: why it fired, its notes, and the forms to acknowledge, resolve and note."""
    flag = _flag_or_404(session, flag_id)
    access = _authorised(session, actor, flag, Action.READ, "GET /vard/flags/{flag_id}")
    return _flag_view(request, session, access, flag)


def _flag_view(
    request: Request,
    session: Session,
    access: Access,
    flag: Flag,
    *,
    errors: dict[str, str] | None = None,
    note: str = "",
    status_code: int = 200,
) -> Response:
    lang = lang_of(request)
    now = utcnow()
    team = {flag.patient_id} if access.relation == Relation.CARE_TEAM else set()
    unread = dialogue_service.unread_for(session, access.actor, [flag.patient_id], now)
    item = findings_service.flag_dicts(
        session, [flag], lang, now, team_patients=team, unread=unread
    )[0]
    explanation = item.get("explanation") or {}
    in_error = set(item.get("entered_in_error") or [])
    context = {
        "user": access.actor.user,
        "flag": item,
        "patient": access.patient,
        "care_unit": access.care_unit_name or "",
        "explanation": explanation,
        "summary": (explanation.get("summary") or {}).get(lang)
        or (explanation.get("summary") or {}).get("sv", ""),
        "readings": explanation.get("readings") or [],
        "in_error": in_error,
        "errors": errors or {"form": "", "note": ""},
        "note": note,
        "age": texts.duration(
            (now - datetime.fromisoformat(item["created_at"])).total_seconds(), lang
        ),
    }
    return render(request, "flag.html", context, status_code=status_code)


def _note_problem(note: str, *, required: bool) -> str | None:
    if not note.strip():
        return "error_note_empty" if required else None
    if len(note) > MAX_NOTE:
        return "error_note_long"
    if text_problem(note, multi_line=True) is not None:
        return "error_note_chars"
    return None


def _act(
    flag_id: str,
    verb: str,
    form: dict[str, str],
    request: Request,
    actor: Actor,
    session: Session,
    ws: Any,
) -> Response:
    """Acknowledge, resolve or note a flag, as the API's routes do; back to the flag page."""
    flag = _flag_or_404(session, flag_id)
    note = form.get("note", "").replace("\r\n", "\n")
    problem = _note_problem(note, required=verb == "notes")
    if problem is not None:
        # Nothing is done: the page again, with the message at the top and at the field.
        access = _authorised(session, actor, flag, Action.READ, "GET /vard/flags/{flag_id}")
        lang = lang_of(request)
        errors = {"note": texts.text(lang, problem), "form": verb}
        return _flag_view(request, session, access, flag, errors=errors, note=note,
                          status_code=422)  # fmt: skip
    resource = f"POST /vard/flags/{{flag_id}}/{verb}"
    access = _authorised(session, actor, flag, Action.MANAGE_FLAGS, resource)
    now = utcnow()
    unit = access.care_unit_name
    try:
        if verb == "acknowledge":
            findings_service.acknowledge(session, flag, by=actor.id, care_unit=unit, note=note,
                                         now=now)  # fmt: skip
        elif verb == "resolve":
            findings_service.resolve(session, flag, by=actor.id, care_unit=unit, note=note, now=now)
        else:
            findings_service.add_note(session, flag, by=actor.id, care_unit=unit, body=note,
                                      now=now)  # fmt: skip
    except Conflict as exc:
        raise PageConflict(_conflict_text(lang_of(request))) from exc
    flash = {"acknowledge": "flash_acknowledged", "resolve": "flash_resolved"}
    ws.set_flash(texts.text(lang_of(request), flash.get(verb, "flash_noted")))
    return see_other(f"/vard/flags/{flag.id}")


def _conflict_text(lang: str) -> str:
    return "The flag is already resolved." if lang == "en" else "Flaggan är redan avslutad."


@router.post("/vard/flags/{flag_id}/acknowledge")
def acknowledge(
    flag_id: str, form: CheckedForm, request: Request, actor: PageActor, session: SessionDep,
    ws: WebSessionDep,
) -> Response:  # fmt: skip
    """Acknowledge a flag, with an optional note."""
    return _act(flag_id, "acknowledge", form, request, actor, session, ws)


@router.post("/vard/flags/{flag_id}/resolve")
def resolve(
    flag_id: str, form: CheckedForm, request: Request, actor: PageActor, session: SessionDep,
    ws: WebSessionDep,
) -> Response:  # fmt: skip
    """Resolve a flag, with an optional note."""
    return _act(flag_id, "resolve", form, request, actor, session, ws)


@router.post("/vard/flags/{flag_id}/notes")
def add_note(
    flag_id: str, form: CheckedForm, request: Request, actor: PageActor, session: SessionDep,
    ws: WebSessionDep,
) -> Response:  # fmt: skip
    """Add a note to a flag's history."""
    return _act(flag_id, "notes", form, request, actor, session, ws)
