"""HTTP for activities, the calendar link and the patient's .ics feed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime

from app.activities import repository as activities_repository
from app.activities import service as activities
from app.activities.models import Status
from app.activities.schemas import (
    ActivityIn,
    ActivityListOut,
    ActivityOut,
    ActivityPatchIn,
    CalendarLinkOut,
)
from app.audit import service as audit
from app.auth.policy import Action
from app.clock import utcnow
from app.deps import CalendarAccess, PlanWriteAccess, ReadAccess, SessionDep, SettingsDep
from app.errors import PROBLEM_JSON, NotFound
from app.patients.models import Patient
from app.probing import ProbingLimits

router = APIRouter(tags=["activities"])

CALENDAR_ROUTE = "/calendar/{token}.ics"
ICS_MEDIA_TYPE = "text/calendar; charset=utf-8"
_PROBLEM: dict[str, Any] = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


@router.get(
    "/v1/patients/{pid}/activities",
    response_model=ActivityListOut,
    summary="The patient's activities (visits, calls, tests), by start",
)
def list_activities(
    access: ReadAccess,
    session: SessionDep,
    start_from: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    to: Annotated[AwareDatetime | None, Query()] = None,
    status: Annotated[Status | None, Query()] = None,
) -> dict[str, Any]:
    """Activities starting in ``[from, to)`` when given, of one ``status`` when given."""
    found = activities_repository.list_activities(
        session, access.patient.id, start_from=start_from, to=to, status=status
    )
    return {"items": activities.activity_dicts(session, found)}


@router.post(
    "/v1/patients/{pid}/activities",
    status_code=201,
    response_model=ActivityOut,
    summary="Book an activity for the patient (the care team)",
)
def create_activity(
    access: PlanWriteAccess, session: SessionDep, body: ActivityIn
) -> dict[str, Any]:
    """A planned activity in the future; ``who`` (default: the caller) is on the care team."""
    activity = activities.create(session, access, body, utcnow())
    return activities.activity_dicts(session, [activity])[0]


@router.patch(
    "/v1/patients/{pid}/activities/{aid}",
    response_model=ActivityOut,
    summary="Move, cancel or mark an activity done (the care team)",
)
def change_activity(
    aid: str, access: PlanWriteAccess, session: SessionDep, body: ActivityPatchIn
) -> dict[str, Any]:
    """Change an activity; a cancelled or done one cannot be moved (409)."""
    activity = activities.change(session, access, aid, body, utcnow())
    return activities.activity_dicts(session, [activity])[0]


@router.post(
    "/v1/patients/{pid}/calendar-link",
    status_code=201,
    response_model=CalendarLinkOut,
    summary="Make the patient's .ics calendar link (the patient); the old one stops working",
)
def make_calendar_link(
    access: CalendarAccess, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """A new unguessable link to the patient's calendar feed, shown once."""
    return {"url": activities.new_calendar_link(session, settings, access, utcnow())}


@router.delete(
    "/v1/patients/{pid}/calendar-link",
    status_code=204,
    response_class=Response,
    summary="Turn the patient's .ics calendar link off (the patient)",
)
def end_calendar_link(access: CalendarAccess, session: SessionDep) -> Response:
    """The link stops working at once; answers 204 when there was none too."""
    activities.end_calendar_link(session, access, utcnow())
    return Response(status_code=204)


@router.get(
    CALENDAR_ROUTE,
    response_class=Response,
    responses={
        200: {"content": {"text/calendar": {}}, "description": "An iCalendar feed."},
        400: {"content": _PROBLEM, "description": "The address holds a control character."},
        404: {"content": _PROBLEM, "description": "No such link: unknown, ended or malformed."},
        429: {"content": _PROBLEM, "description": "Too many fetches or failed lookups."},
    },
    summary="The patient's calendar feed (the link is the authority; no bearer token)",
)
def calendar_feed(token: str, request: Request, session: SessionDep) -> Response:
    """Times, kinds and care units of the patient's activities; audited, rate limited."""
    probing: ProbingLimits = request.app.state.probing
    link = activities.link_by_token(session, token)
    if link is None:
        # Malformed, unknown and ended tokens answer alike; each failure is charged.
        raise probing.calendar_lookup_failed(request, NotFound("No such calendar.")) from None
    probing.calendar_fetched(link.id)
    patient = session.get(Patient, link.patient_id)
    if patient is None:
        raise NotFound("No such calendar.")
    now = utcnow()
    body = activities.calendar_ics(session, patient, now)
    # The link acts for the patient: the row names no person, and the patient as subject.
    audit.record(
        session,
        audit.AuditEntry(
            occurred_at=now,
            actor_id=None,
            actor_handle="calendar-link",
            actor_role="patient-link",
            relation="calendar_link",
            action=Action.READ,
            resource=f"GET {CALENDAR_ROUTE}",
            patient_ids=(patient.id,),
        ),
    )
    return Response(content=body, media_type=ICS_MEDIA_TYPE)
