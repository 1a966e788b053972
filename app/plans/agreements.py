"""Agreements of the shared plan: proposed by the team, decided by the patient, kept forever.

The care team proposes agreements in a plan version (``PUT plan``; an agreement without
``id`` is new). The patient, or a proxy with the ``agree`` scope, agrees or declines with a
comment; the team then pauses, resumes or marks it done. Each decision and status change is an
``agreement_events`` row keyed by the agreement's id, so plan versions stay immutable and
every change is kept. An agreement's content never changes: a changed text is a new agreement.

Status follows the latest event::

    proposed ──agreed/declined──▶ agreed | declined   (the patient may change their mind)
    agreed ──paused──▶ paused ──resumed──▶ agreed
    agreed | paused ──done──▶ done (final)

Only agreements of the patient's current plan version can be decided or changed. Asking for
the status an agreement already has, with no new comment, changes nothing (a safe retry).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.auth import people
from app.auth.models import User
from app.auth.policy import Access, Relation, grant_is_active
from app.db import new_id
from app.errors import Conflict, ErrorItem, NotFound
from app.feed import service as feed
from app.patients.models import Patient
from app.plans import repository
from app.plans.models import AgreementEvent, AgreementRecord, PlanVersion
from rules.plan import Agreement, Responsible

PROPOSED = "proposed"
# Which statuses an event may lead from, by the status it sets.
_FROM: dict[str, frozenset[str]] = {
    "agreed": frozenset({PROPOSED, "agreed", "declined"}),
    "declined": frozenset({PROPOSED, "agreed", "declined"}),
    "paused": frozenset({"agreed"}),
    "resumed": frozenset({"paused"}),
    "done": frozenset({"agreed", "paused"}),
}
_CONTENT_KEYS = ("text", "what", "when", "responsible")


def content_of(agreement: Agreement) -> dict[str, Any]:
    """What an agreement says (text, what, when, responsible), as stored and compared."""
    data = agreement.model_dump(mode="json", exclude_none=True, include=set(_CONTENT_KEYS))
    if "responsible" in data:
        data["responsible"] = {
            k: v for k, v in data["responsible"].items() if k in ("kind", "id", "display_name")
        }
    return data


def _same(stored: dict[str, Any], sent: dict[str, Any]) -> bool:
    def key(content: dict[str, Any]) -> dict[str, Any]:
        responsible = content.get("responsible") or {}
        return {
            **{k: content.get(k) for k in ("text", "what", "when")},
            "responsible": (responsible.get("kind"), responsible.get("id")),
        }

    return key(stored) == key(sent)


def _responsible_name(
    session: Session, patient: Patient, responsible: Responsible, now: datetime
) -> str | None:
    """The display name of whoever is responsible, or None when they do not relate."""
    match responsible.kind:
        case "patient":
            ok = responsible.id in (None, patient.id)
            return patient.display_name if ok else None
        case "relative":
            grants = repository.grants_to(session, patient.id, responsible.id)
            if not any(grant_is_active(g, now) for g in grants):
                return None
            user = session.get(User, responsible.id)
            return user.display_name if user is not None else None
        case "clinician":
            return repository.clinician_name_in_care(session, patient.id, responsible.id)
        case _:
            return repository.team_name_in_care(session, patient.id, responsible.id)


def prepare(
    session: Session, patient: Patient, agreements: Sequence[Agreement], now: datetime
) -> tuple[list[dict[str, Any]], list[ErrorItem]]:
    """The agreements of a new plan version as stored (with ids), and any errors.

    A new agreement gets an id; a known one must be the patient's and unchanged. The person
    or team responsible must exist and relate to the patient (default: the patient).
    """
    stored: list[dict[str, Any]] = []
    errors: list[ErrorItem] = []
    known = {r.id: r for r in repository.agreement_records(session, patient.id)}
    for i, agreement in enumerate(agreements):
        loc = f"agreements[{i}]"
        responsible = agreement.responsible or Responsible(kind="patient", id=patient.id)
        if responsible.kind == "team" and not responsible.id:
            responsible = responsible.model_copy(
                update={"id": repository.first_team_id(session, patient.id)}
            )
        if responsible.kind in ("relative", "clinician", "team") and not responsible.id:
            errors.append(
                ErrorItem(
                    loc=f"{loc}.responsible.id", code="required", message="Say who is responsible."
                )
            )
            continue
        name = _responsible_name(session, patient, responsible, now)
        if name is None:
            errors.append(
                ErrorItem(
                    loc=f"{loc}.responsible",
                    code="unknown_responsible",
                    message=f"No {responsible.kind} with this id takes part in the patient's care.",
                )
            )
            continue
        responsible = responsible.model_copy(
            update={"id": responsible.id or patient.id, "display_name": name}
        )
        content = content_of(agreement.model_copy(update={"responsible": responsible}))
        if agreement.id is None:
            stored.append({"id": new_id(), **content})
            continue
        record = known.get(agreement.id)
        if record is None:
            errors.append(
                ErrorItem(loc=f"{loc}.id", code="unknown_agreement", message="No such agreement.")
            )
        elif not _same(record.content, content):
            errors.append(
                ErrorItem(
                    loc=f"{loc}",
                    code="agreement_changed",
                    message="An agreement cannot be changed once proposed: leave out its id "
                    "to propose a new one.",
                )
            )
        else:
            stored.append({"id": record.id, **record.content})
    return stored, errors


def record_new(
    session: Session, version: PlanVersion, stored: Sequence[dict[str, Any]], author_id: str | None
) -> None:
    """Add the records of agreements this version proposes for the first time."""
    known = repository.recorded_agreement_ids(session, [a["id"] for a in stored])
    for item in stored:
        if item["id"] not in known:
            session.add(
                AgreementRecord(
                    id=item["id"],
                    patient_id=version.patient_id,
                    content={k: v for k, v in item.items() if k != "id"},
                    proposed_in=version.version,
                    proposed_at=version.created_at,
                    proposed_by=author_id,
                )
            )
    session.flush()


def events_by_agreement(
    session: Session, agreement_ids: Sequence[str]
) -> dict[str, list[AgreementEvent]]:
    """Every event of these agreements, oldest first, in one query."""
    out: dict[str, list[AgreementEvent]] = {i: [] for i in agreement_ids}
    if not agreement_ids:
        return out
    for event in repository.agreement_events(session, agreement_ids):
        out[event.agreement_id].append(event)
    return out


def status_of(events: Sequence[AgreementEvent]) -> str:
    """The status the events lead to (``resumed`` is back to ``agreed``)."""
    if not events:
        return PROPOSED
    last = events[-1].status
    return "agreed" if last == "resumed" else last


def with_status(
    items: Sequence[dict[str, Any]],
    events: dict[str, list[AgreementEvent]],
    users: dict[str, User],
) -> list[dict[str, Any]]:
    """Stored agreements with their status, decision and history."""
    out = []
    for item in items:
        history = events.get(item.get("id") or "", [])
        decision = next((e for e in reversed(history) if e.kind == "decision"), None)
        out.append(
            {
                **item,
                "status": status_of(history),
                "decided_at": decision.at.isoformat() if decision else None,
                "decided_by": people.person_of(decision.actor_id, decision.actor_care_unit, users)
                if decision
                else None,
                "comment": decision.comment if decision else "",
                "history": [
                    {
                        "status": e.status,
                        "comment": e.comment,
                        "at": e.at.isoformat(),
                        "by": people.person_of(e.actor_id, e.actor_care_unit, users),
                    }
                    for e in history
                ],
            }
        )
    return out


def enrich(session: Session, bodies: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The agreements of several plan bodies with their status, in two queries."""
    ids = [a["id"] for body in bodies for a in body.get("agreements", []) if a.get("id")]
    events = events_by_agreement(session, ids)
    users = people.users_by_id(session, [e.actor_id for evs in events.values() for e in evs])
    return [with_status(body.get("agreements", []), events, users) for body in bodies]


