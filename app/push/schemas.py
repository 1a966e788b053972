"""The push API's bodies: the browser's PushSubscription JSON, and what we answer."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from rules.text import SingleLine


class SubscriptionKeys(BaseModel):
    """The subscription's keys: the browser's P-256 public key and its auth secret."""

    model_config = ConfigDict(extra="forbid")

    p256dh: SingleLine = Field(min_length=1, max_length=200)
    auth: SingleLine = Field(min_length=1, max_length=100)


class SubscriptionIn(BaseModel):
    """``PushSubscription.toJSON()``, plus the patients a proxy wants advice for."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    endpoint: SingleLine = Field(min_length=1, max_length=2048)
    keys: SubscriptionKeys
    # Browsers send it (mostly null); the push service's 404/410 is what ends a subscription.
    expiration_time: float | None = Field(
        default=None, alias="expirationTime", ge=0, allow_inf_nan=False
    )
    patient_ids: list[Annotated[SingleLine, Field(max_length=64)]] = Field(
        default_factory=list, max_length=20
    )


class SubscriptionCreatedOut(BaseModel):
    """The id of the stored subscription."""

    id: str


class VapidPublicKeyOut(BaseModel):
    """The key to pass as ``applicationServerKey`` to ``pushManager.subscribe``."""

    public_key: str


class NotificationOut(BaseModel):
    """One push notification about the patient and how its delivery ended (ISO time strings)."""

    id: str
    kind: str
    title: str
    priority: str | None
    advice_id: str | None
    reminder_id: str | None
    flag_id: str | None
    message_id: str | None
    subscription_id: str | None
    recipient_user_id: str | None
    urgency: str
    ttl_seconds: int
    created_at: str
    status: str
    outcome: str
    attempts: int
    next_attempt_at: str | None
    sent_at: str | None
    finished_at: str | None
    last_status_code: int | None
    reason: str | None


class NotificationListOut(BaseModel):
    """The patient's delivery log, newest first."""

    items: list[NotificationOut]
