"""Push: subscriptions, who should hear about what, and the outbox rows that tell them.

Outbox rows are written in the transaction of whatever caused them (a sync batch, a reminder,
an escalation) and delivered later by ``app.push.dispatcher``. A payload carries a title, ids
and a link, never a measurement value, and fits one 4096-byte aes128gcm record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth.models import Scope, User
from app.auth.policy import grant_is_active
from app.config import Settings
from app.errors import ErrorItem, NotFound, Unprocessable
from app.patients.models import Patient
from app.push import endpoints, repository
from app.push.models import (
    OutboxMessage,
    OutboxStatus,
    PushSubscription,
    SubscriptionStatus,
)
from app.push.schemas import SubscriptionIn
from app.push.sender import MAX_PLAINTEXT_BYTES, encode_payload
from app.push.vapid import b64url_decode
from rules.advice import PATIENT, PROXY, Audience
from rules.language import Priority

# What a locked screen shows of advice unless its reader chose its title (``User.lock_screen``).
NEUTRAL_ADVICE_TITLE = {"sv": "Nytt råd från din vård", "en": "New advice from your care team"}
ADVICE_TTL_SECONDS: dict[str, int] = {Priority.urgent: 6 * 3600, Priority.routine: 24 * 3600}
_TOPIC_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def language_of(user: User) -> str:
    """The user's language for pushes: sv or en, default sv."""
    return user.language if user.language in ("sv", "en") else "sv"


def advice_push_title(user: User, title: Mapping[str, str]) -> str:
    """The ``title`` of an advice push: neutral unless the reader chose the advice's title.

    The lock screen is decided on the server, where the preference lives: the payload's
    ``title`` is exactly what the service worker shows, in the reader's language, so a phone
    that has not loaded the pages since the setting changed, or a worker of an older version,
    still shows nothing the reader did not choose. The default is the neutral text: a locked
    phone on a table says only that there is advice, not what it is about. Never a value.
    """
    lang = language_of(user)
    if user.lock_screen == "title":
        return str(title.get(lang, title["sv"]))
    return NEUTRAL_ADVICE_TITLE[lang]


def topic(*parts: str) -> str:
    """A Web Push Topic: at most 32 characters of the base64url alphabet."""
    return _TOPIC_CHARS.sub("", "-".join(parts))[:32]


