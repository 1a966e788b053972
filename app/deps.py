"""FastAPI dependencies: the request's session and transaction, the actor, patient access."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth import repository as auth_repository
from app.auth.login import user_for_token
from app.auth.models import Role
from app.auth.policy import (
    Access,
    Action,
    Actor,
    Forbidden,
    Relation,
    authorize,
    flag_not_found,
    home_care_unit,
    may_write_goal,
    relation_to,
)
from app.auth.tokens import TokenClaims, verify_token
from app.clock import utcnow
from app.config import Settings
from app.db import transaction
from app.errors import AppError, NotFound, Unauthorized
from app.findings import service as findings_service
from app.findings.models import Flag
from app.goals import service as goals_service
from app.goals.models import Goal
from app.patients.models import Patient
from app.probing import Attempt, ProbingLimits
from app.readings.ratelimit import OwnPatients


async def get_settings_dep(request: Request) -> Settings:
    """The settings the app was created with."""
    # async: no I/O, and FastAPI runs a plain def dependency in the thread pool (a hand-off
    # to a worker thread and back, per request, for a dictionary lookup).
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


def verified_claims(request: Request, settings: Settings, token: str) -> TokenClaims:
    """Verify a bearer token once per request (Unauthorized when it does not verify).

    The sync's flood limit verifies the token before the body is read and the actor after
    it; the second is the same token in the same request, so its claims are reused.
    """
    kept = getattr(request.state, "verified_token", None)
    if kept is not None and kept[0] == token:
        claims: TokenClaims = kept[1]
        return claims
    claims = verify_token(settings, token, now=utcnow(), keys=request.app.state.signing_keys)
    request.state.verified_token = (token, claims)
    return claims


def get_actor(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Actor:
    """The caller, from a verified bearer token; failed tokens are rate limited (429).

    The one path from a token to a user: verified against the app's issuer keys (503 when
    the issuer cannot be reached), then the user with its ``sub``, or a known person at their
    first login (app/auth/login.py).
    """
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized()
    token = authorization[7:].strip()
    try:
        claims = verified_claims(request, settings, token)
        user = user_for_token(session, claims, utcnow())
    except Unauthorized as exc:
        probing: ProbingLimits = request.app.state.probing
        raise probing.auth_failed(request, token, exc) from None
    return Actor(user=user, care_unit_id=claims.care_unit_id)


ActorDep = Annotated[Actor, Depends(get_actor)]


def attempts_limited(kind: Attempt) -> Callable[..., Iterator[None]]:
    """A dependency that refuses (429) a caller whose failed attempts of ``kind`` ran out.

    Refusals that could tell a prober something are charged to the caller (app/probing.py).
    """

    def dependency(request: Request, actor: ActorDep) -> Iterator[None]:
        probing: ProbingLimits = request.app.state.probing
        probing.before_attempt(kind, actor.id)
        try:
            yield
        except AppError as exc:
            probing.attempt_failed(kind, actor.id, exc)
            raise

    return dependency


EnrolmentLimited = Annotated[None, Depends(attempts_limited("enrolment"), scope="function")]
CodeAttemptsLimited = Annotated[None, Depends(attempts_limited("invitation"), scope="function")]


def resolve_patient(session: Session, actor: Actor, pid: str) -> tuple[str, Patient | None]:
    """Turn ``me`` into the caller's own patient id, with the record read (else None).

    The policy reads that record next: a caller who holds it finds it in the session
    (``session.get``) instead of asking the database again.
    """
    if pid != "me":
        return pid, None
    own = auth_repository.own_patient(session, actor.id)
    if own is None:
        raise NotFound("You are not a patient of this service.")
    return own.id, own


def audit_access(
    session: Session, access: Access, action: str, resource: str, *, relation: str | None = None
) -> None:
    """Log one access to one patient's data (``relation`` when it is not the access's own)."""
    audit.record(
        session,
        audit.AuditEntry(
            occurred_at=utcnow(),
            actor_id=access.actor.id,
            actor_handle=access.actor.user.handle,
            actor_role=access.actor.role,
            relation=relation or access.relation,
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
    audit_actor(session, actor, "list", Action.READ, resource, patient_ids)


def audit_actor(
    session: Session,
    actor: Actor,
    relation: str,
    action: str,
    resource: str,
    patient_ids: tuple[str, ...] = (),
) -> None:
    """Log what a caller did from their home care unit, outside any one patient's access."""
    unit_id, unit_name = home_care_unit(session, actor)
    audit.record(
        session,
        audit.AuditEntry(
            occurred_at=utcnow(),
            actor_id=actor.id,
            actor_handle=actor.user.handle,
            actor_role=actor.role,
            relation=relation,
            action=action,
            resource=resource,
            patient_ids=patient_ids,
            care_unit_id=unit_id,
            care_unit_name=unit_name,
        ),
    )


