"""What every page shares: templates, the signed-in user as an ``Actor``, CSRF, HTML errors.

A page's user becomes the same ``Actor`` as an API caller with a bearer token, so pages go
through the same policy (``authorize_audited``) and write the same audit rows as the API.
Refusals are raised as the API's errors (subclasses here, so the answer is a page, not JSON):
``get_session`` then rolls the request back and logs a refusal on patient data, exactly as
for the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.auth.models import Role, User
from app.auth.policy import Actor, Forbidden
from app.deps import SessionDep
from app.errors import Conflict, NotFound
from app.web import texts
from app.web.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    LANGUAGES,
    WebSession,
    csrf_token,
    csrf_valid,
)
from rules.catalogue import display_unit

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
MAX_FORM_BYTES = 64 * 1024  # a note is at most 2,000 characters: no page sends more

templates = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class PageNotFound(NotFound):
    """A 404 answered with a page."""


class PageForbidden(Forbidden):
    """A 403 answered with a page (a refused form: no or a wrong CSRF token)."""


class PageConflict(Conflict):
    """A 409 answered with a page."""


class LoginRequired(Exception):
    """No signed-in user: the browser goes to the login page (nothing was done)."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def web_session(request: Request) -> WebSession:
    """The request's page session (set by ``WebSessionMiddleware``)."""
    ws: WebSession = request.state.web_session
    return ws


WebSessionDep = Annotated[WebSession, Depends(web_session)]


def lang_of(request: Request) -> str:
    """The page language: ``?lang=`` (remembered in the session), else the session's."""
    ws = web_session(request)
    asked = request.query_params.get("lang")
    if asked in LANGUAGES and asked != ws.lang:
        ws.lang = asked
        ws.changed = True
    return ws.lang


def _key(request: Request) -> bytes:
    key: bytes = request.app.state.web_session_key
    return key


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """A page from its template, with what the layout needs (language, user, CSRF token)."""
    ws = web_session(request)
    lang = lang_of(request)
    user: User | None = context.get("user")
    base = {
        "lang": lang,
        "t": lambda key: texts.text(lang, key),
        "time": lambda value: texts.local_time(value, lang),
        "num": lambda value: texts.number(value, lang),
        "shown": lambda value: texts.shown(value, lang),
        "reading_type": lambda value: texts.reading_type(value, lang),
        "unit": lambda value: display_unit(value) if value else "",  # mm[Hg] as mmHg
        "csrf_token": csrf_token(_key(request), ws.sid),
        "csrf_field": CSRF_FIELD,
        "path": request.url.path,
        "for_query": "",  # a relative's pages: whose data (``?for=``), kept by every link
        "mina": False,  # the patient's pages: the app's manifest, script and offline queue
        "flash": ws.pop_flash(),
        "user": user,
        "role_text": texts.text(lang, f"role_{user.role}") if user is not None else "",
    }
    html = templates.get_template(name).render({**base, **context})
    return HTMLResponse(html, status_code=status_code)


def signed_in_user(request: Request, session: SessionDep) -> User | None:
    """The session's user, when signed in and still active."""
    ws = web_session(request)
    if not ws.signed_in or ws.user_id is None:
        return None
    user = session.get(User, ws.user_id)
    return user if user is not None and user.active else None


def page_actor(request: Request, session: SessionDep) -> Actor:
    """The signed-in clinician as an ``Actor``; anyone else is sent to log in, or refused."""
    user = signed_in_user(request, session)
    if user is None:
        raise LoginRequired(request.url.path)
    if user.role != Role.CLINICIAN:
        raise PageForbidden(texts.text(web_session(request).lang, "clinicians_only"))
    return Actor(user=user)


PageActor = Annotated[Actor, Depends(page_actor)]


async def checked_form(request: Request) -> dict[str, str]:
    """The posted form, once its CSRF token is this session's; else 403 and nothing is done."""
    ws = web_session(request)
    body = await request.body()
    form: dict[str, str] = {}
    if len(body) <= MAX_FORM_BYTES and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            form = {}
    token = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not csrf_valid(_key(request), ws, token):
        raise PageForbidden("The form's CSRF token is missing, old or not this session's.")
    return form


CheckedForm = Annotated[dict[str, str], Depends(checked_form)]


async def csrf_checked(request: Request) -> bytes:
    """The raw body of a script's request, once its ``X-CSRF-Token`` is this session's."""
    if not csrf_valid(_key(request), web_session(request), request.headers.get(CSRF_HEADER)):
        raise PageForbidden("The request's CSRF token is missing, old or not this session's.")
    return await request.body()


def see_other(url: str) -> RedirectResponse:
    """Redirect after a form (POST, then GET)."""
    return RedirectResponse(url, status_code=303)
