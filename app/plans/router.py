"""HTTP for plans and the rule library."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.clock import utcnow
from app.deps import ActorDep, PlanWriteAccess, ReadAccess, SessionDep
from app.errors import NotFound
from app.plans import service as plans_service
from rules.language import load_library
from rules.plan import PlanBody

router = APIRouter(tags=["plans"])


@router.get("/v1/patients/{pid}/plan", summary="The current plan version")
def get_plan(access: ReadAccess, session: SessionDep) -> dict[str, Any]:
    """The patient's current plan."""
    return plans_service.to_dict(plans_service.get_current(session, access.patient.id))


@router.put("/v1/patients/{pid}/plan", summary="Save a new plan version (care team)")
def put_plan(body: PlanBody, access: PlanWriteAccess, session: SessionDep) -> dict[str, Any]:
    """Validate the plan against the rule library and store it as a new version."""
    row = plans_service.save(
        session, patient_id=access.patient.id, body=body, author_id=access.actor.id, now=utcnow()
    )
    return plans_service.to_dict(row)


@router.get("/v1/patients/{pid}/plan/versions", summary="Every version of the plan")
def plan_versions(access: ReadAccess, session: SessionDep) -> dict[str, Any]:
    """The plan's versions, newest first."""
    return {
        "items": [
            plans_service.to_dict(v) for v in plans_service.versions(session, access.patient.id)
        ]
    }


@router.get("/v1/patients/{pid}/plan/backtest", summary="The current plan's alert burden")
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


@router.post("/v1/patients/{pid}/plan/backtest", summary="A proposed plan's alert burden")
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


@router.get("/v1/rules", summary="The rule library")
def list_rules(actor: ActorDep) -> dict[str, Any]:
    """Every rule of the library, with sources, parameters and texts."""
    return {"items": [r.model_dump(mode="json") for r in load_library().rules]}


@router.get("/v1/rules/{rule_id}", summary="One rule of the library")
def get_rule(rule_id: str, actor: ActorDep) -> dict[str, Any]:
    """One rule."""
    return _rule_dict(rule_id)
