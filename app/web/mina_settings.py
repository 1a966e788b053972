"""The person's settings (``/mina/installningar``): language, quiet hours, the lock screen.

The same preferences as ``PATCH /v1/me`` (validated by its ``PreferencesIn``, stored by the
same service call): the page language (the session's language follows at once), the quiet
hours in which routine pushes wait (urgent advice never waits), and what a push may show on a
locked screen: the neutral "Nytt råd från din vård" (the default) or the advice's title, never
a value (``app.push.service.advice_push_title``). The settings are the person's own, whoever
they act for. The page also turns push on for this browser (``app.web.mina_push``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from app.auth.models import Scope, User
from app.auth.policy import Actor, Relation
from app.clock import utcnow
from app.deps import SessionDep, SettingsDep
from app.enrolment import service as patients_service
from app.me.schemas import PreferencesIn
from app.push.vapid import vapid_key
from app.web import mina, mina_words
from app.web.pages import CheckedForm, WebSessionDep, lang_of, render, see_other

router = APIRouter(include_in_schema=False)

PATH = "/mina/installningar"


def _quiet(user: User, settings: SettingsDep) -> dict[str, str]:
    """The quiet hours in force: the user's own, else the service's default (or none)."""
    quiet = user.quiet_hours or settings.default_quiet_hours or {}
    return {"start": str(quiet.get("start", "")), "end": str(quiet.get("end", ""))}


def advice_for(session: SessionDep, actor: Actor) -> list[str]:
    """The people a relative may be told of advice about (their own advice needs no id)."""
    return [
        str(c["id"])
        for c in patients_service.me(session, actor, utcnow())["patients"]
        if c["relation"] == Relation.PROXY and Scope.RECEIVE_ADVICE in c["scopes"]
    ]


def _page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    actor: Actor,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    lang = lang_of(request)
    user = actor.user
    quiet = _quiet(user, settings)
    shown = values or {
        "language": user.language if user.language in ("sv", "en") else "sv",
        "quiet_start": quiet["start"],
        "quiet_end": quiet["end"],
        "lock_screen": user.lock_screen or "neutral",
    }
    context: dict[str, Any] = {
        "user": user,
        "t": mina_words.for_lang(lang),
        "mina": True,
        "values": shown,
        "errors": errors or {},
        "vapid_key": vapid_key(settings).public_key,
        "push_patients": ",".join(advice_for(session, actor)),
    }
    return render(request, "mina_settings.html", context, status_code=status_code)


@router.get(PATH)
def settings_page(
    request: Request, actor: mina.PersonActor, session: SessionDep, settings: SettingsDep
) -> Response:
    """Language, quiet hours, what the lock screen shows, and turning push on."""
    return _page(request, session, settings, actor)


@router.post(PATH)
def save_settings(
    form: CheckedForm,
    request: Request,
    actor: mina.PersonActor,
    session: SessionDep,
    settings: SettingsDep,
    ws: WebSessionDep,
) -> Response:
    """Save the preferences as ``PATCH /v1/me`` does; the pages switch language at once."""
    lang = lang_of(request)
    t = mina_words.for_lang(lang)
    values = {key: form.get(key, "").strip() for key in
              ("language", "quiet_start", "quiet_end", "lock_screen")}  # fmt: skip
    errors: dict[str, str] = {}
    if values["language"] not in ("sv", "en"):
        errors["language-sv"] = t("settings_error_language")
    if values["lock_screen"] not in ("neutral", "title"):
        errors["lock-neutral"] = t("settings_error_lock")
    quiet: dict[str, str] | None = None
    if values["quiet_start"] or values["quiet_end"]:
        quiet = {"start": values["quiet_start"], "end": values["quiet_end"]}
    changes: dict[str, Any] = {"quiet_hours": quiet}
    if not errors:
        changes |= {"language": values["language"], "lock_screen": values["lock_screen"]}
    try:
        body = PreferencesIn.model_validate(changes)
    except ValidationError as exc:
        for problem in exc.errors():
            loc = [str(part) for part in problem["loc"]]
            if "end" in loc:
                errors["quiet_end"] = t("settings_error_time")
            else:
                errors.setdefault("quiet_start", t("settings_error_time"))
        body = None
    if errors or body is None:
        return _page(request, session, settings, actor, values, errors, status_code=422)
    patients_service.update_preferences(actor.user, body.model_dump(include=body.model_fields_set))
    ws.lang = actor.user.language
    ws.changed = True
    ws.set_flash(mina_words.mina_word(actor.user.language, "settings_saved"))
    return see_other(PATH)
