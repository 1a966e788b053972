"""The patient's named care contact (fast vårdkontakt): the one source of whom to call.

The care team sets it: a clinician of one of the patient's teams, that team, a phone and the
hours they answer. Every change is a new row; the newest counts. Advice, pages and reminders
name this person; without one, advice falls back to the phone of the patient's team.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.auth import people
from app.auth.models import User
from app.errors import ErrorItem, Unprocessable
from app.feed import service as feed
from app.plans import repository
from app.plans.models import CareContactRecord
from rules.advice import CareContact


def contact_dict(session: Session, record: CareContactRecord | None) -> dict[str, Any] | None:
    """The API form of a care contact: who, which team and unit, phone and hours."""
    if record is None:
        return None
    users = people.users_by_id(session, [record.clinician_id, record.set_by])
    found = repository.team_and_unit(session, record.team_id)
    unit = found[1].name if found is not None else None
    clinician = users.get(record.clinician_id)
    return {
        "clinician": people.person_of(record.clinician_id, unit, users),
        "title": clinician.title if clinician is not None else "",
        "team": {"id": record.team_id, "name": found[0].name if found else None, "care_unit": unit},
        "phone": record.phone or (found[0].phone if found is not None else ""),
        "hours": record.hours,
        "set_at": record.set_at.isoformat(),
        "set_by": people.person_of(record.set_by, None, users),
    }


def care_contact(session: Session, patient_id: str) -> CareContact | None:
    """Whom advice tells the patient to call: the named contact, else the team's phone."""
    record = repository.current_contact(session, patient_id)
    if record is not None:
        clinician = session.get(User, record.clinician_id)
        found = repository.team_and_unit(session, record.team_id)
        if clinician is not None and found is not None:
            team, unit = found
            role = f"{clinician.title}, {unit.name}" if clinician.title else unit.name
            return CareContact(
                name=clinician.display_name, role=role, phone=record.phone or team.phone
            )
    row = repository.first_team_with_phone(session, patient_id)
    return CareContact(name=row.name, phone=row.phone, team=True) if row is not None else None


def set_contact(
    session: Session,
    patient_id: str,
    *,
    set_by: str | None,
    clinician_id: str,
    team_id: str | None,
    phone: str,
    hours: str,
    now: datetime,
) -> CareContactRecord:
    """Name the patient's care contact; the clinician must be in one of the patient's teams."""
    teams = repository.shared_team_ids(session, clinician_id, patient_id)
    if not teams:
        raise Unprocessable(
            "The care contact must be a clinician of one of the patient's care teams.",
            errors=[
                ErrorItem(
                    loc="body.clinician_id",
                    code="not_in_care_team",
                    message="No clinician with this id takes part in the patient's care.",
                )
            ],
        )
    if team_id is not None and team_id not in teams:
        raise Unprocessable(
            "The clinician is not a member of that team.",
            errors=[
                ErrorItem(
                    loc="body.team_id",
                    code="not_in_care_team",
                    message="The clinician is not in this team of the patient's.",
                )
            ],
        )
    feed.lock_patient(session, patient_id)
    record = CareContactRecord(
        patient_id=patient_id,
        clinician_id=clinician_id,
        team_id=team_id or teams[0],
        phone=phone,
        hours=hours,
        set_at=now,
        set_by=set_by,
    )
    session.add(record)
    session.flush()
    feed.append(
        session,
        patient_id,
        entity="care_contact",
        op="upsert",
        entity_id=patient_id,
        data=contact_dict(session, record) or {},
        now=now,
    )
    return record
