"""The FastAPI application: routers, problem+json errors, limits, security headers, health."""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from app import openapi
from app.activities.router import router as activities_router
from app.audit import service as audit
from app.audit.router import router as audit_router
from app.auth.issuer import SigningKeys
from app.config import Settings, get_settings
from app.consent.router import router as consent_router
from app.cors import ApiCorsMiddleware
from app.db import is_sqlite, make_engine, make_sessionmaker, unavailable_reason
from app.dialogue.router import router as dialogue_router
from app.directory.router import router as directory_router
from app.enrolment.router import router as patients_router
from app.errors import PROBLEM_JSON, AppError, ErrorItem
from app.findings.router import router as findings_router
from app.goals.router import router as goals_router
from app.headers import SecurityHeadersMiddleware
from app.ingest.router import router as readings_router
from app.interop.router import router as fhir_router
from app.limits import InFlightLimitMiddleware, RequestIntakeMiddleware
from app.me.router import router as identity_router
from app.metrics import MetricsMiddleware
from app.overview.router import router as overview_router
from app.plans.router import router as plans_router
from app.probing import ProbingLimits
from app.push.router import router as push_router
from app.readings.ratelimit import OwnPatients, RateLimiter
from app.reports.router import router as reports_router
from app.scheduler import lifespan as scheduler_lifespan
from app.scrape import metrics_endpoint
from app.summaries.router import router as summaries_router
from app.web import docs
from app.web import mount as web_pages

log = logging.getLogger("selfcare")


def _problem(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": f"https://egenvard.example/problems/{status}",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }


class Service(FastAPI):
    """The FastAPI app with the security headers outside everything, 500 answers included."""

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack (its error middleware outermost), wrapped in the headers."""
        settings: Settings = self.state.settings
        # Outside in: security headers on every answer, CORS preflights before anything
        # authenticates, then every request counted and timed (app/metrics.py).
        return SecurityHeadersMiddleware(
            ApiCorsMiddleware(
                MetricsMiddleware(super().build_middleware_stack()), settings.cors_origins
            ),
            hsts_max_age=settings.hsts_max_age_seconds,
            docs_path=docs.DOCS_PATH if settings.docs_on else None,
        )


class HealthOut(BaseModel):
    """The health answer when the database accepts writes."""

    status: Literal["ok"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for the given settings (default: from the environment)."""
    settings = settings or get_settings()
    engine = make_engine(
        settings.effective_database_url,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )
    app = Service(
        title="Egenvård sync",
        version="1.0.0",
        description="Home measurements checked against the patient's self-care plan: advice "
        "to the patient, flags to the care team.",
        lifespan=scheduler_lifespan,  # the scheduled jobs, when settings.scheduler_enabled
        # /docs is ours (app/web/docs.py: local assets, off in production); no ReDoc.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = audit.use_key(make_sessionmaker(engine), audit.audit_key(settings))
    # Buckets live in each process: with N processes each keeps 1/N of the limit.
    workers = settings.api_workers
    app.state.sync_limiter = RateLimiter(
        math.ceil(settings.sync_rate_per_minute / workers), math.ceil(settings.sync_burst / workers)
    )
    # The flood buckets' clock; a test replaces it to freeze time (refill never races a slow run).
    app.state.sync_clock = time.monotonic
    app.state.own_patients = OwnPatients(app.state.sync_limiter, lambda: app.state.sync_clock())
    app.state.probing = ProbingLimits.from_settings(settings)
    # The issuer's keys, fetched (OpenID Connect discovery) and cached per app.
    app.state.signing_keys = SigningKeys(settings)

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(
            exc.problem(), status_code=exc.status, media_type=PROBLEM_JSON, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            ErrorItem(
                loc=".".join(str(p) for p in e.get("loc", ())),
                code=e.get("type", "invalid"),
                message=e.get("msg", ""),
            ).model_dump()
            for e in exc.errors()
        ]
        body = _problem(422, "Unprocessable Content", "The request is not valid.", errors=errors)
        return JSONResponse(body, status_code=422, media_type=PROBLEM_JSON)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = _problem(exc.status_code, str(exc.detail), str(exc.detail))
        return JSONResponse(
            body,
            status_code=exc.status_code,
            media_type=PROBLEM_JSON,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(DBAPIError)
    async def _database_unavailable(request: Request, exc: DBAPIError) -> JSONResponse:
        reason = unavailable_reason(exc)
        if reason is None:
            return await _unexpected(request, exc)
        if reason == "busy":
            # SQLite's writer lock stayed taken past the busy timeout: nothing was saved, and
            # trying again shortly will work. Say so instead of failing.
            log.warning("database busy: %s", exc.orig)
            detail = "The database is busy; try again shortly."
        else:
            # Missing, read-only, unreachable: nothing was saved, and nothing is answered
            # from a request that could not be audited and committed.
            log.error("database unavailable: %s", exc.orig)
            detail = "The database is not available for writing; nothing was saved."
        body = _problem(503, "Service Unavailable", detail)
        return JSONResponse(
            body, status_code=503, media_type=PROBLEM_JSON, headers={"Retry-After": "1"}
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        body = _problem(500, "Internal Server Error", "Something went wrong; nothing was saved.")
        return JSONResponse(body, status_code=500, media_type=PROBLEM_JSON)

    @app.get(
        "/healthz",
        response_model=HealthOut,
        tags=["health"],
        summary="200 when the database accepts writes; 503 problem+json when it does not",
    )
    def healthz() -> Any:
        """Whether the database answers a write-path query (rolled back; changes nothing)."""
        # Every request writes an audit row under a lock on the chain's head: take that
        # path (a no-op update, rolled back). A read-only or missing database fails here.
        with engine.connect() as conn, conn.begin() as transaction:
            touched = conn.execute(
                text("UPDATE audit_head SET last_seq = last_seq WHERE id = 1")
            ).rowcount
            transaction.rollback()
        if touched != 1:
            log.error("healthz: the audit chain's head row is missing")
            body = _problem(
                503, "Service Unavailable", "The audit log cannot be written; nothing is served."
            )
            return JSONResponse(body, status_code=503, media_type=PROBLEM_JSON)
        return {"status": "ok"}

    for router in (
        identity_router,
        patients_router,
        readings_router,
        plans_router,
        findings_router,
        audit_router,
        push_router,
        goals_router,
        summaries_router,
        reports_router,
        consent_router,
        dialogue_router,
        overview_router,
        activities_router,
        directory_router,
        fhir_router,
    ):
        app.include_router(router)
    # The care team's pages (/login, /vard): cookie session and CSRF, never /v1 (app/web).
    web_pages.install(app, settings)
    if settings.metrics_enabled:
        app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    docs.mount(app, docs_enabled=settings.docs_on)
    openapi.install(app)
    # The last added runs first: the body is read (after a token check) before a slot is
    # taken, so a slow upload never holds one (app/limits.py).
    in_flight = settings.max_in_flight
    if is_sqlite(settings.effective_database_url):
        in_flight = min(in_flight, settings.sqlite_max_in_flight)
    app.add_middleware(InFlightLimitMiddleware, limit=in_flight)
    app.add_middleware(
        RequestIntakeMiddleware,
        settings=settings,
        probing=app.state.probing,
        signing_keys=app.state.signing_keys,
    )
    return app
