"""AT-26: values written down offline in the patient's app arrive once when the network returns.

Asta opens the entry form (the service worker takes control and keeps a copy), the network
goes away, she writes down two weights, reloads the page (served by the service worker) and
writes a third. The network comes back while the first send's answer is lost on the way (the
server stored the values; the browser never heard): the values stay on the device, go again,
and the server recognises them. Every value is stored exactly once, none is lost.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app.web.conftest import IN_CHROMIUM
from tests.app.web.test_browser import Audit
from tests.app.web.test_browser_mina import _login
from tests.live import LiveServer

pytestmark = IN_CHROMIUM

WEIGHTS = ("72,1", "72,3", "72,5")


def _manual(live: LiveServer, headers: dict[str, str]) -> dict[str, list[float]]:
    """Asta's weights by client id (each client id's stored values)."""
    answer = httpx.get(
        f"{live.base}/v1/patients/me/readings", params={"type": "weight", "limit": 1000},
        headers=headers, timeout=30,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    found: dict[str, list[float]] = {}
    for item in answer.json()["items"]:
        if item["status"] != "entered_in_error":
            found.setdefault(item["client_id"], []).append(float(item["value"]))
    return found


def _waiting_is(page: Any, n: int) -> bool:
    """Wait until the page says ``n`` values wait on the device."""
    _until(lambda: _waiting(page) == n, f"{n} values waiting")
    return True


def _waiting(page: Any) -> int:
    return int(page.get_attribute("#queue-status", "data-waiting") or 0)


def _until_page(page: Any, script: str, seconds: float = 30) -> None:
    """Poll a JS expression through ``evaluate`` (the CSP forbids wait_for_function's eval)."""
    _until(lambda: bool(page.evaluate(script)), script, seconds)


PAGE: list[Any] = []  # the page whose events are pumped while waiting


def _until(check: Any, what: str, seconds: float = 30) -> None:
    """Wait for ``check``, letting Playwright run its handlers meanwhile (the route below)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        PAGE[0].wait_for_timeout(200)
    raise AssertionError(f"never: {what}")


# The server side of this story is /mina/sync, the API's sync (both databases); the browser's
# queue is what this tests, on SQLite.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_values_written_offline_are_stored_once_when_the_network_returns(
    seeded_server: LiveServer, chromium: Any, shots: Path
) -> None:
    live = seeded_server
    asta = live.token("asta")
    before = _manual(live, asta)
    audit = Audit()
    context = audit.context(chromium, viewport={"width": 400, "height": 900})
    page = context.new_page()
    PAGE[:] = [page]
    _login(page, live.base, "asta")
    page.goto(f"{live.base}/mina/varden/ny?type=weight")
    # The worker is active; a page whose navigation began before it activated may stay
    # uncontrolled (clients.claim() ran before the page existed), so the reload is what
    # brings the form under the worker, which keeps a copy of it.
    _until_page(page, "navigator.serviceWorker.getRegistration('/mina')"
                      ".then((r) => !!(r && r.active))")  # fmt: skip
    page.reload()
    page.wait_for_selector("#weight-value")
    _until_page(page, "!!(navigator.serviceWorker && navigator.serviceWorker.controller)")

    context.set_offline(True)
    for n, weight in enumerate(WEIGHTS[:2], start=1):
        page.fill("#weight-value", weight)
        page.click("button:has-text('Spara värdet')")
        _until_page(page, f"document.getElementById('queue-status').dataset.waiting === '{n}'")
    page.reload()  # offline: the service worker's copy
    assert _waiting_is(page, 2)
    assert "2 värden är sparade i telefonen" in page.inner_text("#queue-status")
    page.fill("#weight-value", WEIGHTS[2])
    page.click("button:has-text('Spara värdet')")
    assert _waiting_is(page, 3)
    audit.check(page, "entry offline")
    page.screenshot(path=str(shots / "mina-offline.png"), full_page=True)
    assert _manual(live, asta) == before  # nothing has left the device

    # The network returns, and the first send's answer is lost after the server stored it.
    sends: list[str] = []

    def lose_first_answer(route: Any) -> None:
        sends.append(route.request.post_data or "")
        if len(sends) == 1:
            route.fetch()  # reaches the server …
            route.abort("connectionreset")  # … but the answer never reaches the page
        else:
            route.continue_()

    context.route("**/mina/sync*", lose_first_answer)
    context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    _until(lambda: len(_manual(live, asta)) == len(before) + 3, "the server has the three values")
    assert _waiting(page) == 3  # the page never heard: all three still wait on the device

    page.reload()  # online: the waiting values go again, and are recognised
    # The page is rendered with data-waiting="0" before its script has counted the queue, so
    # wait for what the script says once the values have gone, not for the count alone.
    _until(
        lambda: "Dina värden är skickade." in page.inner_text("#queue-status"),
        "the page says the values are sent",
    )
    assert _waiting(page) == 0
    assert len(sends) >= 2
    after = _manual(live, asta)
    new = {cid: values for cid, values in after.items() if cid not in before}
    stored = sorted(v for values in new.values() for v in values)
    duplicates = sum(len(values) - 1 for values in new.values())
    assert stored == [72.1, 72.3, 72.5] and duplicates == 0, new
    context.close()
    print(f"AT-26 entered={len(WEIGHTS)} stored={len(stored)} duplicates={duplicates}")
    assert not audit.serious, "\n".join(audit.serious)
