"""AT-24 (first pages): the care team's pages in Chromium against a real uvicorn.

Eva logs in, opens her worklist and Asta's flag, and acknowledges it with a note using the
keyboard only. On every page axe-core (vendored, tests/app/web/vendor) must find no serious or
critical violation, and at 375 px wide and at 200 % zoom (640 CSS px) nothing scrolls
sideways. Screenshots go to a temporary directory, or to ``SELFCARE_SCREENSHOTS`` when set.

Needs the Debian package ``chromium`` (``/usr/bin/chromium``; `.ci/run` installs it) and
the ``playwright`` Python package; Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app.factories import batch, bp, scalar
from tests.app.web.conftest import IN_CHROMIUM
from tests.live import LiveServer

AXE = Path(__file__).with_name("vendor") / "axe.min.js"
WIDTHS = {"375px": 375, "zoom200": 640, "desktop": 1280}

pytestmark = IN_CHROMIUM


def _asta_flag(live: LiveServer) -> tuple[str, int]:
    """Asta's open flag the story is about (her weight gain, when seeded), and Eva's count."""
    eva = httpx.get(f"{live.base}/v1/flags", headers=live.token("eva")).json()["items"]
    asta = [f for f in eva if f["patient"]["display_name"] == "Asta Berglund"]
    if not asta:  # no seeded flag of hers: a fast pulse gives one
        reading = batch(scalar("pulse", 130, "/min"))
        synced = httpx.post(
            f"{live.base}/v1/patients/me/sync", json=reading, headers=live.token("asta")
        )
        assert synced.status_code == 200, synced.text
        return _asta_flag(live)
    weight = [f for f in asta if "weight" in f["rule"]["id"]]
    return str((weight or asta)[0]["id"]), len(eva)


class Audit:
    """axe-core's serious and critical violations, and the page's CSP refusals, page by page.

    The pages run under their real Content-Security-Policy (no ``bypass_csp``): a style
    attribute or an inline script the policy refuses is counted as a serious violation, since
    what it drew is missing for every user. axe is run through Playwright's ``evaluate`` (the
    DevTools protocol), which the policy does not govern.
    """

    def __init__(self) -> None:
        self.pages = 0
        self.by_impact: dict[str, int] = {}
        self.serious: list[str] = []

    def context(self, chromium: Any, **options: Any) -> Any:
        """A browser context whose pages record what their CSP refused."""
        context = chromium.new_context(**options)
        context.add_init_script(CSP_WATCH)
        return context

    def check(self, page: Any, name: str) -> None:
        """Run axe on the page as it is now, and collect the CSP refusals so far."""
        if not page.evaluate("typeof axe !== 'undefined'"):
            page.evaluate(AXE.read_text(encoding="utf-8"))
        result = page.evaluate("async () => await axe.run(document)")
        self.pages += 1
        for violation in result["violations"]:
            impact = violation.get("impact") or "none"
            self.by_impact[impact] = self.by_impact.get(impact, 0) + 1
            if impact in ("serious", "critical"):
                targets = [n["target"] for n in violation["nodes"]][:3]
                self.serious.append(f"{name}: {violation['id']} ({impact}) {targets}")
        for refused in page.evaluate("window.__cspRefused || []"):
            self.by_impact["csp"] = self.by_impact.get("csp", 0) + 1
            self.serious.append(f"{name}: CSP refused {refused}")


# Every refusal of the page's Content-Security-Policy, kept for Audit.check.
CSP_WATCH = """
window.__cspRefused = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspRefused.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + e.sample);
});
"""


def _no_sideways_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def _tab_to(page: Any, script: str, limit: int = 60) -> None:
    """Press Tab until ``script`` (a JS expression on ``el``, the focused element) holds."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return {script}; }})()"):
            return
    raise AssertionError(f"Tab never reached: {script}")


