"""The push API on both databases: the VAPID key, subscriptions, the delivery log."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.auth.models import User
from app.config import Settings
from app.push.models import OutboxMessage, PushSubscription
from app.push.schemas import SubscriptionIn
from app.push.service import subscription_errors
from app.push.vapid import VAPID_KEY_FILE
from tests.app.factories import batch, patient_id, scalar
from tests.app.push.push_service import LocalPushService

Auth = Callable[[str], dict[str, str]]


def _count(session: Session, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_vapid_public_key(client: TestClient, auth: Auth, settings: Settings) -> None:
    """A P-256 point, the same on every call, kept in var/; a token is needed."""
    first = client.get("/v1/push/vapid-public-key", headers=auth("asta"))
    assert first.status_code == 200
    key = first.json()["public_key"]
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(raw) == 65 and raw[0] == 4 and "=" not in key
    assert client.get("/v1/push/vapid-public-key", headers=auth("eva")).json()["public_key"] == key
    assert (Path(settings.var_dir) / VAPID_KEY_FILE).exists()
    assert client.get("/v1/push/vapid-public-key").status_code == 401


def test_subscribe_update_and_unsubscribe(
    client: TestClient, auth: Auth, session: Session, push_service: LocalPushService
) -> None:
    """201 with an id; the same endpoint again updates it (200, same id); DELETE own only."""
    browser = push_service.subscriber()
    created = client.post(
        "/v1/push/subscriptions", json=browser.subscription_json(), headers=auth("asta")
    )
    assert created.status_code == 201, created.text
    sub_id = created.json()["id"]
    again = client.post(
        "/v1/push/subscriptions", json=browser.subscription_json(), headers=auth("asta")
    )
    assert (again.status_code, again.json()["id"]) == (200, sub_id)
    row = session.get(PushSubscription, sub_id)
    assert row is not None and row.status == "active" and row.patient_ids == []

    missing = client.delete("/v1/push/subscriptions/" + "0" * 36, headers=auth("asta"))
    others = client.delete(f"/v1/push/subscriptions/{sub_id}", headers=auth("allan"))
    assert others.status_code == missing.status_code == 404
    assert others.json() == missing.json()
    assert (
        client.delete(f"/v1/push/subscriptions/{sub_id}", headers=auth("asta")).status_code == 204
    )
    assert (
        client.delete(f"/v1/push/subscriptions/{sub_id}", headers=auth("asta")).status_code == 404
    )
    session.expire_all()
    row = session.get(PushSubscription, sub_id)
    assert row is not None and row.status == "deleted" and row.ended_at is not None
    # Subscribing the same browser again brings it back.
    back = client.post(
        "/v1/push/subscriptions", json=browser.subscription_json(), headers=auth("asta")
    )
    assert (back.status_code, back.json()["id"]) == (200, sub_id)


def test_a_proxy_subscribes_only_to_patients_their_grant_allows(
    client: TestClient, auth: Auth, session: Session, push_service: LocalPushService
) -> None:
    """Maria may get Asta's advice (audited), not Allan's (404, nothing stored)."""
    asta, allan = patient_id(session, "asta"), patient_id(session, "allan")
    audit_before = _count(session, AuditEvent)
    body = {**push_service.subscriber().subscription_json(), "patient_ids": [asta, asta]}
    ok = client.post("/v1/push/subscriptions", json=body, headers=auth("maria"))
    assert ok.status_code == 201, ok.text
    row = session.get(PushSubscription, ok.json()["id"])
    assert row is not None and row.patient_ids == [asta]
    assert _count(session, AuditEvent) == audit_before + 1
    logged = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert logged is not None and logged.action == "subscribe_advice"

    subs_before = _count(session, PushSubscription)
    for pid in (allan, "0" * 36):
        body = {**push_service.subscriber().subscription_json(), "patient_ids": [pid]}
        refused = client.post("/v1/push/subscriptions", json=body, headers=auth("maria"))
        assert refused.status_code == 404
    assert _count(session, PushSubscription) == subs_before
    # A clinician subscribes for themself (escalations), not to a patient's advice.
    body = {**push_service.subscriber().subscription_json(), "patient_ids": [asta]}
    assert (
        client.post("/v1/push/subscriptions", json=body, headers=auth("karin")).status_code == 403
    )
    plain = push_service.subscriber().subscription_json()
    assert (
        client.post("/v1/push/subscriptions", json=plain, headers=auth("karin")).status_code == 201
    )


GOOD = {
    "endpoint": "https://fcm.googleapis.com/fcm/send/abc",
    "keys": {
        "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8p"
        "ZGH6SRpkNtoIAiw4",
        "auth": "BTBZMqHH6r4Tts7J_aSIgg",
    },
}
BAD: list[tuple[str, dict[str, Any], str]] = [
    ("plain http", {"endpoint": "http://push.example.com/x"}, "endpoint"),
    ("ftp", {"endpoint": "ftp://push.example.com/x"}, "endpoint"),
    ("no host", {"endpoint": "https:///x"}, "endpoint"),
    ("credentials", {"endpoint": "https://u:p@push.example.com/x"}, "endpoint"),
    ("not a url", {"endpoint": "push.example.com"}, "endpoint"),
    ("short key", {"keys": {"p256dh": "BCVxsr7N", "auth": GOOD["keys"]["auth"]}}, "keys.p256dh"),
    (
        "not on the curve",
        {"keys": {"p256dh": "BA" + "A" * 85, "auth": GOOD["keys"]["auth"]}},
        "keys.p256dh",
    ),
    ("not base64", {"keys": {"p256dh": "!!!", "auth": GOOD["keys"]["auth"]}}, "keys.p256dh"),
    ("auth length", {"keys": {"p256dh": GOOD["keys"]["p256dh"], "auth": "AAAA"}}, "keys.auth"),
    ("owner in body", {"user_id": "someone"}, "body.user_id"),
    ("no keys", {"keys": None}, "body.keys"),
    ("endpoint too long", {"endpoint": "https://p.example/" + "a" * 3000}, "body.endpoint"),
]


@pytest.mark.parametrize(("case", "change", "loc"), BAD, ids=[b[0] for b in BAD])
def test_bad_subscriptions_are_refused_with_reasons(
    client: TestClient, auth: Auth, session: Session, case: str, change: dict[str, Any], loc: str
) -> None:
    """422 problem+json naming the field; nothing stored."""
    before = _count(session, PushSubscription)
    answer = client.post("/v1/push/subscriptions", json={**GOOD, **change}, headers=auth("asta"))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert loc in [e["loc"] for e in answer.json()["errors"]], answer.json()
    assert _count(session, PushSubscription) == before


def test_loopback_http_endpoints_only_in_development(settings: Settings) -> None:
    """http://127.0.0.1 and localhost are test push services; in production only https."""
    body = SubscriptionIn.model_validate({**GOOD, "endpoint": "http://127.0.0.1:9/push/x"})
    assert subscription_errors(settings, body) == []
    production = settings.model_copy(update={"environment": "production"})
    assert [e.code for e in subscription_errors(production, body)] == ["insecure_endpoint"]
    assert subscription_errors(production, SubscriptionIn.model_validate(GOOD)) == []