def fit_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload, its title shortened if needed so the JSON fits one push record."""
    fitted = dict(payload)
    title = str(fitted.get("title", ""))
    while (excess := len(encode_payload(fitted)) - MAX_PLAINTEXT_BYTES) > 0:
        if not title:
            raise ValueError("a push payload is too large even without a title")
        # A character is at most 6 bytes of JSON; cut enough of them, keep whole characters.
        title = title[: max(0, len(title) - max(1, excess // 6))]
        fitted["title"] = title + "…"
    return fitted


def enqueue(
    session: Session,
    *,
    subscription: PushSubscription,
    patient_id: str,
    kind: str,
    payload: Mapping[str, Any],
    urgency: str,
    ttl_seconds: int,
    topic_: str | None,
    now: datetime,
    advice_id: str | None = None,
) -> OutboxMessage:
    """Write one outbox row for one subscription; the dispatcher delivers it."""
    row = OutboxMessage(
        patient_id=patient_id,
        user_id=subscription.user_id,
        subscription_id=subscription.id,
        advice_id=advice_id,
        kind=kind,
        payload=fit_payload(payload),
        urgency=urgency,
        ttl_seconds=ttl_seconds,
        topic=topic_,
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    return row


def patient_side(session: Session, patient: Patient, now: datetime, scope: Scope) -> list[User]:
    """The patient and every proxy whose grant in force has ``scope``, now."""
    users: list[User] = []
    if patient.user_id is not None:
        own = session.get(User, patient.user_id)
        if own is not None and own.active:
            users.append(own)
    grants = repository.proxy_grants(session, patient.id)
    for grant in grants:
        if grant_is_active(grant, now) and scope in grant.scopes:
            proxy = session.get(User, grant.grantee_id)
            if proxy is not None and proxy.active:
                users.append(proxy)
    return users


class PushedAdvice(Protocol):
    """What a push says of advice (findings' ``Advice``; push does not import findings)."""

    @property
    def id(self) -> str:
        """The advice's id."""

    @property
    def rule_id(self) -> str:
        """The rule that gave the advice."""

    @property
    def priority(self) -> str:
        """The advice's priority: how long a push waits to be delivered and how urgent it is."""

    @property
    def fresh_until(self) -> datetime | None:
        """When the advice stops being worth delivering (None: its priority decides)."""

    def texts(self, audience: Audience) -> tuple[dict[str, Any], dict[str, Any]]:
        """The (title, body) a reader sees."""
        ...


def enqueue_advice(session: Session, advice: PushedAdvice, patient: Patient, now: datetime) -> int:
    """Write one outbox row per subscription that should receive this advice.

    The push lives (TTL) only as long as the advice is fresh: an outbox retry or a phone
    that comes online late never shows urgent advice about an old reading. A proxy's push
    carries the proxy's title, about the patient ("Astas vikt har ökat").
    """
    ttl = ADVICE_TTL_SECONDS.get(advice.priority, 24 * 3600)
    if advice.fresh_until is not None:
        ttl = min(ttl, int((advice.fresh_until - now).total_seconds()))
    if ttl <= 0:
        return 0
    count = 0
    for user in patient_side(session, patient, now, Scope.RECEIVE_ADVICE):
        is_own = patient.user_id == user.id
        title, _ = advice.texts(PATIENT if is_own else PROXY)
        for sub in repository.active_subscriptions(session, user.id):
            if not is_own and patient.id not in sub.patient_ids:
                continue
            enqueue(
                session,
                subscription=sub,
                patient_id=patient.id,
                kind="advice",
                # No measurement values in a push: a title and where to read more.
                payload={
                    "title": advice_push_title(user, title),
                    "advice_id": advice.id,
                    "patient_id": patient.id,
                    "priority": advice.priority,
                    "url": f"/patients/{patient.id}/advice/{advice.id}",
                },
                urgency="high" if advice.priority == Priority.urgent else "normal",
                ttl_seconds=ttl,
                topic_=topic("advice", advice.rule_id),
                now=now,
                advice_id=advice.id,
            )
            count += 1
    return count


# --- subscriptions ------------------------------------------------------------------------------


def subscription_errors(settings: Settings, body: SubscriptionIn) -> list[ErrorItem]:
    """Why a subscription cannot be used (empty when it can): endpoint and key checks."""
    errors: list[ErrorItem] = []

    def error(loc: str, code: str, message: str) -> None:
        errors.append(ErrorItem(loc=loc, code=code, message=message))

    problem = endpoints.endpoint_problem(body.endpoint, settings, endpoints.resolver_for(settings))
    if problem is not None:
        error("endpoint", problem.code, problem.message)
    try:
        point = b64url_decode(body.keys.p256dh)
        if len(point) != 65 or point[0] != 4:
            error(
                "keys.p256dh",
                "invalid_length",
                "p256dh must be an uncompressed P-256 point: 65 bytes, base64url.",
            )
        else:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        error("keys.p256dh", "invalid_key", "p256dh is not a P-256 public key in base64url.")
    try:
        if len(b64url_decode(body.keys.auth)) != 16:
            error("keys.auth", "invalid_length", "auth must be 16 bytes, base64url.")
    except ValueError:
        error("keys.auth", "invalid_key", "auth is not base64url.")
    return errors


def subscribe(
    session: Session,
    settings: Settings,
    *,
    owner: User,
    body: SubscriptionIn,
    patient_ids: Sequence[str],
    now: datetime,
) -> tuple[PushSubscription, bool]:
    """Store the caller's subscription (patients already authorised); True when it is new.

    The same endpoint again updates the stored subscription: browsers send it on every start.
    An endpoint last registered by another user moves to the caller, since a browser's
    subscription follows whoever is signed in on it; what was queued for the previous owner
    is cancelled by the dispatcher.
    """
    errors = subscription_errors(settings, body)
    if errors:
        raise Unprocessable("The push subscription cannot be used.", errors=errors)
    values: dict[str, Any] = {
        "user_id": owner.id,
        "p256dh": body.keys.p256dh.strip().rstrip("="),
        "auth": body.keys.auth.strip().rstrip("="),
        "patient_ids": sorted(set(patient_ids)),
        "status": SubscriptionStatus.ACTIVE,
        "ended_at": None,
    }
    existing = repository.subscription_by_endpoint(session, body.endpoint)
    if existing is None:
        row = PushSubscription(endpoint=body.endpoint, created_at=now, **values)
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:  # another request stored the same endpoint just now
            existing = repository.subscription_by_endpoint(session, body.endpoint)
            if existing is None:
                raise
        else:
            return row, True
    for name, value in values.items():
        setattr(existing, name, value)
    session.flush()
    return existing, False


def unsubscribe(session: Session, *, owner: User, subscription_id: str, now: datetime) -> None:
    """End one of the caller's own subscriptions; anyone else's is reported as missing."""
    row = session.get(PushSubscription, subscription_id) if len(subscription_id) <= 36 else None
    if row is None or row.user_id != owner.id or row.status != SubscriptionStatus.ACTIVE:
        raise NotFound("No such subscription.")
    row.status = SubscriptionStatus.DELETED
    row.ended_at = now
    session.flush()


# --- the delivery log ---------------------------------------------------------------------------

OUTCOMES = {
    OutboxStatus.PENDING: "waiting",
    OutboxStatus.SENDING: "being sent",
    OutboxStatus.SENT: "delivered to the push service",
    OutboxStatus.GONE: "the subscription no longer exists (removed)",
    OutboxStatus.DEAD: "given up (dead letter)",
    OutboxStatus.EXPIRED: "too old to deliver",
    OutboxStatus.CANCELLED: "not sent: the subscription or the permission ended",
}


def delivery_log(session: Session, patient_id: str, *, limit: int) -> list[dict[str, Any]]:
    """A patient's notifications in their API form, newest first."""
    return [
        notification_dict(row) for row in repository.notifications(session, patient_id, limit=limit)
    ]


def notification_dict(row: OutboxMessage) -> dict[str, Any]:
    """The API form of one notification: what, when, to which subscription, how it ended."""
    payload = row.payload
    return {
        "id": row.id,
        "kind": row.kind,
        "title": payload.get("title", ""),
        "priority": payload.get("priority"),
        "advice_id": row.advice_id,
        "reminder_id": payload.get("reminder_id"),
        "flag_id": payload.get("flag_id"),
        "message_id": payload.get("message_id"),
        "subscription_id": row.subscription_id,
        "recipient_user_id": row.user_id,
        "urgency": row.urgency,
        "ttl_seconds": row.ttl_seconds,
        "created_at": row.created_at.isoformat(),
        "status": row.status,
        "outcome": OUTCOMES.get(OutboxStatus(row.status), row.status),
        "attempts": row.attempts,
        "next_attempt_at": (
            row.next_attempt_at.isoformat()
            if row.status in (OutboxStatus.PENDING, OutboxStatus.SENDING)
            else None
        ),
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "last_status_code": row.last_status_code,
        # A code, never the raw error: exception text can carry what the service's own
        # network looks like (a hostile endpoint reads it back here).
        "reason": reason_code(row),
    }


ENDPOINT_REFUSED = "endpoint refused: "
"""How the dispatcher writes ``last_error`` when it will not send to an endpoint."""

SENDER_ERROR = "sender error: "
"""How the dispatcher writes ``last_error`` when sending one message raised."""


def reason_code(row: OutboxMessage) -> str | None:
    """Why a notification ended (or waits) as it did, from a fixed vocabulary."""
    error, code = row.last_error or "", row.last_status_code
    if error.startswith(ENDPOINT_REFUSED):
        return "endpoint_" + error.removeprefix(ENDPOINT_REFUSED).split()[0]
    if error.startswith(SENDER_ERROR):
        return "sender_error"
    if code is not None:
        if 200 <= code < 300:
            return None
        if code in (404, 410):
            return "subscription_gone"
        if code == 413:
            return "payload_too_large"
        if code == 429:
            return "rate_limited"
        return "push_service_error" if code >= 500 else "refused_by_push_service"
    if row.status == OutboxStatus.EXPIRED:
        return "expired"
    if row.status == OutboxStatus.CANCELLED:
        return "cancelled"
    if error:
        return "no_answer"  # a timeout or a connection that failed
    return None
