"""HTTP for the FHIR R4 export (``/fhir``) and the patient's own copy (``/export``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from app.bounds import BoundedTime
from app.clock import utcnow
from app.deps import AcceptLanguage, ExportCopyAccess, ReadAccess, SessionDep
from app.findings import service as findings_service
from app.interop import copy as copy_service
from app.interop import service as interop_service

FHIR_JSON = "application/fhir+json"

router = APIRouter(tags=["fhir"])


class FhirResponse(JSONResponse):
    """A FHIR JSON answer."""

    media_type = FHIR_JSON


BUNDLE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A FHIR R4 Bundle of type collection (http://hl7.org/fhir/R4/bundle.html).",
        "content": {
            FHIR_JSON: {
                "schema": {
                    "type": "object",
                    "required": ["resourceType", "type", "entry"],
                    "properties": {
                        "resourceType": {"type": "string", "enum": ["Bundle"]},
                        "type": {"type": "string", "enum": ["collection"]},
                        "link": {"type": "array", "items": {"type": "object"}},
                        "entry": {"type": "array", "items": {"type": "object"}},
                    },
                }
            }
        },
    }
}


@router.get(
    "/v1/patients/{pid}/fhir",
    response_class=FhirResponse,
    responses=BUNDLE,
    summary="The patient's data as a FHIR R4 Bundle, a page at a time",
)
def fhir_export(
    request: Request,
    access: ReadAccess,
    session: SessionDep,
    since: Annotated[
        BoundedTime | None,
        Query(description="only what was recorded or changed after this time (with offset)"),
    ] = None,
    count: Annotated[
        int,
        Query(
            alias="_count",
            ge=1,
            le=interop_service.MAX_COUNT,
            description="Observations per page",
        ),
    ] = interop_service.DEFAULT_COUNT,
    cursor: Annotated[
        str | None,
        Query(alias="_cursor", max_length=200, description="from the previous page's next link"),
    ] = None,
    accept_language: AcceptLanguage = None,
) -> FhirResponse:
    """Patient, Observations, Goals, CarePlans, Flags and advice; a ``next`` link while more."""
    lang = findings_service.pick_language(accept_language, access.patient.language)
    bundle = interop_service.export(
        session,
        access,
        since=since,
        count=count,
        cursor=cursor,
        lang=lang,
        base=f"{request.base_url}v1/fhir",
        self_url=str(request.url),
        next_url=lambda c: str(request.url.include_query_params(_cursor=c)),
        now=utcnow(),
    )
    return FhirResponse(bundle)


@router.get(
    "/v1/patients/{pid}/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "A ZIP: fhir-bundle.json, one CSV per measurement type, LASMIG.txt.",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    summary="The patient's own copy of their data: the FHIR Bundle and a CSV per type, zipped",
)
def patient_export(
    request: Request,
    access: ExportCopyAccess,
    session: SessionDep,
    accept_language: AcceptLanguage = None,
) -> StreamingResponse:
    """The patient (or a proxy who may read) downloads everything stored about the patient."""
    now = utcnow()
    lang = findings_service.pick_language(accept_language, access.patient.language)
    archive = copy_service.patient_copy(
        session, access, lang=lang, base=f"{request.base_url}v1/fhir", now=now
    )
    name = f"egenvard-{now.date().isoformat()}.zip"
    return StreamingResponse(
        copy_service.chunks(archive),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )
