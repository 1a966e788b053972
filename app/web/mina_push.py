"""Push in the browser: the app's subscription, posted with the session cookie and CSRF header.

``POST /mina/push/subscriptions`` takes the browser's ``PushSubscription.toJSON()`` (and, for a
relative, ``patient_ids``: the people whose advice they want) and stores it through the same
service and the same policy as ``POST /v1/push/subscriptions``: each patient is authorised for
``subscribe_advice`` and audited, one the person may not get advice for answers 404.
``DELETE /mina/push/subscriptions/{id}`` turns push off for this browser (one's own only).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from app.auth.policy import Action
from app.clock import utcnow
from app.deps import SessionDep, SettingsDep
from app.errors import Unprocessable
from app.ingest import service as sync_service
from app.push import service as push_service
from app.push.schemas import SubscriptionIn
from app.web import mina
from app.web.pages import csrf_checked
from app.web.patients import authorised_patient

router = APIRouter(include_in_schema=False)

RESOURCE = "POST /mina/push/subscriptions"


@router.post("/mina/push/subscriptions")
def subscribe(
    actor: mina.PersonActor,
    session: SessionDep,
    settings: SettingsDep,
    body: Annotated[bytes, Depends(csrf_checked)],
) -> Response:
    """Store this browser's subscription (201 new, 200 the same endpoint again): ``{"id"}``."""
    try:
        parsed = SubscriptionIn.model_validate(sync_service.parse_json_body(body))
    except ValidationError as exc:
        errors = sync_service.validation_errors(exc)
        raise Unprocessable("The push subscription is not valid.", errors=errors) from exc
    patient_ids: list[str] = []
    for pid in dict.fromkeys(parsed.patient_ids):
        access = authorised_patient(session, actor, pid, Action.SUBSCRIBE_ADVICE, RESOURCE)
        if access.patient.id not in patient_ids:
            patient_ids.append(access.patient.id)
    row, created = push_service.subscribe(
        session, settings, owner=actor.user, body=parsed, patient_ids=patient_ids, now=utcnow()
    )
    return JSONResponse(jsonable_encoder({"id": row.id}), status_code=201 if created else 200)


@router.delete("/mina/push/subscriptions/{subscription_id}")
def unsubscribe(
    subscription_id: str,
    actor: mina.PersonActor,
    session: SessionDep,
    _: Annotated[bytes, Depends(csrf_checked)],
) -> Response:
    """Turn push off for this browser; another person's subscription answers 404."""
    push_service.unsubscribe(
        session, owner=actor.user, subscription_id=subscription_id, now=utcnow()
    )
    return Response(status_code=204)
