"""HTTP for plans and the rule library."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.clock import utcnow
from app.deps import (
    ActorDep,
    AgreementDecisionAccess,
    PlanWriteAccess,
    ReadAccess,
    SessionDep,
    StoryWriteAccess,
)
from app.errors import NotFound
from app.plans import agreements, contact, story
from app.plans import repository as plans_repository
from app.plans import service as plans_service
from app.plans.schemas import (
    AgreementOut,
    BacktestOut,
    CareContactIn,
    CareContactOut,
    DecisionIn,
    PlanOut,
    PlanVersionsOut,
    RuleListOut,
    RuleOut,
    StatusIn,
    StoryIn,
    StoryOut,
    StoryVersionsOut,
)
from rules.language import load_library
from rules.plan import PlanBody

router = APIRouter(tags=["plans"])


@router.get(
    "/v1/patients/{pid}/plan",
    response_model=PlanOut,
    response_model_exclude_unset=True,
    summary="The current plan version",
)
def get_plan(access: ReadAccess, session: SessionDep) -> dict[str, Any]:
    """The patient's current plan."""
    row = plans_service.get_current(session, access.patient.id)
    return plans_service.to_dicts(session, [row])[0]


@router.put(
    "/v1/patients/{pid}/plan",
    response_model=PlanOut,
    response_model_exclude_unset=True,
    summary="Save a new plan version (care team)",
)
def put_plan(body: PlanBody, access: PlanWriteAccess, session: SessionDep) -> dict[str, Any]:
    """Validate the plan against the rule library and store it as a new version."""
    row = plans_service.save(
        session, patient=access.patient, body=body, author_id=access.actor.id, now=utcnow()
    )
    return plans_service.to_dicts(session, [row])[0]


@router.get(
    "/v1/patients/{pid}/plan/versions",
    response_model=PlanVersionsOut,
    response_model_exclude_unset=True,
    summary="Every version of the plan",
)
def plan_versions(access: ReadAccess, session: SessionDep) -> dict[str, Any]:
    """The plan's versions, newest first."""
    versions = plans_service.versions(session, access.patient.id)
    return {"items": plans_service.to_dicts(session, versions)}


@router.get(
    "/v1/patients/{pid}/plan/backtest",
    response_model=BacktestOut,
    summary="The current plan's alert burden",
)
def backtest_current(
    access: ReadAccess,
    session: SessionDep,
    days: Annotated[int, Query(ge=1, le=365)] = 90,
) -> dict[str, Any]:
    """Firings, advice and flag episodes per rule and per week over the last ``days``."""
    return plans_service.backtest(
        session,
        patient_id=access.patient.id,
        timezone=access.patient.timezone,
        proposed=None,
        days=days,
        now=utcnow(),
    )


@router.post(
    "/v1/patients/{pid}/plan/backtest",
    response_model=BacktestOut,
    summary="A proposed plan's alert burden",
)
def backtest_proposed(
    body: PlanBody,
    access: PlanWriteAccess,
    session: SessionDep,
    days: Annotated[int, Query(ge=1, le=365)] = 90,
) -> dict[str, Any]:
    """What a proposed plan would have done over the last ``days``, before saving it."""
    return plans_service.backtest(
        session,
        patient_id=access.patient.id,
        timezone=access.patient.timezone,
        proposed=body,
        days=days,
        now=utcnow(),
    )


def _rule_dict(rule_id: str) -> dict[str, Any]:
    rule = load_library().get(rule_id)
    if rule is None:
        raise NotFound("No such rule.")
    return rule.model_dump(mode="json")


@router.get("/v1/rules", response_model=RuleListOut, summary="The rule library")
def list_rules(actor: ActorDep) -> dict[str, Any]:
    """Every rule of the library, with sources, parameters and texts."""
    return {"items": [r.model_dump(mode="json") for r in load_library().rules]}


@router.get("/v1/rules/{rule_id}", response_model=RuleOut, summary="One rule of the library")
def get_rule(rule_id: str, actor: ActorDep) -> dict[str, Any]:
    """One rule."""
    return _rule_dict(rule_id)


@router.post(
    "/v1/patients/{pid}/plan/agreements/{aid}/decision",
    response_model=AgreementOut,
    summary="Agree to or decline a proposed agreement (the patient, or a proxy with agree)",
)
def decide_agreement(
    aid: str, body: DecisionIn, access: AgreementDecisionAccess, session: SessionDep
) -> dict[str, Any]:
    """Record the decision as its own record; the plan version is not changed."""
    return agreements.change(
        session, access, aid, status=body.decision, comment=body.comment, now=utcnow()
    )


@router.post(
    "/v1/patients/{pid}/plan/agreements/{aid}/status",
    response_model=AgreementOut,
    summary="Pause, resume or mark an agreement done (care team)",
)
def agreement_status(
    aid: str, body: StatusIn, access: PlanWriteAccess, session: SessionDep
) -> dict[str, Any]:
    """Record the team's status change of an agreement of the current plan."""
    return agreements.change(
        session, access, aid, status=body.status, comment=body.comment, now=utcnow()
    )


@router.get(
    "/v1/patients/{pid}/care-contact",
    response_model=CareContactOut,
    summary="The patient's named care contact (fast vårdkontakt)",
)
def get_care_contact(access: ReadAccess, session: SessionDep) -> dict[str, Any]:
    """Who the patient calls, with team, phone and hours; 404 until the team names one."""
    found = contact.contact_dict(
        session, plans_repository.current_contact(session, access.patient.id)
    )
    if found is None:
        raise NotFound("The patient has no named care contact yet.")
    return found


@router.put(
    "/v1/patients/{pid}/care-contact",
    response_model=CareContactOut,
    summary="Name the patient's care contact (care team)",
)
def put_care_contact(
    body: CareContactIn, access: PlanWriteAccess, session: SessionDep
) -> dict[str, Any]:
    """Set the care contact: a clinician of one of the patient's teams; the newest counts."""
    record = contact.set_contact(
        session,
        access.patient.id,
        set_by=access.actor.id,
        clinician_id=body.clinician_id,
        team_id=body.team_id,
        phone=body.phone,
        hours=body.hours,
        now=utcnow(),
    )
    return contact.contact_dict(session, record) or {}


@router.get(
    "/v1/patients/{pid}/story",
    response_model=StoryOut,
    summary="What matters to the patient, and questions for the next contact",
)
def get_story(access: ReadAccess, session: SessionDep) -> dict[str, Any]:
    """The newest version of the patient's story (version 0 when nothing is written)."""
    row = plans_repository.current_story(session, access.patient.id)
    return story.story_dicts(session, [row])[0] if row is not None else story.empty()


@router.put(
    "/v1/patients/{pid}/story",
    response_model=StoryOut,
    summary="Write what matters to the patient (the patient, or a proxy with agree)",
)
def put_story(body: StoryIn, access: StoryWriteAccess, session: SessionDep) -> dict[str, Any]:
    """Save a new version of the story; earlier versions stay."""
    row = story.write(
        session, access, what_matters=body.what_matters, questions=body.questions, now=utcnow()
    )
    return story.story_dicts(session, [row])[0]


@router.get(
    "/v1/patients/{pid}/story/versions",
    response_model=StoryVersionsOut,
    summary="Every version of the patient's story, newest first",
)
def story_versions(access: ReadAccess, session: SessionDep) -> dict[str, Any]:
    """The story's history."""
    return {
        "items": story.story_dicts(
            session, plans_repository.story_versions(session, access.patient.id)
        )
    }
