"""Push, values and goals of the patient pages in Chromium against a real uvicorn.

Asta turns notifications on from her settings page: the page asks for permission, subscribes
through the service worker with the VAPID key and posts the subscription to
``/mina/push/subscriptions``. Headless Chromium has no push service to subscribe with
(``pushManager.subscribe`` fails there), so when it does, the test posts a subscription JSON
through the same ``app.js`` function the button uses (``minaPush.postSubscription``); the
posting path, the CSRF header and the stored row are the same. Her urgent advice then queues a
push for that subscription whose title is the neutral text (her default lock screen), and the
push delivered to the service worker (DevTools' ``ServiceWorker.deliverPushMessage``) is shown
as a notification with that title. The settings, values (24 h, 90 d, 375 px) and goals pages
pass axe with no serious or critical violation.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app.web.conftest import IN_CHROMIUM
from tests.app.web.test_browser import Audit, _no_sideways_scroll
from tests.app.web.test_browser_mina import _login
from tests.live import LiveServer

pytestmark = IN_CHROMIUM

NEUTRAL = "Nytt råd från din vård"
SUBSCRIPTION = {
    "endpoint": "http://127.0.0.1:9/push/chromium",
    "keys": {
        "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8p"
        "ZGH6SRpkNtoIAiw4",
        "auth": "BTBZMqHH6r4Tts7J_aSIgg",
    },
    "expirationTime": None,
}
ACTIVE = """async () => {
  const registration = await navigator.serviceWorker.getRegistration('/mina');
  return !!(registration && registration.active);
}"""
NOTIFICATIONS = """async () => {
  const registration = await navigator.serviceWorker.getRegistration('/mina');
  return registration ? (await registration.getNotifications()).map((n) => n.title) : [];
}"""


def _until(page: Any, check: Any, what: str, seconds: float = 30) -> Any:
    """Poll ``check`` (the CSP forbids wait_for_function's eval), letting the page run."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        page.wait_for_timeout(200)
    raise AssertionError(f"never: {what}")


def _sync(live: LiveServer, headers: dict[str, str], readings: list[dict[str, Any]]) -> Any:
    body = {"source": {"id": "chromium-test", "kind": "device", "name": "Mätare"},
            "readings": readings}  # fmt: skip
    answer = httpx.post(f"{live.base}/v1/patients/me/sync", json=body, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


# The server side (subscriptions, payloads) runs on both databases in test_mina_settings and
# tests/app/push; the browser's part is what this tests, on SQLite.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_asta_turns_push_on_gets_a_neutral_notification_and_the_new_pages_pass_axe(
    seeded_server: LiveServer, chromium: Any, shots: Path
) -> None:
    live = seeded_server
    asta = live.token("asta")
    audit = Audit()
    context = audit.context(chromium, viewport={"width": 1280, "height": 900}, locale="sv-SE")
    context.grant_permissions(["notifications"], origin=live.base)
    page = context.new_page()
    _login(page, live.base, "asta")
    page.goto(f"{live.base}/mina/installningar")
    _until(page, lambda: page.evaluate(ACTIVE), "an active worker", seconds=90)
    audit.check(page, "mina settings")
    page.screenshot(path=str(shots / "mina-installningar.png"), full_page=True)

    page.click("#push-on")
    _until(page, lambda: page.evaluate("!document.getElementById('push-status').hidden"),
           "the button's answer")  # fmt: skip
    state = page.get_attribute("#push-status", "data-state")
    if state == "doneText":  # a browser with a push service: the real subscription
        subscription_id = page.evaluate("localStorage.getItem('mina-push-id')")
        how = "pushManager.subscribe"
    else:  # headless: no push service; the same posting path with a subscription JSON
        assert state == "failedText", state
        subscription_id = page.evaluate(
            "(json) => window.minaPush.postSubscription(json)", SUBSCRIPTION
        )
        how = "minaPush.postSubscription"
    assert subscription_id
    print(f"push subscription posted via {how}: {subscription_id}")

    # Her urgent advice queues a push for that subscription: the neutral title, no value.
    now = datetime.now(UTC)
    synced = _sync(live, asta, [{"client_id": "push-spo2", "type": "spo2",
                                 "time": now.isoformat(), "unit": "%", "value": 85}])  # fmt: skip
    assert synced["advice"], synced
    log = httpx.get(f"{live.base}/v1/patients/me/notifications", headers=asta, timeout=30)
    mine = [i for i in log.json()["items"] if i["subscription_id"] == subscription_id]
    assert mine and all(i["title"] == NEUTRAL for i in mine), mine
    item = mine[0]
    payload = {"title": item["title"], "advice_id": item["advice_id"], "priority": item["priority"],
               "patient_id": synced["advice"][0].get("patient_id"),
               "url": f"/patients/x/advice/{item['advice_id']}"}  # fmt: skip

    # The push, delivered to the service worker, is shown with that title.
    cdp = context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated",
           lambda event: registrations.extend(event["registrations"]))  # fmt: skip
    cdp.send("ServiceWorker.enable")
    found = _until(page, lambda: [r for r in registrations
                                  if r["scopeURL"].startswith(f"{live.base}/mina")
                                  and not r.get("isDeleted")],
                   "the worker's registration")  # fmt: skip
    delivered = {"origin": live.base, "registrationId": found[0]["registrationId"],
                 "data": json.dumps(payload)}  # fmt: skip
    cdp.send("ServiceWorker.deliverPushMessage", delivered)
    titles = _until(page, lambda: page.evaluate(NOTIFICATIONS), "a notification")
    assert titles == [NEUTRAL], titles
    print(f"notification shown: {titles}")

    # Her values over time: a week of weights, an older one, at 24 h and 90 days.
    weights = [
        {
            "client_id": f"w{d}",
            "type": "weight",
            "unit": "kg",
            "value": 72 + d / 10,
            "time": (now - timedelta(days=d, hours=1)).isoformat(),
        }
        for d in range(0, 40, 3)
    ]
    _sync(live, asta, weights)
    for zoom in ("24h", "90d"):
        page.goto(f"{live.base}/mina/varden?range={zoom}")
        assert page.locator("figure.mina-chart[data-type='weight']").count() == 1
        audit.check(page, f"mina values {zoom}")
    assert "Din gräns" in page.inner_text("figure.mina-chart[data-type='spo2']")
    page.goto(f"{live.base}/mina/varden")
    page.screenshot(path=str(shots / "mina-varden.png"), full_page=True)

    # A goal the team proposed, on her goals page.
    asta_id = httpx.get(f"{live.base}/v1/me", headers=asta).json()["patients"][0]["id"]
    today = now.date()
    goal = {"title": "Väga under 71 kilo", "lifecycle": "proposed",
            "measure": {"type": "weight", "aggregate": "last", "window_days": 14},
            "target": {"value": 71.0, "unit": "kg", "direction": "below"},
            "start": (today - timedelta(days=30)).isoformat(),
            "due": (today + timedelta(days=90)).isoformat(),
            "milestones": [{"title": "Ett kilo",
                            "target": {"value": 72.0, "unit": "kg"}}]}  # fmt: skip
    made = httpx.post(f"{live.base}/v1/patients/{asta_id}/goals", json=goal,
                      headers=live.token("karin"), timeout=60)  # fmt: skip
    assert made.status_code == 201, made.text
    page.goto(f"{live.base}/mina/mal")
    assert page.locator("form.decision-form").count() == 1
    audit.check(page, "mina goals")
    page.click("form.decision-form button[value='agreed']")
    page.wait_for_selector(".notice-success")
    assert "Du har sagt ja till målet" in page.inner_text(".notice-success")

    page.set_viewport_size({"width": 375, "height": 800})
    for name, path in (("values", "/mina/varden?range=90d"), ("settings", "/mina/installningar"),
                       ("goals", "/mina/mal")):  # fmt: skip
        page.goto(f"{live.base}{path}")
        assert _no_sideways_scroll(page), f"{name} scrolls sideways at 375 px"
        audit.check(page, f"mina {name} at 375 px")
    page.goto(f"{live.base}/mina/varden?range=90d")
    page.screenshot(path=str(shots / "mina-varden-375px.png"), full_page=True)
    context.close()

    serious = audit.by_impact.get("serious", 0)
    critical = audit.by_impact.get("critical", 0)
    print(f"mina push/values/goals: pages={audit.pages} serious={serious} critical={critical}")
    assert not audit.serious, "\n".join(audit.serious)