def _current_item(session: Session, patient_id: str, agreement_id: str) -> dict[str, Any]:
    version = repository.current(session, patient_id)
    items = version.body.get("agreements", []) if version is not None else []
    item = next((a for a in items if a.get("id") == agreement_id), None)
    if item is None:
        raise NotFound("No such agreement.")
    return dict(item)


def _repeated(history: Sequence[AgreementEvent], status: str, comment: str) -> bool:
    """Whether the change asks for the status the agreement has, with nothing new to say."""
    if not history:
        return False
    last = history[-1]
    same = status_of(history) == ("agreed" if status == "resumed" else status)
    return same and comment in ("", last.comment)


def change(
    session: Session,
    access: Access,
    agreement_id: str,
    *,
    status: str,
    comment: str,
    now: datetime,
) -> dict[str, Any]:
    """Record a decision (the patient side) or a status (the team) and return the agreement."""
    feed.lock_patient(session, access.patient.id)  # one decision at a time per patient
    item = _current_item(session, access.patient.id, agreement_id)
    history = events_by_agreement(session, [agreement_id])[agreement_id]
    current = status_of(history)
    if _repeated(history, status, comment):
        # A retry, or the same answer twice: nothing new to keep.
        return enrich(session, [{"agreements": [item]}])[0][0]
    if current not in _FROM[status]:
        raise Conflict(f"The agreement is {current}; it cannot be {status} now.")
    side_team = access.relation == Relation.CARE_TEAM
    session.add(
        AgreementEvent(
            agreement_id=agreement_id,
            patient_id=access.patient.id,
            kind="status" if side_team else "decision",
            status=status,
            comment=comment,
            actor_id=access.actor.id,
            actor_care_unit=access.care_unit_name if side_team else None,
            at=now,
        )
    )
    session.flush()
    agreement = enrich(session, [{"agreements": [item]}])[0][0]
    feed.append(
        session,
        access.patient.id,
        entity="agreement",
        op="upsert",
        entity_id=agreement_id,
        data=agreement,
        now=now,
    )
    return agreement
