"""The goals page and the CGM page of a patient, in process (both databases).

Allan's sample goals (agreed with Eva) and Gunilla's sample CGM (Dr Olof's patient) are
loaded as `selfcare seed` loads them; the pages must show what the API answers for the same
patient and window, refuse a clinician of another team with the 404 page, and audit each read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent
from app.auth.models import User
from app.clock import clock, utcnow
from app.config import Settings
from app.db import transaction
from app.patients.models import Patient
from app.seed import load_goals, load_readings
from app.web import cgm_page, charts_svg
from tests.app.factories import patient_id
from tests.app.web.conftest import Browser

Auth = Callable[[str], dict[str, str]]


def _seed(
    settings: Settings, factory: sessionmaker[Session], handle: str, *, goals_by: str | None = None
) -> str:
    """A patient's sample readings (and goals, written by ``goals_by``), as the seed loads them."""
    root = settings.sample_data_dir
    sources = {s["id"]: s for s in json.loads((root / "personas.json").read_text())["sources"]}
    now = utcnow()
    with transaction(factory) as session:
        patient = session.get(Patient, patient_id(session, handle))
        assert patient is not None
        if goals_by is not None:
            author = session.scalar(select(User.id).where(User.handle == goals_by))
            load_goals(session, patient, root / "goals" / f"{handle}.json", author, now)
        path = root / "readings" / f"{handle}.csv"
        load_readings(session, settings, patient, path, sources, now)
        return patient.id


def _whole(value: float) -> str:
    return str(Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _one(session: Session, before: int) -> list[tuple[str, str, str, str]]:
    rows = session.scalars(select(AuditEvent).where(AuditEvent.seq > before)).all()
    return [(r.actor_handle, r.relation, r.action, r.resource) for r in rows]


def _last_seq(session: Session) -> int:
    return session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)) or 0


@pytest.fixture
def gunilla(settings: Settings, factory: sessionmaker[Session]) -> str:
    """Gunilla's sample CGM, five-minute values over the last five weeks."""
    return _seed(settings, factory, "gunilla")


@pytest.fixture
def gunilla_hour(client: TestClient, auth: Auth, session: Session) -> str:
    """Gunilla with an hour of CGM values only (enough for the overview's link to the page)."""
    now = utcnow()
    readings = [
        {"client_id": f"cgm-{i}", "type": "cgm_glucose", "unit": "mmol/L", "value": 6.5,
         "time": (now - timedelta(minutes=5 * i)).isoformat()}
        for i in range(12)
    ]  # fmt: skip
    body = {"source": {"id": "g7", "kind": "device", "name": "Dexcom G7"}, "readings": readings}
    synced = client.post("/v1/patients/me/sync", json=body, headers=auth("gunilla"))
    assert synced.status_code == 200, synced.text
    return patient_id(session, "gunilla")


@pytest.fixture
def allan(settings: Settings, factory: sessionmaker[Session]) -> str:
    """Allan's sample goals, proposed by Eva, and his readings."""
    return _seed(settings, factory, "allan", goals_by="eva")


