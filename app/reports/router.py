"""HTTP for the weekly report, as data and drawn (DESIGN §4.4)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.clock import utcnow
from app.deps import AcceptLanguage, ReadAccess, SessionDep
from app.findings import service as findings_service
from app.goals.router import PNG, png_headers
from app.reports import service as reports_service
from app.reports.schemas import WeeklyReportOut

router = APIRouter(prefix="/v1/patients/{pid}", tags=["goals"])

Week = Annotated[
    str | None,
    Query(
        pattern=r"^\d{4}-W\d{2}$",
        description="ISO week, e.g. 2026-W47 (default: the last complete week)",
    ),
]


@router.get(
    "/report",
    response_model=WeeklyReportOut,
    summary="The weekly report: goals, and the CGM picture",
)
def weekly_report(access: ReadAccess, session: SessionDep, week: Week = None) -> dict[str, Any]:
    """Each goal as of the week's end, the week's series, CGM metrics and AGP."""
    return reports_service.weekly_report(session, patient=access.patient, week=week, now=utcnow())


@router.get(
    "/report.png",
    response_class=Response,
    responses=PNG,
    summary="The weekly report drawn",
)
def weekly_report_png(
    access: ReadAccess,
    session: SessionDep,
    week: Week = None,
    accept_language: AcceptLanguage = None,
) -> Response:
    """A PNG: a panel per goal; for CGM the percentile profile and time in ranges."""
    lang = findings_service.pick_language(accept_language, access.patient.language)
    png = reports_service.weekly_report_png(
        session,
        patient=access.patient,
        week=week,
        now=utcnow(),
        lang=lang,
    )
    return Response(png, media_type="image/png", headers=png_headers(lang))
