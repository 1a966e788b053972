"""Advice freshness and CGM episodes in the service, on both databases (issue 9, items 2–3).

Gunilla's night: her sensor writes every five minutes and her phone syncs each value, or
comes back online hours later with all of them. The team always sees the lows; the phone
gets "eat 15 g sugar now" once per episode and level, and never about a low that is old.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.clock import clock
from app.config import Settings
from app.findings.models import Advice, Flag
from app.push.dispatcher import dispatch
from app.push.models import OutboxMessage, OutboxStatus
from app.push.sender import RecordingSender, SendResult
from tests.app.factories import STOCKHOLM, batch, patient_id
from tests.app.push.push_service import LocalPushService

Auth = Callable[[str], dict[str, str]]

T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # 02:00 in Stockholm
STEP = timedelta(minutes=5)


def _cgm(at: datetime, value: float, unit: str = "mmol/L") -> dict[str, Any]:
    return {
        "client_id": str(uuid.uuid4()),
        "type": "cgm_glucose",
        "time": at.astimezone(STOCKHOLM).isoformat(),
        "value": value,
        "unit": unit,
    }


def _sync(client: TestClient, auth: Auth, *readings: dict[str, Any], now: datetime) -> None:
    clock.fixed = now
    answer = client.post(
        "/v1/patients/me/sync",
        json=batch(*readings, source="gunilla-cgm", kind="device"),
        headers=auth("gunilla"),
    )
    assert answer.status_code == 200, answer.text
    assert all(r["status"] == "created" for r in answer.json()["results"]), answer.text


@pytest.fixture
def subscribed(client: TestClient, auth: Auth, push_service: LocalPushService) -> str:
    """Gunilla's phone has push turned on; the endpoint it pushes to."""
    clock.fixed = T0 - timedelta(days=1)
    browser = push_service.subscriber()
    created = client.post(
        "/v1/push/subscriptions", json=browser.subscription_json(), headers=auth("gunilla")
    )
    assert created.status_code == 201, created.text
    return browser.endpoint


def _advice(session: Session, pid: str) -> list[Advice]:
    return list(
        session.scalars(
            select(Advice)
            .where(Advice.patient_id == pid)
            .order_by(Advice.created_at, Advice.fresh_until)
        )
    )


def _pushes(session: Session, pid: str) -> list[OutboxMessage]:
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.patient_id == pid)
            .order_by(OutboxMessage.created_at)
        )
    )


@pytest.mark.parametrize("unit", ["mmol/L", "mg/dL"])
def test_a_night_hypo_pushes_once_per_level_and_again_after_recovery(
    client: TestClient, auth: Auth, session: Session, subscribed: str, unit: str
) -> None:
    night = [
        6.0,
        4.5,
        3.8,
        3.6,
        3.4,
        3.2,
        2.9,
        2.7,
        2.8,
        3.3,
        3.6,  # one episode, deepening
        4.1,
        4.4,
        4.6,
        4.8,  # 15 minutes at or above 3.9: it is over
        3.7,
    ]  # a new episode
    to_unit = (lambda v: v) if unit == "mmol/L" else (lambda v: round(v * 18.0156))
    for i, value in enumerate(night):
        at = T0 + i * STEP
        _sync(client, auth, _cgm(at, to_unit(value), unit), now=at + timedelta(minutes=1))
    pid = patient_id(session, "gunilla")
    advice = _advice(session, pid)
    assert [(a.rule_id, a.reading_ids and a.episode_start) for a in advice] == [
        ("glucose-low", T0 + 2 * STEP),
        ("glucose-very-low", T0 + 2 * STEP),
        ("glucose-low", T0 + 15 * STEP),
    ]
    assert all(a.notify and a.not_pushed is None for a in advice)
    assert len(_pushes(session, pid)) == 3  # before: one every 15 minutes, 5 in this night
    flag = session.scalars(
        select(Flag).where(Flag.patient_id == pid, Flag.rule_id == "glucose-very-low")
    ).one()
    episode = flag.explanation["episode"]
    assert episode["start"] == (T0 + 2 * STEP).isoformat()
    assert episode["minutes"] == "30" and episode["first_at_level"] == "false"
    assert (episode["nadir"], episode["unit"]) == (str(to_unit(2.7)), unit)
    nadir_sv = str(to_unit(2.7)).replace(".", ",")
    assert f"lägsta {nadir_sv} {unit}" in flag.explanation["summary"]["sv"]


