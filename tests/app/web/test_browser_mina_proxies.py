"""The proxies and messages pages in Chromium against a real uvicorn (issue 16).

Asta invites a proxy and sees the code; Maria types it in on her own page; Asta approves;
Maria switches between her own page and Asta's. axe-core finds no serious or critical
violation on any of these pages, at 1280 and at 375 px, and nothing scrolls sideways. The
proxy page's screenshot is ``mina-ombud.png`` (the README shows it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.app.web.conftest import IN_CHROMIUM
from tests.app.web.test_browser import Audit, _no_sideways_scroll
from tests.live import LiveServer

pytestmark = IN_CHROMIUM


def _login(page: Any, base: str, handle: str) -> None:
    page.goto(f"{base}/login")
    page.check(f"input[name='handle'][value='{handle}']")
    page.click("form[action='/login'] button[type='submit']")
    page.wait_for_url(f"{base}/mina*")


# The pages' data access is the API's (tested on both databases): this walk runs on SQLite.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_asta_invites_maria_accepts_and_switches_between_herself_and_asta(
    seeded_server: LiveServer, chromium: Any, shots: Path
) -> None:
    live = seeded_server
    audit = Audit()
    asta = audit.context(
        chromium, viewport={"width": 1280, "height": 900}, locale="sv-SE"
    ).new_page()
    _login(asta, live.base, "asta")
    asta.click("header a[href='/mina/ombud']")
    asta.wait_for_url(f"{live.base}/mina/ombud")
    audit.check(asta, "ombud (Asta)")
    asta.uncheck("#scope-receive_advice")
    asta.check("#scope-message")
    asta.click("form.invite-form button[type='submit']")
    asta.wait_for_selector(".invitation-code")
    code = asta.inner_text(".invitation-code").strip()
    assert "Den gäller i 72 timmar och kan användas en gång." in asta.inner_text("main")
    audit.check(asta, "ombud with the code")

    maria = audit.context(
        chromium, viewport={"width": 1280, "height": 900}, locale="sv-SE"
    ).new_page()
    _login(maria, live.base, "maria")
    assert "Du ser uppgifter för Asta Berglund." in maria.inner_text(".acting-for")
    maria.click("header a[href^='/mina/ombud']")
    maria.wait_for_selector("h1:has-text('Ombud för Asta Berglund')")
    audit.check(maria, "ombud (Maria for Asta)")
    maria.click("nav.person-switch a:has-text('Mina egna')")
    maria.wait_for_url(f"{live.base}/mina/ombud")
    assert "Du är ombud för" in maria.inner_text("main")
    maria.fill("#code", code.lower())
    maria.press("#code", "Enter")
    maria.wait_for_selector(".notice-success")
    assert "Koden fungerade." in maria.inner_text(".notice-success")
    audit.check(maria, "ombud (Maria, her own)")

    asta.goto(f"{live.base}/mina/ombud")
    assert asta.locator("li.grant[data-status='pending']").count() == 1
    asta.screenshot(path=str(shots / "mina-ombud.png"), full_page=True)
    asta.click("li.grant[data-status='pending'] button:has-text('Godkänn')")
    asta.wait_for_selector(".notice-success")
    assert "Maria Berglund kan nu se dina värden." in asta.inner_text(".notice-success")
    asta.click("header a[href='/mina/meddelanden']")
    asta.wait_for_url(f"{live.base}/mina/meddelanden")
    asta.fill("#body", "Hej!\nJag är yr på morgonen.")
    asta.click("form.message-form button[type='submit']")
    asta.wait_for_selector(".notice-success")
    assert "Jag är yr på morgonen." in asta.inner_text("ol.message-list")
    audit.check(asta, "messages (Asta)")

    # Maria switches between her own page and Asta's, and now may read Asta's messages.
    maria.goto(f"{live.base}/mina/ombud")
    maria.click("nav.person-switch a:has-text('Asta Berglund')")
    maria.wait_for_selector("h1:has-text('Ombud för Asta Berglund')")
    assert "skriva till vården" in maria.inner_text("main")
    maria.click("header a[href^='/mina/meddelanden']")
    maria.wait_for_selector("ol.message-list")
    assert "Jag är yr på morgonen." in maria.inner_text("ol.message-list")
    audit.check(maria, "messages (Maria for Asta)")

    for who, page, path in (
        ("asta", asta, "/mina/ombud"),
        ("maria", maria, "/mina/ombud"),
        ("maria-for-asta", maria, maria.url.replace("/mina/meddelanden", "/mina/ombud")),
        ("asta-messages", asta, "/mina/meddelanden"),
    ):
        page.set_viewport_size({"width": 375, "height": 800})
        page.goto(path if path.startswith("http") else f"{live.base}{path}")
        assert _no_sideways_scroll(page), f"{who} scrolls sideways at 375 px"
        audit.check(page, f"{who} at 375 px")
        if who == "asta":
            page.screenshot(path=str(shots / "mina-ombud-375px.png"), full_page=True)

    serious = audit.by_impact.get("serious", 0)
    critical = audit.by_impact.get("critical", 0)
    print(f"ombud pages: pages={audit.pages} serious={serious} critical={critical}")
    assert not audit.serious, "\n".join(audit.serious)
