"""The one access policy: may this actor do this to this patient?

Relations, checked in order:
- **self**: the patient's own login;
- **care_team**: a clinician who is a member of a care team the patient is enrolled with;
- **proxy**: a grantee with an active grant (status active, ``valid_from`` ≤ now <
  ``valid_to``) whose scopes allow the action;
- **admin**: operations; may read (audited) and enrol, never acts clinically.

Goals: the care team writes any goal (``Action.WRITE_PLAN``); the patient writes their own
personal goals (``Action.WRITE_PERSONAL_GOAL``), see ``may_write_goal``. Enrolment: clinicians
enrol to the care teams they are members of, administrators to any team (``may_enrol``,
``may_enrol_to_team``). Escalations of unacknowledged flags go to the clinicians of the
patient's care teams only (``receives_escalations``). A flag of a patient the caller may not
see answers like a missing flag (``flag_not_found``).

The message thread (``Action.MESSAGE``, reading and writing alike) belongs to its participants:
the patient, a proxy whose grant has the ``message`` scope, and the care team. Operations
(admin) do not read the dialogue: it is a conversation about care, not data they need, so an
admin is refused (403) like any other actor who may see the patient but not do this.

A patient the actor has no relation to is reported exactly like a missing one (404). An actor
who may see the patient but not do this action gets 403.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from app.auth import repository
from app.auth.models import GrantBasis, GrantStatus, ProxyGrant, Role, Scope, User
from app.errors import AppError, NotFound
from app.patients.models import Patient
from rules.advice import PATIENT, PROXY, Audience


class Forbidden(AppError):
    """403: the actor may see the patient but not do this."""

    status, title = 403, "Forbidden"


class Action(StrEnum):
    """What an actor wants to do with a patient's data."""

    READ = "read"
    WRITE_READINGS = "write_readings"
    WRITE_PLAN = "write_plan"
    MANAGE_FLAGS = "manage_flags"
    READ_ACCESS_LOG = "read_access_log"
    SUBSCRIBE_ADVICE = "subscribe_advice"
    READ_GRANTS = "read_grants"  # who the patient's proxies are (a proxy: only their own grant)
    MANAGE_CONSENT = "manage_consent"  # invite, confirm, change and revoke proxies
    REGISTER_REPRESENTATIVE = "register_representative"  # a god man or förvaltare
    MESSAGE = "message"  # read and write the patient's message thread
    DECIDE_AGREEMENT = "decide_agreement"  # agree to or decline an agreement the team proposed
    WRITE_STORY = "write_story"  # "what matters to me" and questions for the next contact
    MANAGE_CALENDAR = "manage_calendar"  # make or end the patient's .ics calendar link
    DECIDE_TEAM_REQUEST = "decide_team_request"  # let another care team take part, or not
    WRITE_PERSONAL_GOAL = "write_personal_goal"  # a goal the patient set for themselves
    EXPORT_COPY = "export_copy"  # the patient's own copy of their data (the ZIP export)


class Relation(StrEnum):
    """How an actor comes to a patient's data; it decides which actions are allowed."""

    SELF = "self"
    PROXY = "proxy"
    CARE_TEAM = "care_team"
    ADMIN = "admin"


_ALLOWED: dict[Relation, frozenset[Action]] = {
    Relation.SELF: frozenset(
        {
            Action.READ,
            Action.WRITE_READINGS,
            Action.READ_ACCESS_LOG,
            Action.SUBSCRIBE_ADVICE,
            Action.READ_GRANTS,
            Action.MANAGE_CONSENT,
            Action.MESSAGE,
            Action.DECIDE_AGREEMENT,
            Action.WRITE_STORY,
            Action.MANAGE_CALENDAR,
            Action.DECIDE_TEAM_REQUEST,
            Action.WRITE_PERSONAL_GOAL,
            Action.EXPORT_COPY,
        }
    ),
    Relation.CARE_TEAM: frozenset(
        {
            Action.READ,
            Action.WRITE_READINGS,
            Action.WRITE_PLAN,
            Action.WRITE_PERSONAL_GOAL,
            Action.MANAGE_FLAGS,
            Action.READ_ACCESS_LOG,
            Action.READ_GRANTS,
            Action.REGISTER_REPRESENTATIVE,
            Action.MESSAGE,
        }
    ),
    Relation.ADMIN: frozenset({Action.READ, Action.READ_ACCESS_LOG, Action.READ_GRANTS}),
    # A proxy's actions come from the scopes of the grant, see _PROXY_SCOPE; any grant in
    # force lets its holder read that grant (and give it up, see grant_change_check).
    Relation.PROXY: frozenset(
        {
            Action.READ,
            Action.WRITE_READINGS,
            Action.SUBSCRIBE_ADVICE,
            Action.READ_GRANTS,
            Action.MESSAGE,
            Action.DECIDE_AGREEMENT,
            Action.WRITE_STORY,
            Action.DECIDE_TEAM_REQUEST,
            Action.EXPORT_COPY,
        }
    ),
}

_PROXY_SCOPE: dict[Action, Scope] = {
    Action.READ: Scope.READ,
    # The patient's copy is the patient's right; a proxy who may read may fetch it for them.
    Action.EXPORT_COPY: Scope.READ,
    Action.WRITE_READINGS: Scope.ENTER_READINGS,
    Action.SUBSCRIBE_ADVICE: Scope.RECEIVE_ADVICE,
    Action.MESSAGE: Scope.MESSAGE,
    # Taking part in the plan on the patient's behalf: deciding agreements and writing down
    # what matters to the patient are both the ``agree`` scope.
    Action.DECIDE_AGREEMENT: Scope.AGREE,
    Action.WRITE_STORY: Scope.AGREE,
    # Who else takes part in the patient's care is the patient's say: a proxy may decide only
    # with the scope that lets them agree on the patient's behalf.
    Action.DECIDE_TEAM_REQUEST: Scope.AGREE,
}


@dataclass(frozen=True)
class Actor:
    """The authenticated caller."""

    user: User
    care_unit_id: str | None = None  # from the token, when the issuer says where they work

    @property
    def id(self) -> str:
        """The caller's user id, as audit rows and authors record it."""
        return self.user.id

    @property
    def role(self) -> str:
        """The caller's role: patient, proxy, clinician or admin."""
        return self.user.role


@dataclass(frozen=True)
class Access:
    """A granted access: through which relation, and from which care unit."""

    actor: Actor
    patient: Patient
    relation: Relation
    scopes: frozenset[str]
    care_unit_id: str | None = None
    care_unit_name: str | None = None


def grant_is_active(grant: ProxyGrant, now: datetime) -> bool:
    """Whether a grant is in force at ``now`` (valid_to is exclusive)."""
    if grant.status != GrantStatus.ACTIVE or grant.valid_from > now:
        return False
    return grant.valid_to is None or now < grant.valid_to


def relation_to(session: Session, actor: Actor, patient: Patient, now: datetime) -> Access | None:
    """The actor's strongest relation to the patient, or None when there is none."""
    user = actor.user
    if not user.active:
        return None
    if patient.user_id == user.id:
        return Access(actor, patient, Relation.SELF, frozenset())
    if user.role == Role.CLINICIAN:
        units = repository.units_treating(session, user.id, patient.id)
        if not units:
            return None
        # Prefer the care unit the token names, when the clinician works in several.
        unit = next((u for u in units if u.id == actor.care_unit_id), units[0])
        return Access(actor, patient, Relation.CARE_TEAM, frozenset(), unit.id, unit.name)
    if user.role == Role.ADMIN:
        return Access(actor, patient, Relation.ADMIN, frozenset())
    grants = repository.grants_to(session, user.id, patient.id)
    scopes = frozenset(s for g in grants if grant_is_active(g, now) for s in g.scopes)
    if scopes:
        return Access(actor, patient, Relation.PROXY, scopes)
    return None


def reading_correction_check(access: Access) -> Callable[[str | None], None]:
    """Return the check that the caller may mark a reading (entered by someone) in error.

    The patient and the care team may correct any of the patient's readings. A proxy may
    correct only the readings they entered themselves: they know those were wrong, while a
    reading from the patient's own scale or from a home visit is not theirs to undo. A proxy
    who may read the record is told so (403); one who may not read it learns nothing (404).
    """

    def check(entered_by: str | None) -> None:
        if access.relation != Relation.PROXY or entered_by == access.actor.id:
            return
        if may(access, Action.READ):
            raise Forbidden("A proxy may only correct the readings they entered.")
        raise NotFound("No such patient.")  # what every read of this record answers them

    return check


def may(access: Access, action: Action) -> bool:
    """Whether a relation allows an action."""
    if action not in _ALLOWED[access.relation]:
        return False
    if access.relation == Relation.PROXY and action in _PROXY_SCOPE:
        return _PROXY_SCOPE[action] in access.scopes
    return True


def may_write_goal(access: Access, *, personal: bool) -> bool:
    """Whether the caller may write a goal: any with WRITE_PLAN, a personal one also as self."""
    return may(access, Action.WRITE_PERSONAL_GOAL if personal else Action.WRITE_PLAN)


def may_enrol(actor: Actor) -> bool:
    """Whether the caller enrols patients at all: clinicians and administrators do."""
    return actor.role in (Role.CLINICIAN, Role.ADMIN)


def may_enrol_to_team(actor: Actor, *, member: bool) -> bool:
    """Whether the caller may enrol to a team: an administrator any, a clinician their own."""
    return actor.role == Role.ADMIN or member


def receives_escalations(access: Access) -> bool:
    """Whether the caller is told of a patient's unacknowledged flags: their team's clinicians.

    A patient, a proxy or operations never receive escalations, whatever else they may do.
    """
    return access.relation == Relation.CARE_TEAM and access.actor.role == Role.CLINICIAN