def audit_refusal(
    session: Session, actor: Actor, patient_id: str | None, action: str, resource: str
) -> None:
    """Log an attempt the policy refused (a 404 or 403 on a patient's data).

    The row names the patient when one exists with that id (so the patient sees the attempt in
    their access log) and the relation the caller has to them ("none" for a stranger); the
    outcome becomes ``refused:<status>`` in ``get_session``. An id that names no patient is
    logged without a subject, and the id itself is not logged (it is the caller's input).
    """
    patient = session.get(Patient, patient_id) if patient_id and len(patient_id) <= 36 else None
    audit_as_related(session, actor, patient, action, resource, utcnow(), unrelated="none")


def audit_as_related(
    session: Session,
    actor: Actor,
    patient: Patient | None,
    action: str,
    resource: str,
    now: datetime,
    *,
    unrelated: str,
) -> None:
    """Log an action on ``patient`` with the relation the caller has to them right now.

    The care unit is the one of that relation, else the caller's home unit; a caller with no
    relation to the patient is logged with the relation ``unrelated`` ("none", "enrol").
    """
    access = relation_to(session, actor, patient, now) if patient is not None else None
    unit_id: str | None
    unit_name: str | None
    if access is not None and access.care_unit_id is not None:
        unit_id, unit_name = access.care_unit_id, access.care_unit_name
    else:
        unit_id, unit_name = home_care_unit(session, actor)
    audit.record(
        session,
        audit.AuditEntry(
            occurred_at=now,
            actor_id=actor.id,
            actor_handle=actor.user.handle,
            actor_role=actor.role,
            relation=access.relation if access is not None else unrelated,
            action=action,
            resource=resource,
            patient_ids=(patient.id,) if patient is not None else (),
            care_unit_id=unit_id,
            care_unit_name=unit_name,
        ),
    )


def authorize_audited(
    session: Session, actor: Actor, pid: str, action: Action, resource: str, now: datetime
) -> Access:
    """Authorise ``action`` on a patient (``me`` allowed); a refusal is audited, then raised."""
    patient_id: str | None = None
    try:
        patient_id, _own = resolve_patient(session, actor, pid)  # _own: held for authorize
        return authorize(session, actor, patient_id, action, now)
    except (NotFound, Forbidden):
        audit_refusal(session, actor, patient_id, action, resource)
        raise


def route_of(request: Request) -> str:
    """The request's method and route template, as audit rows name it."""
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path', request.url.path)}"


def patient_access(action: Action) -> Callable[..., Access]:
    """A dependency that authorises ``action`` on the path's patient and audits it."""

    def dependency(pid: str, request: Request, session: SessionDep, actor: ActorDep) -> Access:
        resource = route_of(request)
        access = authorize_audited(session, actor, pid, action, resource, utcnow())
        audit_access(session, access, action, resource)
        if access.relation == Relation.SELF and actor.user.subject is not None:
            # So that ``me`` and this id share one sync bucket (app/readings/ratelimit.py).
            own: OwnPatients = request.app.state.own_patients
            own.remember(actor.user.subject, access.patient.id)
        return access

    return dependency


AcceptLanguage = Annotated[str | None, Header(alias="accept-language")]
ReadAccess = Annotated[Access, Depends(patient_access(Action.READ))]
WriteReadingsAccess = Annotated[Access, Depends(patient_access(Action.WRITE_READINGS))]
PlanWriteAccess = Annotated[Access, Depends(patient_access(Action.WRITE_PLAN))]
AccessLogAccess = Annotated[Access, Depends(patient_access(Action.READ_ACCESS_LOG))]
GrantsReadAccess = Annotated[Access, Depends(patient_access(Action.READ_GRANTS))]
ConsentAccess = Annotated[Access, Depends(patient_access(Action.MANAGE_CONSENT))]
RepresentativeAccess = Annotated[Access, Depends(patient_access(Action.REGISTER_REPRESENTATIVE))]
MessageAccess = Annotated[Access, Depends(patient_access(Action.MESSAGE))]
AgreementDecisionAccess = Annotated[Access, Depends(patient_access(Action.DECIDE_AGREEMENT))]
StoryWriteAccess = Annotated[Access, Depends(patient_access(Action.WRITE_STORY))]
CalendarAccess = Annotated[Access, Depends(patient_access(Action.MANAGE_CALENDAR))]
ExportCopyAccess = Annotated[Access, Depends(patient_access(Action.EXPORT_COPY))]
TeamRequestAccess = Annotated[Access, Depends(patient_access(Action.DECIDE_TEAM_REQUEST))]


