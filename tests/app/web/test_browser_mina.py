"""AT-24 (patient pages): Asta's and Maria's pages in Chromium against a real uvicorn.

Asta logs in, reads her overview, writes down a weight by keyboard only and sees the answer,
and reads who has read her data; Maria acts for Asta. On every page axe-core finds no serious
or critical violation, and at 375 px and 200 % zoom nothing scrolls sideways. Screenshots of
the overview, the entry form and the access log go where ``test_browser`` puts its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.app.web.conftest import IN_CHROMIUM
from tests.app.web.test_browser import WIDTHS, Audit, _no_sideways_scroll, _tab_to
from tests.live import LiveServer

pytestmark = IN_CHROMIUM


def _login(page: Any, base: str, handle: str) -> None:
    page.goto(f"{base}/login")
    page.check(f"input[name='handle'][value='{handle}']")
    page.click("form[action='/login'] button[type='submit']")
    page.wait_for_url(f"{base}/mina")


def test_asta_enters_a_weight_by_keyboard_and_every_patient_page_passes_axe(
    seeded_server: LiveServer, chromium: Any, shots: Path
) -> None:
    live = seeded_server
    audit = Audit()
    context = audit.context(chromium, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, live.base, "asta")
    assert page.inner_text("h1") == "Hej Asta"
    assert "Karin Holm" in page.inner_text("section[aria-labelledby='call-title']")
    audit.check(page, "mina overview")
    page.screenshot(path=str(shots / "mina-overview.png"), full_page=True)

    page.click("a.button:has-text('Skriv in ett värde')")
    page.wait_for_url(f"{live.base}/mina/varden/ny")
    audit.check(page, "mina entry choice")
    page.screenshot(path=str(shots / "mina-entry-choice.png"), full_page=True)
    # By keyboard: to "Vikt", Enter, to the weight field, type, then Enter submits the form.
    _tab_to(page, "el.dataset.type === 'weight'")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live.base}/mina/varden/ny?type=weight")
    audit.check(page, "mina entry")
    page.screenshot(path=str(shots / "mina-entry.png"), full_page=True)
    _tab_to(page, "el.id === 'weight-value'")
    page.keyboard.type("sjuttio")
    page.keyboard.press("Enter")
    page.wait_for_selector(".error-summary")
    assert "Skriv ett tal, till exempel 72,4." in page.inner_text(".error-summary")
    audit.check(page, "mina entry error")
    page.fill("#weight-value", "76,5")  # well above her usual weight: advice at once
    page.focus("#weight-value")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live.base}/mina")
    notice = page.inner_text(".notice-success")
    assert "Värdet är sparat." in notice, notice
    assert "76,5" in page.inner_text("li.value-card[data-type='weight']")

    page.click("header a[href='/mina/atkomst']")
    page.wait_for_url(f"{live.base}/mina/atkomst")
    assert page.locator("table.access-table tbody tr").count() >= 1
    audit.check(page, "mina access log")
    page.screenshot(path=str(shots / "mina-access.png"), full_page=True)

    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 800})
        for name, path in (("mina", "/mina"), ("entry", "/mina/varden/ny?type=blood_pressure"),
                           ("access", "/mina/atkomst")):  # fmt: skip
            page.goto(f"{live.base}{path}")
            assert _no_sideways_scroll(page), f"{name} scrolls sideways at {label}"
            if label == "375px":
                audit.check(page, f"{name} at 375 px")
                page.screenshot(path=str(shots / f"mina-{name}-375px.png"), full_page=True)
    context.close()

    context = audit.context(chromium, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, live.base, "maria")
    assert "Du ser uppgifter för Asta Berglund." in page.inner_text(".acting-for")
    assert page.locator("li.value-card[data-type='weight']").count() == 1
    audit.check(page, "mina as Maria")
    context.close()

    serious = audit.by_impact.get("serious", 0)
    critical = audit.by_impact.get("critical", 0)
    print(f"mina pages: pages={audit.pages} serious={serious} critical={critical}")
    assert not audit.serious, "\n".join(audit.serious)
