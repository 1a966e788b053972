"""FastAPI dependencies: the request's session and transaction, the actor, patient access."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth.models import User
from app.auth.policy import Access, Action, Actor, authorize, home_care_unit
from app.auth.tokens import verify_token
from app.clock import utcnow
from app.config import Settings
from app.db import transaction
from app.errors import AppError, NotFound, Unauthorized
from app.patients.models import Patient


def get_settings_dep(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_session(request: Request) -> Iterator[Session]:
    """One session and one transaction per request, committed before the response is sent.

    When an authorised request is refused (409, 422, …) its writes roll back, but its audit
    entries are still written, in their own transaction, with the refusal as the outcome:
    an attempt on a patient's data is an access too.
    """
    factory = request.app.state.sessionmaker
    session = factory()
    try:
        yield session
        session.commit()
    except AppError as exc:
        refused = audit.pending(session)
        session.rollback()
        if refused:
            with transaction(factory) as audit_session:
                for entry in refused:
                    audit.record(audit_session, replace(entry, outcome=f"refused:{exc.status}"))
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_actor(
    session: SessionDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Actor:
    """The caller, from a verified bearer token."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized()
    claims = verify_token(settings, authorization[7:].strip(), now=utcnow())
    user = session.scalars(select(User).where(User.subject == claims.subject)).first()
    if user is None or not user.active:
        raise Unauthorized("The token's subject is not a user of this service.")
    return Actor(user=user, care_unit_id=claims.care_unit_id)


ActorDep = Annotated[Actor, Depends(get_actor)]


def resolve_patient_id(session: Session, actor: Actor, pid: str) -> str:
    """Turn ``me`` into the caller's own patient id."""
    if pid != "me":
        return pid
    own = session.scalars(select(Patient.id).where(Patient.user_id == actor.id)).first()
    if own is None:
        raise NotFound("You are not a patient of this service.")
    return own


def audit_access(session: Session, access: Access, action: str, resource: str) -> None:
    """Log one access to one patient's data."""
    audit.record(
        session,
        audit.AuditEntry(
            occurred_at=utcnow(),
            actor_id=access.actor.id,
            actor_handle=access.actor.user.handle,
            actor_role=access.actor.role,
            relation=access.relation,
            action=action,
            resource=resource,
            patient_ids=(access.patient.id,),
            care_unit_id=access.care_unit_id,
            care_unit_name=access.care_unit_name,
        ),
    )


def audit_listing(
    session: Session, actor: Actor, resource: str, patient_ids: tuple[str, ...]
) -> None:
    """Log one read across several patients (a worklist, the patient list)."""
    unit_id, unit_name = home_care_unit(session, actor)
    audit.record(
        session,
        audit.AuditEntry(
            occurred_at=utcnow(),
            actor_id=actor.id,
            actor_handle=actor.user.handle,
            actor_role=actor.role,
            relation="list",
            action=Action.READ,
            resource=resource,
            patient_ids=patient_ids,
            care_unit_id=unit_id,
            care_unit_name=unit_name,
        ),
    )


def patient_access(action: Action) -> Callable[..., Access]:
    """A dependency that authorises ``action`` on the path's patient and audits it."""

    def dependency(pid: str, request: Request, session: SessionDep, actor: ActorDep) -> Access:
        access = authorize(
            session, actor, resolve_patient_id(session, actor, pid), action, utcnow()
        )
        route = request.scope.get("route")
        template = getattr(route, "path", request.url.path)
        audit_access(session, access, action, f"{request.method} {template}")
        return access

    return dependency


ReadAccess = Annotated[Access, Depends(patient_access(Action.READ))]
WriteReadingsAccess = Annotated[Access, Depends(patient_access(Action.WRITE_READINGS))]
PlanWriteAccess = Annotated[Access, Depends(patient_access(Action.WRITE_PLAN))]
AccessLogAccess = Annotated[Access, Depends(patient_access(Action.READ_ACCESS_LOG))]
