"""HTTP for the summary of a measurement type (DESIGN §4.4)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.clock import utcnow
from app.deps import ReadAccess, SessionDep
from app.summaries import service as summaries_service
from app.summaries.schemas import CgmSummaryOut, DailySummaryOut
from rules.catalogue import MeasurementType

router = APIRouter(prefix="/v1/patients/{pid}", tags=["goals"])


@router.get(
    "/summary",
    response_model=CgmSummaryOut | DailySummaryOut,
    response_model_exclude_unset=True,
    summary="CGM metrics and AGP profile, or a per-day summary of a type",
)
def summary(
    access: ReadAccess,
    session: SessionDep,
    type_: Annotated[MeasurementType, Query(alias="type")],
    days: Annotated[int, Query(ge=1, le=90)] = 14,
) -> dict[str, Any]:
    """For cgm_glucose the consensus metrics (DESIGN §4.4) and the hourly percentiles."""
    return summaries_service.summary(
        session, patient=access.patient, type_=type_, days=days, now=utcnow()
    )