def test_olof_sees_gunillas_cgm_as_the_api_computes_it(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session, gunilla: str
) -> None:
    clock.fixed = utcnow()  # the page and the API look at the same 14 × 24 h
    olof = browser()
    olof.login("olof")
    before = _last_seq(session)
    page = olof.client.get(f"/vard/patients/{gunilla}/cgm?days=14")
    assert page.status_code == 200, page.text[:500]
    assert _one(session, before) == [("olof", "care_team", "read", "GET /vard/patients/{pid}/cgm")]
    text = page.text
    api = client.get(
        f"/v1/patients/{gunilla}/summary", params={"type": "cgm_glucose", "days": 14},
        headers=auth("olof"),
    ).json()  # fmt: skip
    assert api["n"] > 2000

    # The AGP: one SVG with both bands, the median and the target band, labelled.
    assert text.count('<svg class="agp-svg"') == 1
    svg = re.search(r'<svg class="agp-svg".*?</svg>', text, re.S).group(0)  # type: ignore[union-attr]
    assert 'role="img"' in svg and 'aria-labelledby="agp-title agp-summary"' in svg
    assert 'viewBox="0 0 1000 400"' in svg and 'data-hours="24"' in svg
    for part in ("agp-outer", "agp-inner", "agp-median", "agp-target"):
        assert f'class="{part}"' in svg, part
    # Round labels on the y-axis (0, 2, … 16 at least) and 00–24 on the x-axis, evenly
    # spaced by the style sheet (the pages' CSP refuses style attributes).
    axis = re.search(r'<div class="agp-y" aria-hidden="true">(.*?)</div>', text)
    assert axis and "style=" not in text
    labels = re.findall(r"<span>(\d+)</span>", axis.group(1))
    assert labels[:9] == ["0", "2", "4", "6", "8", "10", "12", "14", "16"]
    hours = text.split('class="agp-x-labels"', 1)[1].split("</div>")[0]
    assert re.findall(r"<span>(\d\d)</span>", hours) == [
        "00", "03", "06", "09", "12", "15", "18", "21", "24",
    ]  # fmt: skip
    # The table alternative: 24 hours, with the API's percentiles to one decimal.
    rows = re.findall(
        r'<tr data-hour="(\d+)"><th scope="row">([^<]+)</th>((?:<td>[^<]*</td>)+)', text
    )
    assert [int(h) for h, _, _ in rows] == list(range(24))
    noon = next(cells for h, _, cells in rows if h == "12")
    shown = re.findall(r"<td>([^<]*)</td>", noon)
    expected = [
        str(Decimal(str(api["agp"][12][p])).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
        .replace(".", ",")
        for p in ("p5", "p25", "p50", "p75", "p95")
    ]  # fmt: skip
    assert shown == expected
    assert re.search(r"Medianen är lägst kl\. \d\d–\d\d \(\d+,\d mmol/L\) och högst", text)

    # Time in ranges: the API's shares, each range once.
    ranges = dict(re.findall(r'<tr data-range="(\w+)" data-percent="([\d.]+)"', text))
    assert float(ranges["in_range"]) == api["tir"]
    assert float(ranges["very_low"]) == api["tbr_3_0"]
    assert float(ranges["very_high"]) == api["tar_13_9"]
    assert float(ranges["low"]) == pytest.approx(api["tbr_3_9"] - api["tbr_3_0"])
    assert float(ranges["high"]) == pytest.approx(api["tar_10_0"] - api["tar_13_9"])
    # The five shares come from three the API rounds to 4 places (in range, below 3.9, above
    # 10.0), so their sum is 100 within three half-units of the fourth place, whatever the
    # 14 days hold (100.0001 on some runs, as the window moves with the clock).
    assert sum(float(v) for v in ranges.values()) == pytest.approx(100, abs=3 * 0.00005 + 1e-9)
    in_range = re.search(r'<tr data-range="in_range".*?</tr>', text, re.S).group(0)  # type: ignore[union-attr]
    assert f"<strong>{_whole(api['tir'])} %</strong>" in in_range
    minutes = round(api["tir"] * 1440 / 100)
    assert f'data-minutes="{minutes}"' in in_range
    assert f"{minutes // 60} tim {minutes % 60} min" in in_range
    assert "3,9–10,0" in in_range and "I målområdet" in in_range
    # Mean to one decimal (mmol/L), GMI in mmol/mol, CV and wear whole.
    mean = Decimal(str(api["mean"])).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    assert f"<strong>{str(mean).replace('.', ',')} mmol/L</strong>" in text
    assert f"<strong>{_whole(api['gmi_mmol_mol'])} mmol/mol</strong>" in text
    assert f"<strong>{_whole(api['cv'])} %</strong>" in text
    assert f"<strong>{_whole(api['wear_percent'])} %</strong>" in text
    assert 'href="/vard/patients/' in text and 'data-days="14" aria-current="page"' in text

    # Another window by a plain link; English with a decimal point.
    week = olof.client.get(f"/vard/patients/{gunilla}/cgm?days=7&lang=en")
    assert week.status_code == 200
    assert 'data-days="7" aria-current="page"' in week.text
    assert "Time in ranges" in week.text and "3.9–10.0" in week.text
    assert '<html lang="en">' in week.text
    # An unknown window is the default one, not an error.
    odd = olof.client.get(f"/vard/patients/{gunilla}/cgm?days=abc&lang=sv")
    assert 'data-days="14" aria-current="page"' in odd.text


def test_the_overview_links_the_cgm_page_only_with_cgm(
    browser: Callable[[], Browser], session: Session, gunilla_hour: str, allan: str
) -> None:
    gunilla = gunilla_hour
    olof, eva = browser(), browser()
    olof.login("olof")
    eva.login("eva")
    overview = olof.client.get(f"/vard/patients/{gunilla}")
    assert f'href="/vard/patients/{gunilla}/cgm"' in overview.text
    assert f'href="/vard/patients/{gunilla}/goals"' in overview.text
    allans = eva.client.get(f"/vard/patients/{allan}")
    assert f'href="/vard/patients/{allan}/cgm"' not in allans.text
    assert f'href="/vard/patients/{allan}/goals">Alla mål</a>' in allans.text
    # Allan has no CGM: the page says so.
    none = eva.client.get(f"/vard/patients/{allan}/cgm")
    assert none.status_code == 200
    assert "Det finns inga sensorvärden (CGM) från de här dagarna." in none.text
    assert "agp-svg" not in none.text


def test_eva_sees_allans_goals_with_the_apis_progress(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session, allan: str
) -> None:
    eva = browser()
    eva.login("eva")
    before = _last_seq(session)
    page = eva.client.get(f"/vard/patients/{allan}/goals")
    assert page.status_code == 200, page.text[:500]
    assert _one(session, before) == [("eva", "care_team", "read", "GET /vard/patients/{pid}/goals")]
    text = page.text
    items = client.get(f"/v1/patients/{allan}/goals", headers=auth("eva")).json()["items"]
    assert len(items) == 3
    for goal in items:
        start = rf'<li class="goal goal-card" data-goal="{goal["id"]}"'
        card = re.search(start + r".*?</li>\s*(?=<li|</ul>)", text, re.S)
        assert card, goal["title"]
        html = card.group(0)
        assert goal["title"] in html
        percent = goal["progress"]["percent"]
        assert f'data-status="{goal["progress"]["status"]}"' in html
        assert f'data-lifecycle="{goal["lifecycle"]}"' in html and "Pågår" in html
        if percent is not None:
            assert f'data-percent="{percent}"' in html
            assert f"{_whole(percent)} % av målet" in html
            assert 'class="progress-svg"' in html and 'role="img"' in html
        assert "Eva Ek" in html  # who proposed it
    # The targets in words: strictly below 135/85; at most 91 kg; at least 7000 steps.
    assert "under 135/85 mmHg" in text
    assert "högst 91,0 kg" in text and "minst 7000 steg" in text
    assert "Bedömning: i fas" in text
    # The weight goal's milestone, pending or reached, with its target and date.
    assert "2 kilo till jul" in text and "94,0 kg" in text
    assert re.search(r'data-milestone="[^"]+" data-reached="(true|false)"', text)
    english = eva.client.get(f"/vard/patients/{allan}/goals?lang=en")
    assert "Goals and milestones" in english.text and "% of the goal" in english.text


def test_a_clinician_of_another_team_gets_the_404_page(
    browser: Callable[[], Browser], session: Session
) -> None:
    gunilla, allan = patient_id(session, "gunilla"), patient_id(session, "allan")
    eva, karin = browser(), browser()
    eva.login("eva")
    karin.login("karin")
    for who, pid, name in ((eva, gunilla, "Gunilla"), (karin, allan, "Allan")):
        for page in ("goals", "cgm"):
            refused = who.client.get(f"/vard/patients/{pid}/{page}")
            assert refused.status_code == 404, (name, page)
            assert name not in refused.text and "Sidan finns inte" in refused.text
    refusals = session.scalars(
        select(AuditEvent).where(AuditEvent.outcome == "refused:404")
    ).all()  # fmt: skip
    assert sorted(r.resource for r in refusals) == [
        "GET /vard/patients/{pid}/cgm", "GET /vard/patients/{pid}/cgm",
        "GET /vard/patients/{pid}/goals", "GET /vard/patients/{pid}/goals",
    ]  # fmt: skip


# --- The drawing, pure ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("highest", "top"), [(None, 16), (9.0, 16), (16.0, 16), (16.1, 18), (21.3, 22)]
)
def test_the_agp_axis_ends_on_an_even_number_at_least_16(highest: float | None, top: int) -> None:
    rows = [(h, 4.0, 5.0, 6.0, 7.0, highest) for h in range(24)]
    assert charts_svg.agp_top(rows) == top
    drawn = charts_svg.agp(rows)
    assert [t.value for t in drawn.y_ticks] == list(range(0, top + 1, 2))
    assert drawn.y_ticks[-1].y == 0.0 and drawn.y_ticks[-1].percent == 0.0