def test_delivery_log_shows_what_was_sent_and_is_audited(
    client: TestClient, auth: Auth, session: Session, push_service: LocalPushService
) -> None:
    """Asta's urgent advice queued for her tablet and Maria's phone, visible in her log.

    Asta keeps the default lock screen (the neutral text); Maria chose to see the title.
    """
    asta = patient_id(session, "asta")
    chosen = client.patch("/v1/me", json={"lock_screen": "title"}, headers=auth("maria"))
    assert chosen.status_code == 200 and chosen.json()["user"]["lock_screen"] == "title"
    tablet = client.post(
        "/v1/push/subscriptions",
        json=push_service.subscriber().subscription_json(),
        headers=auth("asta"),
    ).json()["id"]
    phone = client.post(
        "/v1/push/subscriptions",
        json={**push_service.subscriber().subscription_json(), "patient_ids": [asta]},
        headers=auth("maria"),
    ).json()["id"]
    synced = client.post(
        "/v1/patients/me/sync", json=batch(scalar("spo2", 85, "%")), headers=auth("asta")
    )
    assert synced.status_code == 200 and synced.json()["advice"], synced.text
    advice_id = synced.json()["advice"][0]["id"]
    assert _count(session, OutboxMessage) == 2

    audit_before = _count(session, AuditEvent)
    log = client.get(f"/v1/patients/{asta}/notifications", headers=auth("maria"))
    assert log.status_code == 200
    items = log.json()["items"]
    assert {i["subscription_id"] for i in items} == {tablet, phone}
    for item in items:
        assert (item["kind"], item["advice_id"], item["status"]) == ("advice", advice_id, "pending")
        assert item["priority"] == "urgent" and item["urgency"] == "high"
        # Asta's tablet is told about her own value; Maria's phone about her mother's.
        own = item["subscription_id"] == tablet
        assert item["title"] == ("Nytt råd från din vård" if own else "Astas syremättnad är låg")
    assert _count(session, AuditEvent) == audit_before + 1
    assert (
        client.get(f"/v1/patients/{asta}/notifications", headers=auth("allan")).status_code == 404
    )
    for row in session.scalars(select(OutboxMessage)):  # no measurement values: ids and a title
        assert set(row.payload) == {"title", "advice_id", "patient_id", "priority", "url"}
        assert not any(ch.isdigit() for ch in row.payload["title"])


