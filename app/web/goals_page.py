"""A patient's goals for the care team: target, status, progress, milestones and who proposed it.

Built from the same service call as ``GET /v1/patients/{pid}/goals``
(``goals_service.goals_with_milestones``), through the same policy, audited as a read of the
patient (the page's route as the resource). The progress is the API's: its percent is shown
whole ("62 % av målet") and drawn as a bar; nothing is recomputed here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.auth import people
from app.auth.policy import Action
from app.deps import SessionDep
from app.goals import service as goals_service
from app.web import charts_svg, texts, timeline, words
from app.web.pages import PageActor, lang_of, render
from app.web.patients import authorised_patient
from rules.catalogue import unit_text

router = APIRouter(include_in_schema=False)


def whole(value: float | None) -> int | None:
    """A percent as a whole number, half up (62.5 → 63)."""
    if value is None:
        return None
    return int(Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _values(value: Any, type_: str, lang: str) -> str:
    """A target or measured value: one number, or the components joined ("135/85")."""
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return "/".join(timeline.format_value(v, type_, lang) for v in value.values())
    return timeline.format_value(value, type_, lang)


def _unit(type_: str, unit: str | None, t: Callable[[str], str], lang: str) -> str:
    shown = unit_text(type_, unit or "", lang)
    return shown or (t("unit_steps") if type_ == "steps" else "")


def goal_view(goal: Mapping[str, Any], proposer: str, lang: str) -> dict[str, Any]:
    """What the page shows of one goal (the API's form), in words and formatted numbers."""
    t = words.for_lang(lang)
    measure, target = goal["measure"], goal["target"]
    type_ = str(measure["type"])
    unit = _unit(type_, target.get("unit"), t, lang)
    progress = goal.get("progress") or {}
    percent = progress.get("percent")
    op = f"{target['direction']}_{'inclusive' if target.get('inclusive', True) else 'strict'}"
    milestones = [
        {
            "id": m["id"],
            "title": m["title"],
            "target": f"{_values(m['target'].get('value'), type_, lang)} {unit}".strip(),
            "due": texts.local_date(m["due"], lang),
            "reached": m["achieved_at"] is not None,
            "achieved_at": texts.local_time(m["achieved_at"], lang),
            "percent": whole(m.get("percent")),
        }
        for m in goal["milestones"]
    ]
    return {
        "id": goal["id"],
        "title": goal["title"],
        "type": texts.reading_type(type_, lang),
        "measure": t(f"aggregate_{measure['aggregate']}").format(days=measure["window_days"]),
        "target": f"{t('target_' + op)} {_values(target['value'], type_, lang)} {unit}".strip(),
        "lifecycle": goal["lifecycle"],
        "lifecycle_text": t(f"lifecycle_{goal['lifecycle']}"),
        "status": progress.get("status"),
        "status_text": t(f"goal_status_{progress['status']}") if progress.get("status") else "",
        "percent": percent,
        "percent_whole": whole(percent),
        "bar": charts_svg.bar_width(percent),
        "baseline": _values(progress.get("baseline"), type_, lang),
        "baseline_date": texts.local_date(progress.get("baseline_date"), lang),
        "current": _values(progress.get("current"), type_, lang),
        "as_of": texts.local_date(progress.get("as_of"), lang),
        "projected": texts.local_date(progress.get("projected_date"), lang),
        "unit": unit,
        "start": texts.local_date(goal["start"], lang),
        "due": texts.local_date(goal["due"], lang),
        "proposer": proposer,
        "personal": goal["personal"],
        "agreements": list(goal["agreements"]),
        "milestones": milestones,
        "reached": sum(1 for m in milestones if m["reached"]),
    }


def goal_views(
    session: Session, patient_id: str, lang: str, t: Callable[[str], str]
) -> list[dict[str, Any]]:
    """The patient's goals as the pages show them, each with who proposed it in words."""
    goals = goals_service.goals_with_milestones(session, patient_id)
    users = people.users_by_id(session, [g["created_by"] for g in goals])

    def proposer(goal: Mapping[str, Any]) -> str:
        found = people.person_of(goal["created_by"], None, users)
        if found is not None and found["display_name"]:
            return str(found["display_name"])
        return t("proposer_patient") if goal["personal"] else t("proposer_unknown")

    return [goal_view(g, proposer(g), lang) for g in goals]


@router.get("/vard/patients/{pid}/goals")
def goals_page(pid: str, request: Request, actor: PageActor, session: SessionDep) -> Response:
    """The patient's goals: target, lifecycle, progress, milestones and who proposed each."""
    access = authorised_patient(session, actor, pid, Action.READ, "GET /vard/patients/{pid}/goals")
    lang = lang_of(request)
    t = words.for_lang(lang)
    context = {
        "user": actor.user,
        "t": t,
        "patient": access.patient,
        "goals": goal_views(session, access.patient.id, lang, t),
    }
    return render(request, "goals.html", context)