def test_eva_acknowledges_a_flag_by_keyboard_and_every_page_passes_axe(
    seeded_server: LiveServer, chromium: Any, shots: Path
) -> None:
    live = seeded_server
    flag_id, open_flags = _asta_flag(live)
    audit = Audit()
    # axe is injected as a script: the pages' CSP (scripts from this origin only) would stop it.
    context = audit.context(chromium, viewport={"width": 1280, "height": 900})
    page = context.new_page()

    page.goto(f"{live.base}/login")
    audit.check(page, "login")
    page.screenshot(path=str(shots / "login.png"), full_page=True)
    # Keyboard only: to the first person (Eva Ek, checked), then to the button.
    _tab_to(page, "el.name === 'handle'")
    assert page.evaluate("document.activeElement.value") == "eva"
    _tab_to(page, "el.type === 'submit' && el.form.action.endsWith('/login')")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live.base}/vard")
    assert "Arbetslista" in page.inner_text("h1")
    rows = page.locator("table.worklist tbody tr")
    assert rows.count() == open_flags
    names = page.inner_text("table.worklist tbody")
    assert "Allan Andersson" in names and "Asta Berglund" in names
    audit.check(page, "worklist")
    page.screenshot(path=str(shots / "worklist.png"), full_page=True)

    _tab_to(page, f"el.href && el.href.endsWith('/vard/flags/{flag_id}')")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live.base}/vard/flags/{flag_id}")
    audit.check(page, "flag")
    page.screenshot(path=str(shots / "flag.png"), full_page=True)

    _tab_to(page, "el.id === 'acknowledge-note'")
    page.keyboard.type("Ringt Asta, hon mår bra. Ny kontroll i morgon.")
    _tab_to(page, "el.type === 'submit' && el.form.action.endsWith('/acknowledge')")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Flaggan är kvitterad.")
    assert "Eva Ek, Vårdcentralen Norra" in page.inner_text("main")
    assert "Ringt Asta, hon mår bra." in page.inner_text(".notes")
    audit.check(page, "flag acknowledged")
    page.screenshot(path=str(shots / "flag-acknowledged.png"), full_page=True)

    # The filter (htmx swaps the rows in) and the English switch.
    page.goto(f"{live.base}/vard")
    page.select_option("#f-severity", "high")
    page.click("button:has-text('Visa')")
    page.wait_for_url("**severity=high**")
    tags = page.locator("table.worklist tbody .tag-high, table.worklist tbody .tag-moderate")
    assert tags.count() == page.locator("table.worklist tbody .tag-high").count()
    page.goto(f"{live.base}/vard?lang=en")
    assert page.get_attribute("html", "lang") == "en"
    audit.check(page, "worklist (en)")

    # Narrow and zoomed: nothing scrolls sideways.
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 800})
        for name, path in (("worklist", "/vard?lang=sv"), ("flag", f"/vard/flags/{flag_id}")):
            page.goto(f"{live.base}{path}")
            if label != "desktop":
                page.screenshot(path=str(shots / f"{name}-{label}.png"), full_page=True)
            assert _no_sideways_scroll(page), f"{name} scrolls sideways at {label}"
        if label == "375px":
            audit.check(page, "flag at 375 px")

    context.close()
    serious = audit.by_impact.get("serious", 0)
    critical = audit.by_impact.get("critical", 0)
    print(f"AT-24 pages={audit.pages} violations_serious={serious} violations_critical={critical}")
    print(f"axe violations by impact: {audit.by_impact}; screenshots in {shots}")
    assert not audit.serious, "\n".join(audit.serious)


def _login(page: Any, base: str, handle: str) -> None:
    page.goto(f"{base}/login")
    page.check(f"input[name='handle'][value='{handle}']")
    page.click("form[action='/login'] button[type='submit']")
    page.wait_for_url(f"{base}/vard")