def test_the_agp_closes_at_midnight_and_skips_empty_hours() -> None:
    rows = [(h, 3.0, 5.0, 6.0 + (h == 23) * 2, 8.0, 12.0) for h in range(24)]
    drawn = charts_svg.agp(rows)
    median = [tuple(map(float, p.split(","))) for p in drawn.median.split()]
    assert median[0][0] == 0.0 and median[-1][0] == 1000.0
    assert median[0][1] == median[-1][1]  # 00 and 24 are the same moment: (6 + 8) / 2 = 7
    assert median[0][1] == round(400 - 400 * 7 / 16, 1)
    assert drawn.target_top == 150.0 and drawn.target_height == round(400 * 6.1 / 16, 1)
    gap = [r if r[0] != 5 else (5, None, None, None, None, None) for r in rows]
    assert len(charts_svg.agp(gap).median.split()) == len(median) - 1
    assert charts_svg.agp([]).median == "" and charts_svg.agp([]).hours == 0


def test_the_ranges_bar_shows_each_range_once_lowest_first() -> None:
    parts = charts_svg.range_parts(1.0, 4.0, 70.0, 26.0, 5.0)
    assert [(p.key, p.percent, p.start) for p in parts] == [
        ("very_low", 1.0, 0.0), ("low", 3.0, 1.0), ("in_range", 70.0, 4.0),
        ("high", 21.0, 74.0), ("very_high", 5.0, 95.0),
    ]  # fmt: skip
    assert [p.minutes for p in parts] == [14, 43, 1008, 302, 72]
    assert charts_svg.bar_width(130.0) == 100.0 and charts_svg.bar_width(None) == 0.0
    assert cgm_page.share(0.3, "sv") == "< 1" and cgm_page.share(70.5, "sv") == "71"
    assert cgm_page.shown(8.25, 1, "sv") == "8,3" and cgm_page.shown(None, 1, "en") == "–"
    assert cgm_page.days_of("90") == 90 and cgm_page.days_of("15") == 14
