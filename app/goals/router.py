"""HTTP for goals, their progress and pictures (DESIGN §4.4)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.clock import utcnow
from app.deps import AcceptLanguage, ActorDep, GoalWriteDep, ReadAccess, SessionDep
from app.findings import service as findings_service
from app.goals import service as goals_service
from app.goals import views as goals_views
from app.goals.schemas import GoalIn, GoalListOut, GoalOut, GoalPatch, GoalProgressOut

router = APIRouter(prefix="/v1/patients/{pid}", tags=["goals"])

PNG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "A PNG image"}
}

From = Annotated[
    date | None, Query(alias="from", description="first local day (default: the start)")
]
To = Annotated[date | None, Query(description="last local day (default: today)")]


def png_headers(lang: str) -> dict[str, str]:
    """The headers of a PNG picture (a goal, a report): not stored, in the language drawn in."""
    return {
        "Cache-Control": "private, no-store",
        "Content-Language": lang,
        "Vary": "Accept-Language",
    }


@router.get(
    "/goals", response_model=GoalListOut, summary="The patient's goals with milestones and progress"
)
def list_goals(access: ReadAccess, session: SessionDep) -> dict[str, Any]:
    """Every goal of the patient, oldest first."""
    return {"items": goals_service.goals_with_milestones(session, access.patient.id)}


@router.post(
    "/goals",
    status_code=201,
    response_model=GoalOut,
    summary="Add a goal (care team; the patient: a personal goal)",
)
def create_goal(
    body: GoalIn, writes: GoalWriteDep, session: SessionDep, actor: ActorDep
) -> dict[str, Any]:
    """Store a goal with its milestones and agreements, and compute its progress."""
    access = writes.create(personal=body.personal)
    return goals_service.create_goal(
        session, patient=access.patient, body=body, author_id=actor.id, now=utcnow()
    )


@router.patch(
    "/goals/{goal_id}",
    response_model=GoalOut,
    summary="Change a goal (care team; the patient: a personal goal)",
)
def update_goal(
    goal_id: str, body: GoalPatch, writes: GoalWriteDep, session: SessionDep
) -> dict[str, Any]:
    """Change title, measure, target, dates, lifecycle, milestones or agreements."""
    access, goal = writes.change(goal_id)
    return goals_service.update_goal(
        session, patient=access.patient, goal=goal, body=body, now=utcnow()
    )


@router.get(
    "/goals/{goal_id}/progress",
    response_model=GoalProgressOut,
    summary="The goal's measure per day, with target and milestones",
)
def goal_progress(
    goal_id: str, access: ReadAccess, session: SessionDep, from_: From = None, to: To = None
) -> dict[str, Any]:
    """The series behind the chart: windowed and daily values, milestones, projection."""
    return goals_views.progress_series(
        session, patient=access.patient, goal_id=goal_id, first=from_, last=to, now=utcnow()
    )


@router.get(
    "/goals/{goal_id}/chart.png",
    response_class=Response,
    responses=PNG,
    summary="The goal drawn: measure, target, milestones, projection",
)
def goal_chart(
    goal_id: str,
    access: ReadAccess,
    session: SessionDep,
    from_: From = None,
    to: To = None,
    accept_language: AcceptLanguage = None,
) -> Response:
    """A PNG of the goal's progress (Accept-Language, else the patient's, else sv)."""
    lang = findings_service.pick_language(accept_language, access.patient.language)
    png = goals_views.goal_chart_png(
        session,
        patient=access.patient,
        goal_id=goal_id,
        first=from_,
        last=to,
        now=utcnow(),
        lang=lang,
    )
    return Response(png, media_type="image/png", headers=png_headers(lang))
