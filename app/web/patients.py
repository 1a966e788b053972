"""The care team's patients: the list across all their teams, and one patient's overview.

The overview shows the patient's readings per type on one time axis against the plan's
thresholds, with flags, advice, plan versions, milestones, notes and messages as events,
then the open flags, goals and agreements. Built from the same service calls as
``GET /v1/patients/{pid}/plan/overview`` and the readings, through the same policy, audited
as a read of the patient (the page's route as the resource).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.auth.policy import Access, Action, Actor, Forbidden, Relation, visible_patient_ids
from app.clock import utcnow
from app.deps import SessionDep, audit_access, audit_listing, authorize_audited
from app.dialogue import service as dialogue_service
from app.errors import NotFound
from app.findings import service as findings_service
from app.goals import service as goals_service
from app.plans import contact
from app.plans import repository as plans_repository
from app.plans import service as plans_service
from app.web import patient_data, queries, texts, timeline, words
from app.web.adherence import adherence
from app.web.pages import PageActor, PageNotFound, lang_of, render
from rules.language import load_library

router = APIRouter(include_in_schema=False)

ADHERENCE_DAYS = 14
FLAGS_LIMIT = 5000
TABLE_ROWS = 500  # the table alternative of a chart shows the latest readings
EVENTS_LIMIT = 1000
SEVERITY_ORDER = {"high": 3, "moderate": 2, "low": 1}
CGM_LINK_WINDOW = timedelta(days=90)  # the CGM page's longest window: a link when it has data


def authorised_patient(
    session: Session, actor: Actor, pid: str, action: Action, resource: str
) -> Access:
    """The policy's answer for a patient, audited; a patient one may not see is a missing one."""
    try:
        access = authorize_audited(session, actor, pid, action, resource, utcnow())
    except (NotFound, Forbidden) as exc:
        raise PageNotFound("No such patient.") from exc
    audit_access(session, access, action, resource)
    return access


@router.get("/vard/patients")
def patient_list(request: Request, actor: PageActor, session: SessionDep) -> Response:
    """The clinician's patients: open flags, last upload, unread messages and adherence."""
    now = utcnow()
    lang = lang_of(request)
    ids = visible_patient_ids(session, actor, now)
    people = patient_data.patients(session, ids)
    ids = [p.id for p in people]
    start = now - timedelta(days=ADHERENCE_DAYS)
    flags = findings_service.list_flags(session, ids, status=None, limit=FLAGS_LIMIT)
    unread = dialogue_service.unread_for(session, actor, ids, now)
    units = queries.care_units(session, actor, ids)
    uploads = queries.last_uploads(session, ids)
    received = patient_data.received_by_type(session, ids, start, now)
    t = words.for_lang(lang)
    rows = []
    for patient in people:
        open_flags = [f for f in flags if f.patient_id == patient.id and f.status != "resolved"]
        worst = max(open_flags, key=lambda f: SEVERITY_ORDER.get(f.severity, 0), default=None)
        plan = plans_service.current_spec(session, patient.id)
        kept = adherence(plan.schedule if plan else [], received.get(patient.id, {}), start,
                         now, patient.timezone)  # fmt: skip
        rows.append(
            {
                "patient": patient,
                "care_unit": units.get(patient.id, ""),
                "open_flags": len(open_flags),
                "worst": worst.severity if worst is not None else None,
                "last_upload": uploads.get(patient.id),
                "unread": unread.get(patient.id) or 0,
                "adherence": kept,
                "adherence_title": t("adherence_title").format(
                    received=kept.received, scheduled=kept.scheduled
                ),
            }
        )
    audit_listing(session, actor, "GET /vard/patients", tuple(sorted(ids)))
    context = {"user": actor.user, "rows": rows, "t": t, "days": ADHERENCE_DAYS}
    return render(request, "patients.html", context)


