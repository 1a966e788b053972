"""The login page: in development, pick one of the seeded people; logout.

Production login is OpenID Connect (authorization code with PKCE) against the configured
issuer (``app.web.oidc``): the page offers its button when a client id is configured, and says
that login is not in operation otherwise.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import case

from app.auth import repository as auth_repository
from app.auth.models import Role, User
from app.auth.policy import Actor
from app.clock import utcnow
from app.deps import SessionDep, SettingsDep, audit_actor
from app.enrolment import service as patients_service
from app.web.pages import (
    CheckedForm,
    PageNotFound,
    WebSessionDep,
    render,
    see_other,
    signed_in_user,
)
from app.web.sessions import logout as end_session

router = APIRouter(include_in_schema=False)

_ROLE_ORDER = case(
    (User.role == Role.CLINICIAN, 0),
    (User.role == Role.PATIENT, 1),
    (User.role == Role.PROXY, 2),
    else_=3,
)


def safe_next(value: str | None) -> str | None:
    """A path on this site to go on to after login (never another site)."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return None


def start_page(user: User) -> str:
    """Where a user goes after login when no page was asked for."""
    return "/vard" if user.role == Role.CLINICIAN else "/mina"


@router.get("/login")
def login_page(
    request: Request, session: SessionDep, settings: SettingsDep, ws: WebSessionDep
) -> Response:
    """Who is signed in, or whom to sign in as (development), or how (production)."""
    return show_login(request, session, settings, ws)


def show_login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    ws: WebSessionDep,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    """The login page, with a message when a login failed (and the status code that says so)."""
    user = signed_in_user(request, session)
    people: list[User] = []
    if user is None and settings.dev_issuer_enabled:
        people = auth_repository.active_users(session, _ROLE_ORDER, User.display_name)
    context = {
        "user": user,
        "people": people,
        "dev": settings.dev_issuer_enabled,
        "oidc": settings.oidc_login_enabled,
        "next": safe_next(request.query_params.get("next")) or "",
        "expired": ws.state == "expired",
        "ended": request.query_params.get("ended") == "1" and user is None,
        "error": error,
    }
    return render(request, "login.html", context, status_code=status_code)


@router.post("/login")
def login(
    form: CheckedForm, request: Request, session: SessionDep, settings: SettingsDep,
    ws: WebSessionDep,
) -> Response:  # fmt: skip
    """Sign in as a seeded person (development issuer only); a new session id is issued."""
    if not settings.dev_issuer_enabled:
        raise PageNotFound("Development login is off.")
    user = patients_service.user_by_handle(session, form.get("handle", ""))
    if user is None or not user.active:
        raise PageNotFound("No such person.")
    ws.sign_in(user.id, utcnow().timestamp())
    audit_actor(session, Actor(user=user), "session", "login", "POST /login")
    return see_other(safe_next(form.get("next")) or start_page(user))


@router.post("/logout")
def logout(
    form: CheckedForm, request: Request, session: SessionDep, settings: SettingsDep,
    ws: WebSessionDep,
) -> Response:  # fmt: skip
    """End the session (a copy of its cookie is refused from now on)."""
    user = signed_in_user(request, session)
    if user is not None:
        audit_actor(session, Actor(user=user), "session", "logout", "POST /logout")
    end_session(ws, session, settings, utcnow().timestamp())
    return see_other("/login?ended=1")
