"""The messages page (``/mina/meddelanden``): the patient side's thread with the care team.

Over the dialogue service and the same policy and audit as ``/v1/patients/{pid}/messages``
(DESIGN §4.7): the patient, or a relative whose grant has ``message`` (anyone else: 404).
Opening the page opens the thread, as ``GET`` of the API does: the care team's messages are
marked read. The newest message is last, next to the form. A message is checked by the API's
own request model (``MessageIn``), and its refusal is said in plain words at the field.
Flag notes are the care team's and are never shown here (they are not messages).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.auth.policy import Access, Action, Actor
from app.clock import utcnow
from app.deps import SessionDep
from app.dialogue import service as dialogue_service
from app.dialogue.models import MAX_BODY, Side
from app.dialogue.schemas import MessageIn
from app.web import mina_words, texts
from app.web.mina import PersonActor, _base, _choices, _for, acting
from app.web.pages import CheckedForm, PageNotFound, WebSessionDep, lang_of, render, see_other

router = APIRouter(include_in_schema=False)

PAGE = "/mina/meddelanden"
THREAD_SHOWN = 100  # the latest messages, as the API's default


def _author(message: dict[str, Any], actor: Actor, lang: str) -> str:
    """Who wrote: "Du", or the name with the role and the care unit the team wrote from."""
    t = mina_words.for_lang(lang)
    author = message["author"] or {}
    if author.get("id") == actor.id:
        return t("message_from_you")
    parts = [author.get("display_name") or "?"]
    if author.get("role"):
        parts.append(texts.text(lang, f"role_{author['role']}"))
    if author.get("care_unit"):
        parts.append(str(author["care_unit"]))
    return ", ".join(parts)


def _page(
    request: Request,
    session: Session,
    access: Access,
    actor: Actor,
    *,
    body: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    lang = lang_of(request)
    messages, _ = dialogue_service.open_thread(session, access, limit=THREAD_SHOWN, now=utcnow())
    choices = _choices(session, actor)
    shown = [
        m | {"by": _author(m, actor, lang), "team": m["side"] == Side.CARE_TEAM}
        for m in dialogue_service.message_dicts(session, messages)
    ]
    context = _base(request, access, actor) | {
        "messages": shown,
        "body": body,
        "error": error,
        "max_body": MAX_BODY,
        "choices": choices,
        "current": access.patient.id,
    }
    return render(request, "mina_messages.html", context, status_code=status_code)


@router.get(PAGE)
def thread(request: Request, actor: PersonActor, session: SessionDep) -> Response:
    """The thread with the care team, newest last; the team's messages are now read."""
    access = acting(request, session, actor, Action.MESSAGE, f"GET {PAGE}")
    if access is None:
        return see_other("/mina")
    return _page(request, session, access, actor)


def _problem(body: str, lang: str) -> str | None:
    """The refusal of the API's request model, in plain words; None when the body is fine."""
    t = mina_words.for_lang(lang)
    if not body.strip():
        return t("message_empty")
    try:
        MessageIn(body=body)
    except ValidationError as exc:
        kind = exc.errors()[0]["type"]
        if kind == "string_too_short":
            return t("message_empty")
        if kind == "string_too_long":
            return t("message_too_long").format(n=texts.number(MAX_BODY, lang))
        return t("message_bad_chars")
    return None


@router.post(PAGE)
def write(
    form: CheckedForm,
    request: Request,
    actor: PersonActor,
    session: SessionDep,
    ws: WebSessionDep,
) -> Response:
    """Write to the care team; a refused message stays in the field with the reason."""
    lang = lang_of(request)
    access = acting(request, session, actor, Action.MESSAGE, f"POST {PAGE}")
    if access is None:
        raise PageNotFound("Choose whose data first.")
    body = form.get("body", "")
    problem = _problem(body, lang)
    if problem is not None:
        return _page(request, session, access, actor, body=body, error=problem, status_code=422)
    checked = MessageIn(body=body)
    dialogue_service.post_message(session, access, body=checked.body, now=utcnow())
    ws.set_flash(mina_words.mina_word(lang, "message_sent"))
    return see_other(f"{PAGE}{_for(access)}")
