"""Typed builders of push test data: subscriptions, outbox rows, flags."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import User
from app.findings.models import Evaluation, Flag, FlagStatus
from app.patients.models import Patient
from app.push import service as push_service
from app.push.models import OutboxMessage, PushSubscription
from rules.language import SEVERITY_RANK, Severity
from tests.app.push.push_service import Subscriber

T0 = datetime.fromisoformat("2026-11-20T12:00:00+00:00")


def user(session: Session, handle: str) -> User:
    """A seeded user by handle."""
    return session.scalars(select(User).where(User.handle == handle)).one()


def patient(session: Session, handle: str) -> Patient:
    """A seeded patient by the handle of their login."""
    return session.scalars(select(Patient).where(Patient.user_id == user(session, handle).id)).one()


def subscription(
    session: Session,
    owner: User,
    browser: Subscriber,
    *,
    patient_ids: Sequence[str] = (),
    now: datetime = T0,
) -> PushSubscription:
    """A stored subscription for a browser the test plays."""
    row = PushSubscription(
        user_id=owner.id,
        endpoint=browser.endpoint,
        p256dh=browser.p256dh,
        auth=browser.auth,
        patient_ids=list(patient_ids),
        status="active",
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def advice_payload(target: Patient, n: int, priority: str = "routine") -> dict[str, Any]:
    """An advice-shaped payload with its own id (no advice row behind it)."""
    advice_id = str(uuid.uuid4())
    return {
        "title": f"Råd nummer {n}",
        "advice_id": advice_id,
        "patient_id": target.id,
        "priority": priority,
        "url": f"/patients/{target.id}/advice/{advice_id}",
    }


def message(
    session: Session,
    sub: PushSubscription,
    target: Patient,
    n: int = 1,
    *,
    urgency: str = "normal",
    ttl: int = 3600,
    now: datetime = T0,
) -> OutboxMessage:
    """One pending outbox row for a subscription."""
    row = push_service.enqueue(
        session,
        subscription=sub,
        patient_id=target.id,
        kind="advice",
        payload=advice_payload(target, n, "urgent" if urgency == "high" else "routine"),
        urgency=urgency,
        ttl_seconds=ttl,
        topic_=push_service.topic("advice", "test", str(n)),
        now=now,
    )
    session.flush()
    return row


def overdue_flag(
    session: Session, target: Patient, *, severity: str = Severity.high, due: datetime
) -> Flag:
    """An open flag whose acknowledgement deadline is ``due``."""
    created = due - timedelta(hours=4)
    keyed: dict[str, Any] = {}
    if hasattr(Evaluation, "anchor_key"):  # evaluation keys (revision 0003) name the anchor
        keyed = {"anchor_key": f"test:{uuid.uuid4()}", "anchor_time": created}
    evaluation = Evaluation(
        patient_id=target.id,
        rule_id="spo2-low",
        rule_version=1,
        plan_version=1,
        mode="active",
        anchor_reading_id=None,
        reading_ids=[],
        explanation={},
        created_at=created,
        **keyed,
    )
    session.add(evaluation)
    session.flush()
    flag = Flag(
        patient_id=target.id,
        rule_id="spo2-low",
        rule_version=1,
        evaluation_id=evaluation.id,
        severity=severity,
        severity_rank=SEVERITY_RANK[Severity(severity)],
        status=FlagStatus.OPEN,
        title={"sv": "Låg syremättnad", "en": "Low oxygen saturation"},
        explanation={},
        reading_ids=[],
        firing_count=1,
        created_at=created,
        updated_at=created,
        due_at=due,
        note="",
    )
    session.add(flag)
    session.flush()
    return flag