def test_a_low_uploaded_hours_late_flags_but_is_not_pushed(
    client: TestClient, auth: Auth, session: Session, subscribed: str
) -> None:
    night = [5.0, 3.6, 3.1, 2.8, 2.9, 3.5, 4.2, 4.6, 5.1, 5.5]
    readings = [_cgm(T0 + i * STEP, v) for i, v in enumerate(night)]
    _sync(client, auth, *readings, now=T0 + timedelta(hours=3))  # three hours offline
    pid = patient_id(session, "gunilla")
    advice = _advice(session, pid)
    assert {a.rule_id for a in advice} == {"glucose-low", "glucose-very-low"}
    assert all(not a.notify and a.not_pushed == "stale" for a in advice)
    assert all(
        a.fresh_until == T0 + STEP + timedelta(minutes=30)
        for a in advice
        if a.rule_id == "glucose-low"
    )
    assert _pushes(session, pid) == []
    flags = session.scalars(select(Flag).where(Flag.patient_id == pid)).all()
    assert {f.rule_id for f in flags} >= {"glucose-very-low"}, "the team sees it"
    listed = client.get("/v1/patients/me/advice", headers=auth("gunilla")).json()
    assert {a["not_pushed"] for a in listed["items"]} == {"stale"}


def test_a_low_still_going_on_at_upload_is_pushed_once(
    client: TestClient, auth: Auth, session: Session, subscribed: str
) -> None:
    readings = [_cgm(T0 + i * STEP, 3.5) for i in range(36)]  # three hours at 3.5
    _sync(client, auth, *readings, now=T0 + 35 * STEP + timedelta(minutes=1))
    pid = patient_id(session, "gunilla")
    advice = _advice(session, pid)
    assert [(a.rule_id, a.not_pushed) for a in advice] == [
        ("glucose-low", "stale"),  # the episode's first reading, three hours old
        ("glucose-low", None),  # the first fresh one: the low is still going on
    ]
    assert len(_pushes(session, pid)) == 1
    # The next value of the same episode says nothing new.
    _sync(client, auth, _cgm(T0 + 36 * STEP, 3.4), now=T0 + 36 * STEP + timedelta(minutes=1))
    assert len(_advice(session, pid)) == 2


def test_the_outbox_never_delivers_stale_urgent_advice(
    client: TestClient,
    auth: Auth,
    session: Session,
    subscribed: str,
    factory: sessionmaker[Session],
    push_settings: Settings,
) -> None:
    _sync(client, auth, _cgm(T0, 3.5), now=T0 + timedelta(minutes=4))
    pid = patient_id(session, "gunilla")
    (row,) = _pushes(session, pid)
    # The clock is frozen: synced 4 minutes after the reading, 30 minutes of freshness.
    freshness_left = (T0 + timedelta(minutes=30)) - (T0 + timedelta(minutes=4))
    assert row.ttl_seconds == freshness_left.total_seconds()
    sender = RecordingSender(script={subscribed: [SendResult(500)]})
    dispatch(factory, push_settings, T0 + timedelta(minutes=5), sender=sender)
    assert [m.ttl for m in sender.sent] == [25 * 60]
    # The push service was down; the retry comes after the reading is 30 minutes old.
    stats = dispatch(factory, push_settings, T0 + timedelta(minutes=31), sender=sender)
    assert stats.expired == 1 and len(sender.sent) == 1
    session.expire_all()
    assert session.get(OutboxMessage, row.id).status == OutboxStatus.EXPIRED  # type: ignore[union-attr]


def test_sensor_alarms_mute_cgm_pushes_but_not_fingersticks(
    client: TestClient, auth: Auth, session: Session, subscribed: str
) -> None:
    clock.fixed = T0 - timedelta(hours=1)
    pid = patient_id(session, "gunilla")
    plan = client.get(f"/v1/patients/{pid}/plan", headers=auth("olof")).json()
    body = {k: plan[k] for k in ("rules", "schedule", "agreements", "contact") if k in plan}
    for rule in body["rules"]:
        if rule["rule"] in ("glucose-low", "glucose-very-low"):
            rule["params"] = {**rule.get("params", {}), "sensor_alarms": True}
    saved = client.put(f"/v1/patients/{pid}/plan", json=body, headers=auth("olof"))
    assert saved.status_code in (200, 201), saved.text
    _sync(client, auth, _cgm(T0, 2.9), now=T0 + timedelta(minutes=1))
    finger = {
        "client_id": str(uuid.uuid4()),
        "type": "glucose",
        "value": 3.4,
        "unit": "mmol/L",
        "time": (T0 + timedelta(minutes=20)).astimezone(STOCKHOLM).isoformat(),
    }
    _sync(client, auth, finger, now=T0 + timedelta(minutes=21))
    advice = _advice(session, pid)
    assert [(a.rule_id, a.not_pushed) for a in advice] == [
        ("glucose-very-low", "muted"),
        ("glucose-low", None),
    ]
    assert len(_pushes(session, pid)) == 1
