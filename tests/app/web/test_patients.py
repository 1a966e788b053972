"""The patient list and a patient's overview with the timeline (both databases)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.app.factories import batch, bp, patient_id, scalar
from tests.app.web.conftest import Browser

Auth = Callable[[str], dict[str, str]]
DAY = 24 * 60


def _asta_week(client: TestClient, auth: Auth) -> None:
    """A week of Asta's morning readings; the last weight is 2.5 kg over the 72 hours' lowest."""
    readings: list[dict[str, Any]] = []
    weights = [70.4, 70.2, 70.0, 70.3, 70.1, 71.9, 72.6]
    for day, weight in enumerate(weights):
        ago = (6 - day) * DAY + 30
        readings += [
            scalar("weight", weight, "kg", minutes_ago=ago),
            scalar("spo2", 93 - (day == 6) * 7, "%", minutes_ago=ago),
            scalar("pulse", 72 + day, "/min", minutes_ago=ago),
            bp(128 + day, 78, minutes_ago=ago),
        ]
    answer = client.post("/v1/patients/me/sync", json=batch(*readings), headers=auth("asta"))
    assert answer.status_code == 200, answer.text


def _allan_today(client: TestClient, auth: Auth) -> None:
    answer = client.post(
        "/v1/patients/me/sync", json=batch(bp(142, 88), bp(138, 86, minutes_ago=600)),
        headers=auth("allan"),
    )  # fmt: skip
    assert answer.status_code == 200, answer.text


def _row(page: str, pid: str) -> str:
    found = re.search(rf'<tr data-patient="{pid}">(.*?)</tr>', page, re.S)
    assert found, f"no row for {pid}"
    return found.group(1)


def test_eva_sees_allan_and_asta_with_adherence(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    _asta_week(client, auth)
    _allan_today(client, auth)
    eva = browser()
    eva.login("eva")
    page = eva.client.get("/vard/patients")
    assert page.status_code == 200
    assert "Allan Andersson" in page.text and "Asta Berglund" in page.text
    assert "Gunilla" not in page.text
    asta = _row(page.text, patient_id(session, "asta"))
    # Asta's plan asks for 5 readings a morning: 14 days = 70 (or 65/75 by the hour); she sent
    # 4 types a morning for 7 days (28).
    scheduled = int(re.search(r'data-scheduled="(\d+)"', asta).group(1))  # type: ignore[union-attr]
    assert 65 <= scheduled <= 75
    assert 'data-received="28"' in asta
    assert f"{round(100 * 28 / scheduled)} %" in asta
    assert "28 av" in asta and "schemalagda mätningar de senaste 14 dagarna" in asta
    assert (
        "Vårdcentralen Norra" in asta
        and f'href="/vard/patients/{patient_id(session, "asta")}"' in asta
    )
    allan = _row(page.text, patient_id(session, "allan"))
    assert 'data-received="2"' in allan
    assert "Mätningar enligt plan" in page.text and "Extra mätningar" in page.text


def test_karin_never_sees_allan(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    _allan_today(client, auth)
    karin = browser()
    karin.login("karin")
    page = karin.client.get("/vard/patients")
    assert page.status_code == 200
    assert "Asta Berglund" in page.text and "Allan" not in page.text
    allan = patient_id(session, "allan")
    for path in (f"/vard/patients/{allan}", f"/vard/patients/{allan}?range=90d",
                 "/vard/patients/no-such-patient"):  # fmt: skip
        refused = karin.client.get(path)
        assert refused.status_code == 404
        assert "Allan" not in refused.text and "Sidan finns inte" in refused.text


def test_astas_overview_draws_her_charts_limits_and_flags(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    _asta_week(client, auth)
    eva = browser()
    eva.login("eva")
    asta = patient_id(session, "asta")
    page = eva.client.get(f"/vard/patients/{asta}")
    assert page.status_code == 200
    text = page.text
    assert "Asta Berglund" in text and "<dd>49 år</dd>" in text
    for type_ in ("weight", "spo2", "pulse", "blood_pressure"):
        assert f'data-type="{type_}" data-count="7"' in text, type_
    # The plan's limits: SpO2 below 88 % (Asta's own), pulse 40 and 120, BP 180/110 and 90.
    assert re.search(r'class="limit limit-lt"[^>]*data-rule="spo2-low"[^>]*data-value="88"', text)
    assert 'data-rule="pulse-abnormal" data-component="value" data-op="gt" data-value="120"' in text
    assert (
        'data-rule="bp-very-high" data-component="systolic" data-op="ge" data-value="180"' in text
    )
    assert (
        'data-rule="bp-very-high" data-component="diastolic" data-op="ge" data-value="110"' in text
    )
    # The weight-gain line: the lowest weight of the 72 hours before the latest (70.1) + 2.0 kg.
    assert re.search(r'data-rule="weight-gain-hf" data-component="value" data-op="gt" '
                     r'data-value="72\.10*"', text)  # fmt: skip
    assert "lägsta vikt de senaste 72 tim + 2,0 kg" in text
    # Two series for blood pressure, seven points each, on the shared axis.
    assert 'data-component="systolic" data-points="7"' in text
    assert 'data-component="diastolic" data-points="7"' in text
    # The flags are events on the axis and open flags linking to their pages.
    assert re.search(r'class="event-row" data-kind="flag" data-count="[1-9]', text)
    assert 'data-event="flag"' in text and 'href="/vard/flags/' in text
    assert "Snabb viktökning vid hjärtsvikt" in text
    # Text alternatives: a summary and the readings table.
    assert "Senaste: <strong>72,6 kg</strong>" in text
    assert "Under perioden: lägst 70,0, högst 72,6 kg" in text
    assert "Visa som tabell" in text
    assert "Överenskommelser" in text and "Väg dig varje morgon" in text


def test_zoom_links_return_their_window(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    _asta_week(client, auth)
    eva = browser()
    eva.login("eva")
    asta = patient_id(session, "asta")
    day = eva.client.get(f"/vard/patients/{asta}?range=24h")
    assert 'data-type="weight" data-count="1"' in day.text
    assert 'data-zoom="24h" aria-current="page"' in day.text
    week = eva.client.get(
        f"/vard/patients/{asta}?range=7d", headers={"HX-Request": "true", "HX-Target": "timeline"}
    )
    assert week.status_code == 200
    assert "<html" not in week.text and "<h1>" not in week.text  # only the section
    assert 'data-type="weight" data-count="7"' in week.text
    assert 'data-zoom="7d" aria-current="page"' in week.text
    for zoom in ("30d", "90d"):
        page = eva.client.get(f"/vard/patients/{asta}?range={zoom}")
        assert f'data-zoom="{zoom}" aria-current="page"' in page.text
        assert 'data-type="weight" data-count="7"' in page.text
    # The zoom links work without JavaScript: plain links to the same page.
    assert f'href="/vard/patients/{asta}?range=90d"' in week.text
