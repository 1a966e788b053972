"""The patient's goals (``/mina/mal``): progress and milestones, and deciding a proposed goal.

The goals are the API's (``goals_service.goals_with_milestones``) in the care team's view
(``goals_page.goal_view``: the same progress numbers, nothing recomputed), said in plain words.
A goal the team proposed is agreed to (it becomes active) or declined (it is cancelled) with
a form; ``GET /v1/patients/{pid}/goals`` then shows its new lifecycle. Seeing needs ``read``;
deciding is the ``agree`` scope for a relative (``decide_agreement``, as for the plan's
agreements); without it the form is not shown and a post answers 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.auth.policy import Action, may
from app.clock import utcnow
from app.deps import SessionDep
from app.errors import Conflict, NotFound
from app.goals import service as goals_service
from app.web import goals_page, mina, mina_words
from app.web.pages import (
    CheckedForm,
    PageConflict,
    PageNotFound,
    WebSessionDep,
    lang_of,
    render,
    see_other,
)

router = APIRouter(include_in_schema=False)

DECISIONS = ("agreed", "declined")


@router.get("/mina/mal")
def goals(request: Request, actor: mina.PersonActor, session: SessionDep) -> Response:
    """The goals with progress and milestones; a proposed one with agree and decline."""
    access = mina.acting(request, session, actor, Action.READ, "GET /mina/mal")
    if access is None:
        return see_other("/mina")
    lang = lang_of(request)
    t = mina_words.for_lang(lang)
    views = goals_page.goal_views(session, access.patient.id, lang, t)
    context = mina._base(request, access, actor) | {
        "goals": [v for v in views if v["lifecycle"] != "cancelled"],
        "declined": [v for v in views if v["lifecycle"] == "cancelled"],
        "may_decide": may(access, Action.DECIDE_AGREEMENT),
    }
    return render(request, "mina_goals.html", context)


@router.post("/mina/mal/{goal_id}/beslut")
def decide(
    goal_id: str,
    form: CheckedForm,
    request: Request,
    actor: mina.PersonActor,
    session: SessionDep,
    ws: WebSessionDep,
) -> Response:
    """Agree to or decline a goal the team proposed (a relative: with the agree scope)."""
    access = mina.acting(
        request, session, actor, Action.DECIDE_AGREEMENT, "POST /mina/mal/{goal_id}/beslut"
    )
    if access is None:
        return see_other("/mina")
    decision = form.get("decision", "")
    if decision not in DECISIONS:
        raise PageNotFound("No such decision.")
    try:
        goal = goals_service.decide_goal(
            session, patient=access.patient, goal_id=goal_id, decision=decision, now=utcnow()
        )
    except NotFound as exc:
        raise PageNotFound("No such goal.") from exc
    except Conflict as exc:
        raise PageConflict(mina_words.mina_word(lang_of(request), "goal_not_proposed")) from exc
    t = mina_words.for_lang(lang_of(request))
    ws.set_flash(t(f"goal_{decision}").format(title=goal["title"]))
    return see_other(f"/mina/mal{mina._for(access)}")
