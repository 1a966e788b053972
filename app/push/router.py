"""HTTP for Web Push: the VAPID key, subscriptions, and a patient's delivery log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.auth.policy import Action
from app.clock import utcnow
from app.deps import (
    ActorDep,
    ReadAccess,
    SessionDep,
    SettingsDep,
    audit_access,
    authorize_audited,
)
from app.push import service as push_service
from app.push.schemas import (
    NotificationListOut,
    SubscriptionCreatedOut,
    SubscriptionIn,
    VapidPublicKeyOut,
)
from app.push.vapid import vapid_key

router = APIRouter(tags=["push"])


@router.get(
    "/v1/push/vapid-public-key",
    summary="The applicationServerKey for pushManager.subscribe",
    response_model=VapidPublicKeyOut,
)
def vapid_public_key(_: ActorDep, settings: SettingsDep) -> VapidPublicKeyOut:
    """The service's VAPID public key, base64url of the uncompressed P-256 point."""
    return VapidPublicKeyOut(public_key=vapid_key(settings).public_key)


@router.post(
    "/v1/push/subscriptions",
    status_code=201,
    summary="Store the caller's push subscription (201 new, 200 updated)",
    response_model=SubscriptionCreatedOut,
)
def create_subscription(
    body: SubscriptionIn,
    actor: ActorDep,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> SubscriptionCreatedOut:
    """Subscribe this browser; ``patient_ids`` are patients whose advice the caller may get."""
    now = utcnow()
    patient_ids: list[str] = []
    for pid in body.patient_ids:
        if pid in patient_ids:
            continue
        access = authorize_audited(
            session, actor, pid, Action.SUBSCRIBE_ADVICE, "POST /v1/push/subscriptions", now
        )
        if access.patient.id in patient_ids:
            continue
        audit_access(session, access, Action.SUBSCRIBE_ADVICE, "POST /v1/push/subscriptions")
        patient_ids.append(access.patient.id)
    row, created = push_service.subscribe(
        session, settings, owner=actor.user, body=body, patient_ids=patient_ids, now=now
    )
    if not created:
        response.status_code = 200
    return SubscriptionCreatedOut(id=row.id)


@router.delete(
    "/v1/push/subscriptions/{subscription_id}",
    status_code=204,
    summary="End one of the caller's own subscriptions",
)
def delete_subscription(subscription_id: str, actor: ActorDep, session: SessionDep) -> Response:
    """Unsubscribe; another user's subscription answers 404 like a missing one."""
    push_service.unsubscribe(
        session, owner=actor.user, subscription_id=subscription_id, now=utcnow()
    )
    return Response(status_code=204)


@router.get(
    "/v1/patients/{pid}/notifications",
    response_model=NotificationListOut,
    summary="The patient's delivery log: what was sent, when, to which subscription, how it ended",
)
def list_notifications(
    access: ReadAccess,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Notifications about the patient, newest first."""
    return {"items": push_service.delivery_log(session, access.patient.id, limit=limit)}