@router.get("/vard/patients/{pid}")
def patient_overview(pid: str, request: Request, actor: PageActor, session: SessionDep) -> Response:
    """One patient: header, timeline (zoomable), open flags, goals and agreements."""
    access = authorised_patient(session, actor, pid, Action.READ, "GET /vard/patients/{pid}")
    lang = lang_of(request)
    now = utcnow()
    zoom, start, end = timeline.window(request.query_params.get("range"), now)
    context = {
        "user": actor.user,
        "t": words.for_lang(lang),
        "val": lambda value, type_: timeline.format_value(value, type_, lang),
        "tick": lambda value: timeline.format_tick(value, lang),
        "patient": access.patient,
        **_timeline(session, access, zoom, start, end, lang),
    }
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "timeline":
        return render(request, "timeline.html", context)
    patient = access.patient
    flags = findings_service.list_flags(session, [patient.id], status=None, limit=FLAGS_LIMIT)
    open_flags = [f for f in flags if f.status != "resolved"]
    plan = plans_service.current(session, patient.id)
    plan_dict = plans_service.to_dicts(session, [plan])[0] if plan is not None else None
    context |= {
        "age": patient_data.age_of(patient.personnummer, now.astimezone(texts.TIME_ZONE).date()),
        "care_units": queries.care_units(session, actor, [patient.id]).get(patient.id, ""),
        "contact": contact.contact_dict(
            session, plans_repository.current_contact(session, patient.id)
        ),
        "open_flags": findings_service.flag_dicts(session, open_flags, lang, now),
        "goals": goals_service.goals_with_milestones(session, patient.id),
        "has_cgm": bool(
            patient_data.received_by_type(session, [patient.id], now - CGM_LINK_WINDOW, now)
            .get(patient.id, {})
            .get("cgm_glucose")
        ),
        "agreements": plan_dict["agreements"] if plan_dict else [],
        "plan_version": plan.version if plan is not None else None,
    }
    return render(request, "patient.html", context)


def _timeline(
    session: Session, access: Access, zoom: str, start: datetime, end: datetime, lang: str
) -> dict[str, Any]:
    """The charts and events of the window, and the zoom links."""
    patient = access.patient
    t = words.for_lang(lang)
    plan = plans_service.current_spec(session, patient.id)
    rows = patient_data.window_readings(session, patient.id, start, end)
    chart_words = {key: t("limit_" + key) for key in timeline.LIMIT_WORDS}
    scheduled = [e.type for e in plan.schedule] if plan else []
    charts = timeline.build_charts(
        rows, scheduled, plan, load_library(), start, end, lang, chart_words
    )
    events = timeline.place_events(_events(session, access, start, end, lang), start, end)
    middle = start + (end - start) / 2
    return {
        "zoom": zoom,
        "zooms": list(timeline.ZOOMS),
        "start": start,
        "end": end,
        "axis": [start, middle, end],
        "charts": charts,
        "events": events,
        "event_kinds": [k for k in timeline.EVENT_KINDS if any(e.kind == k for e, _, _ in events)],
        "width": timeline.WIDTH,
        "height": timeline.HEIGHT,
        "table_rows": TABLE_ROWS,
    }


def _events(
    session: Session, access: Access, start: datetime, end: datetime, lang: str
) -> list[timeline.Event]:
    """Flags, advice, plan versions, milestones reached, notes and messages of the window."""
    patient = access.patient
    t = words.for_lang(lang)
    found: list[timeline.Event] = []
    for flag in findings_service.list_flags(session, [patient.id], status=None, limit=FLAGS_LIMIT):
        title = flag.title.get(lang) or flag.title.get("sv", flag.rule_id)
        found.append(timeline.Event("flag", flag.created_at, title, f"/vard/flags/{flag.id}"))
    for advice in findings_service.list_advice(session, patient.id, limit=EVENTS_LIMIT):
        title = advice.title.get(lang) or advice.title.get("sv", advice.rule_id)
        found.append(timeline.Event("advice", advice.created_at, title))
    for version in plans_service.versions(session, patient.id):
        text = f"{t('plan_version')} {version.version}"
        found.append(timeline.Event("plan", version.created_at, text))
    for goal in goals_service.goals_with_milestones(session, patient.id):
        for milestone in goal["milestones"]:
            if milestone["achieved_at"]:
                when = datetime.fromisoformat(milestone["achieved_at"])
                found.append(timeline.Event("milestone", when, f"{goal['title']}: "
                                            f"{milestone['title']}"))  # fmt: skip
    if access.relation == Relation.CARE_TEAM:  # notes and the thread are the team's
        for note, flag in patient_data.notes_of(session, patient.id, start, end):
            found.append(timeline.Event("note", note.created_at, note.body[:120],
                                        f"/vard/flags/{flag.id}"))  # fmt: skip
        found.extend(
            timeline.Event("message", message.created_at, message.body[:120])
            for message in patient_data.messages_of(session, patient.id, start, end)
        )
    return found
