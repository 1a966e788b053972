"""Team requests (DESIGN §4.10): a patient joins another care team only when they agree.

A clinician who enrols a personnummer already enrolled with another team makes a request
instead; the requesting team sees nothing of the patient (no ``team_patients`` row) until the
patient, or a proxy whose grant has the agree scope, accepts — or an administrator confirms
with a basis note (the patient cannot answer, say). The patient is told by push either way,
and every step is in the patient's change feed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth.models import Scope
from app.auth.people import person_of, users_by_id
from app.directory.models import TeamRequest, TeamRequestStatus
from app.errors import Conflict, NotFound
from app.feed import service as feed
from app.patients.models import CareTeam, CareUnit, Patient, TeamPatient
from app.push import repository as push_repository
from app.push import service as push

NOTICE_TTL_SECONDS = 7 * 24 * 3600

# What the patient reads: the care unit's name and nothing about their health.
_TEXTS: dict[str, dict[str, str]] = {
    TeamRequestStatus.PENDING: {
        "sv": "{unit} vill bli en del av din vård. Svara i appen.",
        "en": "{unit} would like to take part in your care. Answer in the app.",
    },
    TeamRequestStatus.ACCEPTED: {
        "sv": "{unit} är nu en del av din vård.",
        "en": "{unit} now takes part in your care.",
    },
    TeamRequestStatus.CONFIRMED: {
        "sv": "{unit} är nu en del av din vård.",
        "en": "{unit} now takes part in your care.",
    },
    TeamRequestStatus.DECLINED: {
        "sv": "{unit} blir inte en del av din vård.",
        "en": "{unit} will not take part in your care.",
    },
}


class RequestPending(Conflict):
    """The team has a request for this patient waiting already."""


def notice_text(status: str, unit_name: str, lang: str) -> str:
    """The sentence the patient reads about a team request, in their language."""
    texts = _TEXTS[status]
    return texts.get(lang, texts["sv"]).format(unit=unit_name)


def _team_and_unit(session: Session, team_id: str) -> tuple[CareTeam, CareUnit]:
    team = session.get(CareTeam, team_id)
    assert team is not None  # a foreign key
    unit = session.get(CareUnit, team.care_unit_id)
    assert unit is not None
    return team, unit


def request_dicts(
    session: Session, rows: Sequence[TeamRequest], *, admin: bool = False
) -> list[dict[str, Any]]:
    """The API form of team requests (with the patient and basis note for operations)."""
    users = users_by_id(session, [r.requested_by for r in rows] + [r.decided_by for r in rows])
    result = []
    for row in rows:
        team, unit = _team_and_unit(session, row.team_id)
        item: dict[str, Any] = {
            "id": row.id,
            "team": {
                "id": team.id,
                "name": team.name,
                "care_unit": {"id": unit.id, "name": unit.name},
            },
            "status": row.status,
            "requested_by": person_of(row.requested_by, None, users),
            "requested_at": row.requested_at,
            "decided_by": person_of(row.decided_by, None, users),
            "decided_at": row.decided_at,
        }
        if admin:
            item["patient_id"] = row.patient_id
            item["basis_note"] = row.basis_note
        result.append(item)
    return result


def request_dict(session: Session, row: TeamRequest, *, admin: bool = False) -> dict[str, Any]:
    """The API form of one team request."""
    return request_dicts(session, [row], admin=admin)[0]


def create(
    session: Session, *, patient: Patient, team_id: str, requested_by: str | None, now: datetime
) -> TeamRequest:
    """Record a pending request and tell the patient's side (the caller checked for repeats)."""
    row = TeamRequest(
        patient_id=patient.id,
        team_id=team_id,
        status=TeamRequestStatus.PENDING,
        requested_by=requested_by,
        requested_at=now,
    )
    try:
        # Two clinicians of the team asking at once: the partial unique index lets one win.
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise RequestPending("This team's request is waiting for the patient.") from exc
    _record_change(session, row, "create", now)
    return row


def find(session: Session, request_id: str, patient_id: str | None = None) -> TeamRequest:
    """A request by id (of this patient, when given); 404 otherwise."""
    row = session.get(TeamRequest, request_id) if 0 < len(request_id) <= 36 else None
    if row is None or (patient_id is not None and row.patient_id != patient_id):
        raise NotFound("No such team request.")
    return row


def decide(
    session: Session, row: TeamRequest, *, accept: bool, by: str | None, now: datetime
) -> TeamRequest:
    """The patient's side accepts or declines a pending request; 409 once it was decided."""
    status = TeamRequestStatus.ACCEPTED if accept else TeamRequestStatus.DECLINED
    return _settle(session, row, status, by=by, now=now, basis_note=None)


def confirm(
    session: Session, row: TeamRequest, *, by: str | None, basis_note: str, now: datetime
) -> TeamRequest:
    """An administrator confirms a pending request, stating the basis; 409 once decided."""
    return _settle(session, row, TeamRequestStatus.CONFIRMED, by=by, now=now, basis_note=basis_note)


def _settle(
    session: Session,
    row: TeamRequest,
    status: TeamRequestStatus,
    *,
    by: str | None,
    now: datetime,
    basis_note: str | None,
) -> TeamRequest:
    # The patient's feed lock serialises two decisions on one request (the patient on the
    # phone, the proxy on the web): the second reads the first's outcome and gets 409.
    feed.lock_patient(session, row.patient_id)
    session.refresh(row)
    if row.status != TeamRequestStatus.PENDING:
        raise Conflict(f"This request was {row.status} already.")
    row.status = status
    row.decided_by = by
    row.decided_at = now
    row.basis_note = basis_note
    if status != TeamRequestStatus.DECLINED:
        key = {"team_id": row.team_id, "patient_id": row.patient_id}
        if session.get(TeamPatient, key) is None:
            session.add(
                TeamPatient(
                    team_id=row.team_id,
                    patient_id=row.patient_id,
                    enrolled_at=now,
                    enrolled_by=row.requested_by,
                )
            )
    session.flush()
    _record_change(session, row, "update", now)
    return row


def _record_change(session: Session, row: TeamRequest, op: str, now: datetime) -> None:
    """Put the request in the patient's feed and tell the patient's side."""
    data = request_dict(session, row)
    feed.append(
        session,
        row.patient_id,
        entity="team_request",
        op=op,
        entity_id=row.id,
        data={
            **data,
            "requested_at": row.requested_at.isoformat(),
            "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        },
        now=now,
    )
    tell_patient(session, row, now)


def tell_patient(session: Session, row: TeamRequest, now: datetime) -> int:
    """Push the request's news to the patient and proxies who may decide; how many pushes."""
    patient = session.get(Patient, row.patient_id)
    if patient is None:
        return 0
    _, unit = _team_and_unit(session, row.team_id)
    count = 0
    for user in push.patient_side(session, patient, now, Scope.AGREE):
        title = notice_text(row.status, unit.name, push.language_of(user))
        for subscription in push_repository.active_subscriptions(session, user.id):
            push.enqueue(
                session,
                subscription=subscription,
                patient_id=patient.id,
                kind="team_request",
                payload={"title": title, "team_request_id": row.id, "patient_id": patient.id},
                urgency="normal",
                ttl_seconds=NOTICE_TTL_SECONDS,
                topic_=push.topic("team", row.id),
                now=now,
            )
            count += 1
    return count
