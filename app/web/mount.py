"""Mount the pages on the app: their routes, the session middleware and the HTML error answers.

Kept apart from ``pages`` (what every page uses), which the page routers import.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request, Response

from app.config import Settings
from app.errors import AppError
from app.web import (
    care,
    cgm_page,
    goals_page,
    login,
    mina,
    mina_goals,
    mina_messages,
    mina_proxies,
    mina_push,
    mina_settings,
    mina_values,
    mina_words,
    oidc,
    patients,
    plan_editor,
    texts,
)
from app.web.pages import (
    LoginRequired,
    PageConflict,
    PageForbidden,
    PageNotFound,
    render,
    see_other,
    web_session,
)
from app.web.sessions import WebSessionMiddleware, ended_in, session_key


def _error_page(request: Request, exc: AppError, title_key: str, body_key: str | None) -> Response:
    lang = web_session(request).lang
    body = texts.text(lang, body_key) if body_key else exc.detail
    context = {"title": texts.text(lang, title_key), "message": body, "user": None}
    return render(request, "error.html", context, status_code=exc.status)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the pages to the app: their routes, the session cookie and the HTML error answers."""
    app.state.web_session_key = session_key(settings)
    # Added as the app's own routes (not an included router), so that every listing of the
    # app's routes (the AT-01 access matrix) sees the pages, as it sees /docs.
    for router in (
        login.router, oidc.router, care.router, patients.router, plan_editor.router,
        goals_page.router, cgm_page.router, mina.router, mina_proxies.router,
        mina_messages.router, mina_settings.router, mina_push.router, mina_values.router,
        mina_goals.router,
    ):  # fmt: skip
        app.router.routes.extend(router.routes)
    # Logout is recorded in the database, so every process refuses an ended session's cookie.
    ended = ended_in(app.state.sessionmaker)
    app.add_middleware(WebSessionMiddleware, settings=settings, ended=ended)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        target = f"/login?next={quote(exc.next_path)}"
        ws = web_session(request)
        if ws.state == "expired":
            ws.set_flash(texts.text(ws.lang, "login_expired"))
        if request.headers.get("hx-request"):
            # htmx follows no redirect of a fragment request: it reloads the page there.
            return Response(status_code=204, headers={"HX-Redirect": target})
        if request.method != "GET":
            return _error_page(request, PageForbidden(), "forbidden_title", "forbidden")
        return see_other(target)

    @app.exception_handler(PageNotFound)
    async def _not_found(request: Request, exc: PageNotFound) -> Response:
        return _error_page(request, exc, "not_found_title", "not_found")

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, exc: PageForbidden) -> Response:
        lang = web_session(request).lang
        # Whose pages these are is said as it is; any other refusal in general words.
        wrong_pages = exc.detail in (
            texts.text(lang, "clinicians_only"),
            mina_words.mina_word(lang, "patients_only"),
        )
        return _error_page(request, exc, "forbidden_title", None if wrong_pages else "forbidden")

    @app.exception_handler(PageConflict)
    async def _conflict(request: Request, exc: PageConflict) -> Response:
        return _error_page(request, exc, "conflict_title", None)