def flag_not_found() -> NotFound:
    """The answer for a flag that is missing or of a patient the caller may not see (404)."""
    return NotFound("No such flag.")


class GrantChange(StrEnum):
    """What is done to an existing grant."""

    CONFIRM = "confirm"
    NARROW = "narrow"  # fewer scopes or an earlier end, nothing wider
    WIDEN = "widen"  # more scopes, a later end, or no end
    REVOKE = "revoke"


def visible_grant(access: Access, grant: ProxyGrant) -> bool:
    """Whether the caller may see this grant: a proxy sees only their own."""
    if grant.patient_id != access.patient.id:
        return False
    return access.relation != Relation.PROXY or grant.grantee_id == access.actor.id


def grant_change_check(access: Access, grant: ProxyGrant, change: GrantChange) -> None:
    """Refuse a change to a grant that the caller may not make.

    - The patient confirms, narrows, widens and revokes the grants they gave by consent.
    - A proxy may give up their own grant, or part of it, but never widen or extend it.
    - A legal representative (god man, förvaltare) is registered and ended by the care team,
      which answers for the court's decision; the patient sees it but cannot end it.
    A grant the caller may not see answers like a missing one.
    """
    if not visible_grant(access, grant):
        raise NotFound("No such grant.")
    representative = grant.basis == GrantBasis.LEGAL_REPRESENTATIVE
    if access.relation == Relation.SELF and not representative:
        return
    if (
        access.relation == Relation.CARE_TEAM
        and representative
        and change in (GrantChange.NARROW, GrantChange.REVOKE)
    ):
        return
    if access.relation == Relation.PROXY and change in (GrantChange.NARROW, GrantChange.REVOKE):
        return
    if access.relation == Relation.PROXY and change == GrantChange.WIDEN:
        raise Forbidden("A proxy can never widen or extend their own grant.")
    raise Forbidden("You may not change this grant.")


def advice_audience(access: Access) -> Audience:
    """Which variant of advice the caller reads: a proxy's (about the patient), else the patient's.

    The care team and operations read what the patient was told.
    """
    return PROXY if access.relation == Relation.PROXY else PATIENT


def authorize(
    session: Session, actor: Actor, patient_id: str, action: Action, now: datetime
) -> Access:
    """Decide one request on one patient; raise NotFound when the patient is not visible."""
    patient = session.get(Patient, patient_id) if _looks_like_id(patient_id) else None
    access = relation_to(session, actor, patient, now) if patient is not None else None
    if access is None:
        raise NotFound("No such patient.")
    if not may(access, action):
        # A proxy without the read scope may not even know the patient is there.
        if access.relation == Relation.PROXY and Scope.READ not in access.scopes:
            raise NotFound("No such patient.")
        raise Forbidden("You may not do this for this patient.")
    return access


def visible_patient_ids(session: Session, actor: Actor, now: datetime) -> list[str]:
    """Every patient the actor may read, for lists and worklists."""
    user = actor.user
    if not user.active:
        return []
    if user.role == Role.ADMIN:
        return repository.all_patient_ids(session)
    ids = repository.own_patient_ids(session, user.id)
    if user.role == Role.CLINICIAN:
        ids |= repository.team_patient_ids(session, user.id)
    grants = repository.active_grants_held(session, user.id)
    ids |= {g.patient_id for g in grants if grant_is_active(g, now) and Scope.READ in g.scopes}
    return sorted(ids)


def care_team_patient_ids(session: Session, actor: Actor) -> set[str]:
    """The patients the actor treats as a member of their care team (the care team's view).

    What only the care team sees (flag notes, unread counts of the thread) is shown for these.
    """
    user = actor.user
    if not user.active or user.role != Role.CLINICIAN:
        return set()
    return repository.team_patient_ids(session, user.id)


def message_patient_ids(session: Session, actor: Actor, now: datetime) -> set[str]:
    """The patients whose thread the actor writes on the patient side (self, proxy with message)."""
    user = actor.user
    if not user.active:
        return set()
    ids = repository.own_patient_ids(session, user.id)
    grants = repository.active_grants_held(session, user.id)
    ids |= {g.patient_id for g in grants if grant_is_active(g, now) and Scope.MESSAGE in g.scopes}
    return ids


def home_care_unit(session: Session, actor: Actor) -> tuple[str | None, str | None]:
    """The care unit a clinician acts from outside one patient's context (worklists).

    The unit the token names when the clinician belongs to it, else their first by name.
    """
    if actor.role != Role.CLINICIAN:
        return None, None
    units = repository.units_of(session, actor.id)
    if not units:
        return None, None
    unit = next((u for u in units if u.id == actor.care_unit_id), units[0])
    return unit.id, unit.name


def _looks_like_id(value: str) -> bool:
    return 0 < len(value) <= 36