WRITE_GOAL = "write_goal"  # the audit log's name for creating or changing a goal


@dataclass(frozen=True)
class GoalWrite:
    """A goal write on the path's patient, decided by the policy once the body has parsed.

    Deciding after parsing keeps today's order of answers: an invalid body is a 422 before
    anything about the patient is told or logged.
    """

    session: Session
    actor: Actor
    pid: str
    resource: str

    def _visible(self) -> Access:
        # Visible at all (404 otherwise, as for a missing patient), logged as a goal write.
        access = authorize_audited(
            self.session, self.actor, self.pid, Action.READ, self.resource, utcnow()
        )
        audit_access(self.session, access, WRITE_GOAL, self.resource)
        return access

    def create(self, *, personal: bool) -> Access:
        """Authorise adding a goal (a personal one: the patient or the care team)."""
        if not personal:
            access = authorize_audited(
                self.session, self.actor, self.pid, Action.WRITE_PLAN, self.resource, utcnow()
            )
            audit_access(self.session, access, WRITE_GOAL, self.resource)
            return access
        access = self._visible()
        if not may_write_goal(access, personal=True):
            raise Forbidden("Only the patient or the care team may add a personal goal.")
        return access

    def change(self, goal_id: str) -> tuple[Access, Goal]:
        """Authorise changing a goal of the patient (404 for another patient's goal)."""
        access = self._visible()
        goal = goals_service.get_goal(self.session, access.patient.id, goal_id)
        if not may_write_goal(access, personal=goal.personal):
            raise Forbidden("Only the care team may change this goal.")
        return access, goal


def goal_write(pid: str, request: Request, session: SessionDep, actor: ActorDep) -> GoalWrite:
    """The goal write the route decides once its body has parsed."""
    return GoalWrite(session, actor, pid, route_of(request))


GoalWriteDep = Annotated[GoalWrite, Depends(goal_write)]


@dataclass(frozen=True)
class FlagAction:
    """A care team's action on a flag, decided by the policy once the body has parsed."""

    session: Session
    actor: Actor

    def authorize(self, flag_id: str, verb: str) -> tuple[Flag, Access]:
        """Authorise managing the flag; a flag the caller may not see answers like a missing one."""
        flag = findings_service.get_flag(self.session, flag_id)
        if flag is None:
            raise flag_not_found()
        resource = f"POST /v1/flags/{{flag_id}}/{verb}"
        try:
            access = authorize_audited(
                self.session, self.actor, flag.patient_id, Action.MANAGE_FLAGS, resource, utcnow()
            )
        except NotFound as exc:
            raise flag_not_found() from exc
        audit_access(self.session, access, Action.MANAGE_FLAGS, resource)
        return flag, access


def flag_action(session: SessionDep, actor: ActorDep) -> FlagAction:
    """The flag action the route decides once its body has parsed."""
    return FlagAction(session, actor)


FlagActionDep = Annotated[FlagAction, Depends(flag_action)]


@dataclass(frozen=True)
class AdminCall:
    """An administrator's call on the directory, and the route it is logged as."""

    actor: Actor
    resource: str

    def audit(self, session: Session, action: str, patient_ids: tuple[str, ...] = ()) -> None:
        """Log this call (one row; a refusal later in the request becomes its outcome)."""
        audit.record(
            session,
            audit.AuditEntry(
                occurred_at=utcnow(),
                actor_id=self.actor.id,
                actor_handle=self.actor.user.handle,
                actor_role=self.actor.role,
                relation="admin",
                action=action,
                resource=self.resource,
                patient_ids=patient_ids,
            ),
        )


def require_admin(request: Request, session: SessionDep, actor: ActorDep) -> AdminCall:
    """The caller, when an administrator; anyone else is refused (403), and the attempt logged."""
    resource = route_of(request)
    if actor.role != Role.ADMIN:
        # Someone trying the directory's door is worth a line in the log: get_session writes
        # it with the outcome refused:403.
        audit_actor(session, actor, "none", "administer", resource)
        raise Forbidden("Only administrators manage the directory.")
    return AdminCall(actor, resource)


AdminDep = Annotated[AdminCall, Depends(require_admin)]
