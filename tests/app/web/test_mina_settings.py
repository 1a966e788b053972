"""The patient's settings page and push in the browser: language, quiet hours, lock screen,
and the subscription posted with the session cookie and the CSRF header."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.push.models import PushSubscription, SubscriptionStatus
from tests.app.factories import patient_id
from tests.app.web.conftest import Browser

Auth = Callable[[str], dict[str, str]]
KEYS = {
    "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8p"
    "ZGH6SRpkNtoIAiw4",
    "auth": "BTBZMqHH6r4Tts7J_aSIgg",
}


def subscription(name: str, **extra: Any) -> dict[str, Any]:
    """A browser's PushSubscription JSON (a loopback push service: allowed in development)."""
    return {"endpoint": f"http://127.0.0.1:9/push/{name}", "keys": KEYS,
            "expirationTime": None, **extra}  # fmt: skip


def _rows(session: Session, endpoint_part: str) -> list[PushSubscription]:
    session.expire_all()
    query = select(PushSubscription).where(PushSubscription.endpoint.contains(endpoint_part))
    return list(session.scalars(query))


def test_asta_switches_to_english_sets_quiet_hours_and_the_lock_screen(
    client: TestClient, auth: Auth, browser: Callable[[], Browser]
) -> None:
    me = browser()
    me.login("asta")
    page = me.client.get("/mina/installningar")
    assert page.status_code == 200
    assert "Inställningar" in page.text and "Slå på aviseringar" in page.text
    assert 'data-vapid-key="B' in page.text  # the VAPID key for pushManager.subscribe
    assert 'id="lock-neutral" name="lock_screen" value="neutral" checked' in page.text
    assert "Inga aviseringar mellan 22:00 och 07:00; brådskande råd kommer ändå." in page.text
    assert 'href="/mina/installningar"' in me.client.get("/mina").text

    chosen = {
        "language": "en",
        "quiet_start": "21:30",
        "quiet_end": "06:45",
        "lock_screen": "title",
    }
    saved = me.post("/mina/installningar", chosen)
    assert saved.status_code == 200 and saved.url.path == "/mina/installningar", saved.text[-800:]
    assert "Your settings are saved." in saved.text and '<html lang="en">' in saved.text
    assert "No notifications between 21:30 and 06:45; urgent advice still comes." in saved.text
    assert 'id="lock-title" name="lock_screen" value="title" checked' in saved.text
    assert "Hello Asta" in me.client.get("/mina").text  # every page switched language
    user = client.get("/v1/me", headers=auth("asta")).json()["user"]
    assert user["language"] == "en" and user["lock_screen"] == "title"
    assert user["quiet_hours"] == {"start": "21:30", "end": "06:45"}

    back = me.post("/mina/installningar", {"language": "sv", "quiet_start": "",
                                           "quiet_end": "", "lock_screen": "neutral"})  # fmt: skip
    assert "Dina inställningar är sparade." in back.text
    user = client.get("/v1/me", headers=auth("asta")).json()["user"]
    assert (user["language"], user["lock_screen"], user["quiet_hours"]) == ("sv", "neutral", None)


def test_a_time_that_is_not_one_is_named_and_nothing_is_saved(
    client: TestClient, auth: Auth, browser: Callable[[], Browser]
) -> None:
    me = browser()
    me.login("asta")
    chosen = {
        "language": "en",
        "quiet_start": "25:00",
        "quiet_end": "07:00",
        "lock_screen": "title",
    }
    wrong = me.post("/mina/installningar", chosen)
    assert wrong.status_code == 422 and "Skriv en tid som 22:00." in wrong.text
    assert 'href="#quiet_start"' in wrong.text and 'value="25:00"' in wrong.text
    user = client.get("/v1/me", headers=auth("asta")).json()["user"]
    assert (user["language"], user["lock_screen"], user["quiet_hours"]) == ("sv", "neutral", None)
    refused = me.client.post("/mina/installningar", data={"language": "en", "lock_screen": "title"})
    assert refused.status_code == 403  # no CSRF token
    assert client.get("/v1/me", headers=auth("asta")).json()["user"]["language"] == "sv"


def test_the_browsers_subscription_needs_the_csrf_header_and_is_stored_as_the_apis(
    browser: Callable[[], Browser], session: Session
) -> None:
    asta, allan = browser(), browser()
    asta.login("asta")
    allan.login("allan")
    token, allans = asta.csrf("/mina/installningar"), allan.csrf("/mina")
    url = "/mina/push/subscriptions"
    assert asta.client.post(url, json=subscription("no-header")).status_code == 403
    foreign = asta.client.post(
        url, json=subscription("no-header"), headers={"X-CSRF-Token": allans}
    )
    assert foreign.status_code == 403
    assert _rows(session, "no-header") == []  # nothing stored

    first = asta.client.post(url, json=subscription("asta"), headers={"X-CSRF-Token": token})
    assert first.status_code == 201, first.text
    again = asta.client.post(url, json=subscription("asta"), headers={"X-CSRF-Token": token})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    (row,) = _rows(session, "/push/asta")
    assert row.status == SubscriptionStatus.ACTIVE and row.patient_ids == []
    bad = asta.client.post(url, json={"endpoint": "x"}, headers={"X-CSRF-Token": token})
    assert bad.status_code == 422

    # Turning it off: one's own only, with the header.
    off = f"{url}/{row.id}"
    assert asta.client.delete(off).status_code == 403
    allan_token = allan.csrf("/mina")
    assert allan.client.delete(off, headers={"X-CSRF-Token": allan_token}).status_code == 404
    assert asta.client.delete(off, headers={"X-CSRF-Token": token}).status_code == 204
    (row,) = _rows(session, "/push/asta")
    assert row.status == SubscriptionStatus.DELETED


def test_maria_subscribes_to_astas_advice_never_to_allans(
    browser: Callable[[], Browser], session: Session
) -> None:
    asta, allan = patient_id(session, "asta"), patient_id(session, "allan")
    maria = browser()
    maria.login("maria")
    page = maria.client.get("/mina/installningar").text
    assert f'data-patients="{asta}"' in page  # whose advice she may be told of
    token = maria.csrf("/mina/installningar")
    url = "/mina/push/subscriptions"
    header = {"X-CSRF-Token": token}
    refused = maria.client.post(url, json=subscription("m1", patient_ids=[allan]), headers=header)
    assert refused.status_code == 404 and _rows(session, "/push/m1") == []
    stored = maria.client.post(url, json=subscription("m2", patient_ids=[asta]), headers=header)
    assert stored.status_code == 201
    (row,) = _rows(session, "/push/m2")
    assert row.patient_ids == [asta]
