"""HTTP for patients: the list, one patient, enrolment."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from app.auth.policy import Actor
from app.clock import utcnow
from app.deps import (
    ActorDep,
    EnrolmentLimited,
    ReadAccess,
    SessionDep,
    audit_as_related,
    audit_listing,
)
from app.dialogue import service as dialogue_service
from app.directory import team_requests
from app.directory.schemas import EnrolmentRequestOut
from app.enrolment import service as patients_service
from app.enrolment.schemas import (
    EnrolPatientIn,
    PatientDetailOut,
    PatientListOut,
    PatientOut,
)
from app.errors import BadRequest
from app.patients.models import Patient
from app.plans import contact as plans_contact
from app.plans import repository as plans_repository

router = APIRouter(prefix="/v1/patients", tags=["patients"])


def _decode_offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return max(0, int(base64.urlsafe_b64decode(cursor.encode()).decode()))
    except ValueError as exc:
        raise BadRequest("Invalid page cursor.") from exc


@router.get("", response_model=PatientListOut, summary="The patients the caller may see")
def list_patients(
    actor: ActorDep,
    session: SessionDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """A page of patients, by name."""
    now = utcnow()
    offset = _decode_offset(cursor)
    rows, more = patients_service.list_patients(session, actor, now, offset=offset, limit=limit)
    audit_listing(session, actor, "GET /v1/patients", tuple(p.id for p in rows))
    next_cursor = base64.urlsafe_b64encode(str(offset + limit).encode()).decode() if more else None
    # Unread messages for the whole page in one grouped query, not one per row.
    unread = dialogue_service.unread_for(session, actor, [p.id for p in rows], now)
    items = [
        {
            **patients_service.patient_dict(p),
            "patient": {
                "id": p.id,
                "display_name": p.display_name,
                "unread_messages": unread.get(p.id),
            },
        }
        for p in rows
    ]
    return {"items": items, "next_cursor": next_cursor}


@router.get("/{pid}", response_model=PatientDetailOut, summary="One patient")
def get_patient(access: ReadAccess, session: SessionDep) -> dict[str, Any]:
    """The patient's registration data and named care contact (fast vårdkontakt)."""
    named = plans_contact.contact_dict(
        session, plans_repository.current_contact(session, access.patient.id)
    )
    return {**patients_service.patient_dict(access.patient), "care_contact": named}


def _audit_enrolment(session: Session, actor: Actor, patient_id: str, now: datetime) -> None:
    patient = session.get(Patient, patient_id)
    audit_as_related(session, actor, patient, "enrol", "POST /v1/patients", now, unrelated="enrol")


@router.post(
    "",
    status_code=201,
    # The 202 (a request to another team's patient) is documented below with its own model.
    response_model=PatientOut | EnrolmentRequestOut,
    summary="Enrol a patient in one of the caller's teams",
    responses={
        202: {
            "model": EnrolmentRequestOut,
            "description": "Enrolled with another team: a request the patient decides on",
        }
    },
)
def enrol_patient(
    body: EnrolPatientIn,
    actor: ActorDep,
    session: SessionDep,
    response: Response,
    _limit: EnrolmentLimited,
) -> dict[str, Any]:
    """Enrol a new patient (clinician or admin); 202 with a team request if enrolled elsewhere.

    409 when the patient is enrolled with this team already, or its request is pending.
    """
    now = utcnow()
    try:
        enrolment = patients_service.enrol(
            session,
            actor,
            personnummer_value=body.personnummer,
            display_name=body.display_name,
            timezone=body.timezone,
            language=body.language,
            team_id=body.team_id,
            now=now,
        )
    except patients_service.AlreadyEnrolled as exc:
        # Learning that a personnummer is enrolled is an access to that patient: log it.
        _audit_enrolment(session, actor, exc.patient_id, now)
        raise
    _audit_enrolment(session, actor, enrolment.patient.id, now)
    if enrolment.request is not None:
        # Nothing about the patient: the team learns only that its request waits.
        response.status_code = 202
        return {"enrolment_request": team_requests.request_dict(session, enrolment.request)}
    return patients_service.patient_dict(enrolment.patient)
