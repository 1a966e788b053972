"""HTTP for the plan overview."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.clock import utcnow
from app.deps import AcceptLanguage, ReadAccess, SessionDep
from app.overview import service as overview_service
from app.overview.schemas import OverviewOut

router = APIRouter(tags=["plans"])


@router.get(
    "/v1/patients/{pid}/plan/overview",
    response_model=OverviewOut,
    summary="The shared plan in one answer: goals, agreements, activities, contact, story, advice",
)
def plan_overview(
    access: ReadAccess, session: SessionDep, accept_language: AcceptLanguage = None
) -> dict[str, Any]:
    """Everything the patient and the team agreed and follow, on one screen."""
    return overview_service.overview(session, access, lang=accept_language, now=utcnow())
