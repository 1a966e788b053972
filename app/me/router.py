"""HTTP for identity: who am I, my care teams."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.clock import utcnow
from app.deps import ActorDep, SessionDep
from app.enrolment import service as patients_service
from app.errors import ErrorItem, Unprocessable
from app.me.schemas import MeOut, MyTeamListOut, PreferencesIn

router = APIRouter(prefix="/v1", tags=["identity"])


@router.get(
    "/me",
    response_model=MeOut,
    response_model_exclude_unset=True,
    summary="The caller and the patients they may act for",
)
def me(actor: ActorDep, session: SessionDep) -> dict[str, Any]:
    """The caller, with each patient's relation (self, proxy, care_team) and scopes."""
    return patients_service.me(session, actor, utcnow())


@router.patch(
    "/me",
    response_model=MeOut,
    response_model_exclude_unset=True,
    summary="Change the caller's language, quiet hours and lock screen",
)
def update_me(body: PreferencesIn, actor: ActorDep, session: SessionDep) -> dict[str, Any]:
    """Language, quiet hours for routine pushes, lock screen; other fields are refused (422)."""
    changes = body.model_dump(include=body.model_fields_set)
    if "language" in changes and changes["language"] is None:
        raise Unprocessable(
            "language cannot be empty",
            errors=[ErrorItem(loc="language", code="invalid", message="sv or en")],
        )
    patients_service.update_preferences(actor.user, changes)
    return patients_service.me(session, actor, utcnow())


@router.get("/teams", response_model=MyTeamListOut, summary="The caller's care teams")
def teams(actor: ActorDep, session: SessionDep) -> dict[str, Any]:
    """The care teams the caller belongs to."""
    return {"items": patients_service.teams(session, actor)}