# The pages' data access is the API's (tested on both databases); the main story above runs
# on both, this walk through every page on SQLite (each run costs a seeded server and Chromium).
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_patient_list_overview_and_plan_editor_pass_axe_and_fit_375px(
    seeded_server: LiveServer, chromium: Any, shots: Path
) -> None:
    live = seeded_server
    _asta_flag(live)  # Asta has an open flag (an event on her timeline)
    audit = Audit()
    context = audit.context(chromium, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, live.base, "eva")

    page.click("header a[href='/vard/patients']")
    page.wait_for_url(f"{live.base}/vard/patients")
    names = page.inner_text("table.patient-list tbody")
    assert "Allan Andersson" in names and "Asta Berglund" in names and "Gunilla" not in names
    assert page.locator("td.adherence[title]").count() == 2
    audit.check(page, "patients")
    page.screenshot(path=str(shots / "patients.png"), full_page=True)

    page.click("a.patient-name:has-text('Asta Berglund')")
    page.wait_for_selector("figure.chart[data-type='weight']")
    asta_url = page.url
    for type_ in ("weight", "spo2", "pulse", "blood_pressure"):
        assert page.locator(f"figure.chart[data-type='{type_}'] polyline").count() >= 1, type_
    assert page.locator("figure.chart[data-type='spo2'] line.limit[data-value='88']").count() == 1
    assert page.locator(".event-row[data-kind='flag']").count() == 1
    audit.check(page, "overview")
    page.screenshot(path=str(shots / "timeline.png"), full_page=True)

    # Zoom with htmx: the section is swapped, the address follows, the page stays.
    page.click("a.zoom-link[data-zoom='30d']")
    page.wait_for_selector("a.zoom-link[data-zoom='30d'][aria-current='page']")
    assert page.url.endswith("range=30d")
    page.click("a.zoom-link[data-zoom='24h']")
    page.wait_for_selector("a.zoom-link[data-zoom='24h'][aria-current='page']")
    audit.check(page, "overview 24 h")

    page.goto(f"{asta_url.split('?')[0]}/plan")
    audit.check(page, "plan editor")
    page.fill("#r0-gain", "1,5")
    page.click("button:has-text('Förhandsgranska')")
    page.wait_for_selector("table.burden-table")
    assert page.locator("table.burden-table tr[data-rule='weight-gain-hf']").count() == 1
    audit.check(page, "plan preview")
    page.screenshot(path=str(shots / "plan-preview.png"), full_page=True)
    page.fill("#r0-gain", "-1")
    page.click("button:has-text('Spara')")
    page.wait_for_selector(".error-summary")
    assert "Värdet måste vara mellan 0,5 och 5 kg." in page.inner_text(".error-summary")
    audit.check(page, "plan error")
    page.screenshot(path=str(shots / "plan-error.png"), full_page=True)

    # Allan's goals (seeded, agreed with Eva): from his overview's "Alla mål".
    page.goto(f"{live.base}/vard/patients")
    page.click("a.patient-name:has-text('Allan Andersson')")
    page.click("a:has-text('Alla mål')")
    page.wait_for_selector("li.goal-card")
    allan_goals = page.url.replace(live.base, "")
    assert page.locator("li.goal-card").count() == 3
    assert page.locator("svg.progress-svg[role='img']").count() >= 1
    audit.check(page, "goals")
    page.screenshot(path=str(shots / "goals.png"), full_page=True)

    pages = (
        ("patients", "/vard/patients"),
        ("timeline", asta_url.replace(live.base, "").split("?")[0] + "?range=90d"),
        ("plan", asta_url.replace(live.base, "").split("?")[0] + "/plan"),
        ("goals", allan_goals),
    )
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 800})
        for name, path in pages:
            page.goto(f"{live.base}{path}")
            if label != "desktop":
                page.screenshot(path=str(shots / f"{name}-{label}.png"), full_page=True)
            assert _no_sideways_scroll(page), f"{name} scrolls sideways at {label}"
            if label == "375px":
                audit.check(page, f"{name} at 375 px")

    # A home mean over a dense week: the flag page lists the latest 30 and says of how many.
    week = [bp(150, 95, minutes_ago=60 + i * 60) for i in range(140)]  # hourly, ~6 days
    synced = httpx.post(
        f"{live.base}/v1/patients/me/sync", json=batch(*week), headers=live.token("allan")
    )
    assert synced.status_code == 200, synced.text
    flags = httpx.get(f"{live.base}/v1/flags", headers=live.token("eva")).json()["items"]
    (mean,) = [f for f in flags if f["rule"]["id"] == "bp-home-mean-high"]
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 800})
        page.goto(f"{live.base}/vard/flags/{mean['id']}")
        caption = page.locator("table caption")
        assert caption.is_visible()
        assert caption.inner_text().endswith(" mätvärden som regeln räknade med."), label
        assert "De senaste 30 av " in caption.inner_text()
        assert page.locator("table tbody tr").count() == 30
        assert "mm[Hg]" not in page.inner_text("main")  # units as people write them: mmHg
        assert _no_sideways_scroll(page), f"the dense flag scrolls sideways at {label}"
        audit.check(page, f"dense flag at {label}")
        page.screenshot(path=str(shots / f"flag-dense-{label}.png"), full_page=label != "desktop")
    context.close()

    # Gunilla's CGM (Dr Olof's patient): a day of 288 points and 90 days, timed end to end.
    context = audit.context(chromium, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, live.base, "olof")
    page.goto(f"{live.base}/vard/patients")
    page.click("a.patient-name:has-text('Gunilla')")
    page.wait_for_selector("figure.chart")
    gunilla = page.url.split("?")[0]
    timings = {}
    for zoom in ("24h", "14d", "90d"):
        started = time.perf_counter()
        page.goto(f"{gunilla}?range={zoom}")
        page.wait_for_selector("figure.chart")
        timings[zoom] = round((time.perf_counter() - started) * 1000)
    page.screenshot(path=str(shots / "timeline-cgm-90d.png"), full_page=True)

    # Her CGM summary with the AGP, from the overview's link.
    page.click("p.cgm-link a")
    page.wait_for_selector("svg.agp-svg[role='img']")
    assert page.locator("table.agp-table tbody tr").count() == 24
    assert page.locator("table.range-table tbody tr").count() == 5
    audit.check(page, "cgm")
    page.screenshot(path=str(shots / "cgm.png"), full_page=True)
    cgm = page.url.replace(live.base, "").split("?")[0]
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 800})
        page.goto(f"{live.base}{cgm}?days=14")
        if label != "desktop":
            page.screenshot(path=str(shots / f"cgm-{label}.png"), full_page=True)
        assert _no_sideways_scroll(page), f"cgm scrolls sideways at {label}"
        if label == "375px":
            audit.check(page, "cgm at 375 px")
    context.close()

    serious = audit.by_impact.get("serious", 0)
    critical = audit.by_impact.get("critical", 0)
    print(f"patient pages: pages={audit.pages} serious={serious} critical={critical}")
    print(f"axe violations by impact: {audit.by_impact}; Gunilla's timeline ms: {timings}")
    assert not audit.serious, "\n".join(audit.serious)