def test_a_browser_moves_to_whoever_subscribes_it_last(
    client: TestClient, auth: Auth, session: Session, push_service: LocalPushService
) -> None:
    """Asta's tablet, then Maria signs in on it: one subscription, now Maria's."""
    browser = push_service.subscriber()
    first = client.post(
        "/v1/push/subscriptions", json=browser.subscription_json(), headers=auth("asta")
    )
    moved = client.post(
        "/v1/push/subscriptions", json=browser.subscription_json(), headers=auth("maria")
    )
    assert (first.status_code, moved.status_code) == (201, 200)
    assert first.json()["id"] == moved.json()["id"]
    row = session.get(PushSubscription, moved.json()["id"])
    maria = session.scalars(select(User).where(User.handle == "maria")).one()
    assert row is not None and row.user_id == maria.id
    gone = client.delete(f"/v1/push/subscriptions/{row.id}", headers=auth("asta"))
    assert gone.status_code == 404


def test_a_proxy_is_pushed_the_proxys_title(
    client: TestClient, auth: Auth, session: Session, push_service: LocalPushService
) -> None:
    asta = patient_id(session, "asta")
    for handle in ("asta", "maria"):  # both chose to see the advice's title
        assert client.patch(
            "/v1/me", json={"lock_screen": "title"}, headers=auth(handle)
        ).is_success
    own = push_service.subscriber().subscription_json()
    assert client.post("/v1/push/subscriptions", json=own, headers=auth("asta")).status_code == 201
    body = {**push_service.subscriber().subscription_json(), "patient_ids": [asta]}
    proxy = client.post("/v1/push/subscriptions", json=body, headers=auth("maria"))
    assert proxy.status_code == 201
    fever = scalar("temperature", 39.6, "Cel", minutes_ago=2)
    assert client.post("/v1/patients/me/sync", json=batch(fever), headers=auth("asta")).is_success
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "advice")).all()
    titles = {
        session.get(User, row.user_id).handle: row.payload["title"]  # type: ignore[union-attr]
        for row in rows
        if row.payload["title"].endswith("ring vården i dag")
    }
    assert titles == {
        "asta": "Du har hög feber – ring vården i dag",
        "maria": "Asta har hög feber – ring vården i dag",
    }


@pytest.mark.parametrize(
    ("lock_screen", "language", "title"),
    [
        (None, "sv", "Nytt råd från din vård"),  # the default: neutral
        ("neutral", "en", "New advice from your care team"),
        ("title", "sv", "Du har hög feber – ring vården i dag"),
        ("title", "en", "You have a high fever – contact your care today"),
    ],
)
def test_the_lock_screen_shows_the_neutral_text_unless_the_title_was_chosen(
    client: TestClient,
    auth: Auth,
    session: Session,
    push_service: LocalPushService,
    lock_screen: str | None,
    language: str,
    title: str,
) -> None:
    """The payload's title is what the phone shows: neutral by default, never a value."""
    changes: dict[str, Any] = {"language": language}
    if lock_screen is not None:
        changes["lock_screen"] = lock_screen
    me = client.patch("/v1/me", json=changes, headers=auth("asta"))
    assert me.status_code == 200 and me.json()["user"]["lock_screen"] == (lock_screen or "neutral")
    own = push_service.subscriber().subscription_json()
    assert client.post("/v1/push/subscriptions", json=own, headers=auth("asta")).status_code == 201
    fever = scalar("temperature", 39.6, "Cel", minutes_ago=2)
    assert client.post("/v1/patients/me/sync", json=batch(fever), headers=auth("asta")).is_success
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "advice")).all()
    assert rows
    for row in rows:
        assert set(row.payload) == {"title", "advice_id", "patient_id", "priority", "url"}
        assert "39" not in row.payload["title"] and not any(
            c.isdigit() for c in row.payload["title"]
        )
    if lock_screen == "title":
        assert title in {row.payload["title"] for row in rows}
    else:
        assert {row.payload["title"] for row in rows} == {title}
