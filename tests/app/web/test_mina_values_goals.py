"""The patient's values over time (/mina/varden) and goals (/mina/mal): limits in words, tables,
zoom, deciding a proposed goal, and who may see and decide what."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.clock import utcnow
from tests.app.factories import patient_id
from tests.app.web.conftest import Browser

Auth = Callable[[str], dict[str, str]]


def _sync(
    client: TestClient, auth: Auth, *readings: tuple[str, str, float, str, timedelta]
) -> None:
    now = utcnow()
    body = {
        "source": {"id": "values-test", "kind": "device", "name": "Mätare"},
        "readings": [
            {"client_id": cid, "type": type_, "time": (now - ago).isoformat(), "unit": unit,
             "value": value}
            for cid, type_, value, unit, ago in readings
        ],
    }  # fmt: skip
    answer = client.post("/v1/patients/me/sync", json=body, headers=auth("asta"))
    assert answer.status_code == 200, answer.text


def test_asta_reads_her_values_against_her_limits_with_a_table_at_every_zoom(
    client: TestClient, auth: Auth, browser: Callable[[], Browser]
) -> None:
    _sync(client, auth, ("s1", "spo2", 86, "%", timedelta(hours=2)),
          ("s2", "spo2", 94, "%", timedelta(days=40)))  # fmt: skip
    me = browser()
    me.login("asta")
    assert 'href="/mina/varden"' in me.client.get("/mina").text
    page = me.client.get("/mina/varden").text
    assert "Mina värden" in page and 'data-zoom="7d" aria-current="page"' in page
    chart = re.search(r'<figure class="chart mina-chart" id="chart-spo2".*?</figure>', page, re.S)
    assert chart, page[-2000:]
    spo2 = chart.group(0)
    assert "Din gräns: under 88 %" in spo2  # the plan's own limit, in words
    assert '<line class="limit limit-lt"' in spo2 and "style=" not in page
    assert "<table" in spo2 and "<td>86</td>" in spo2  # the table alternative
    assert re.search(r"<td>\d{1,2} (jan|feb|mars|apr|maj|juni|juli|aug|sep|okt|nov|dec) \d{4} kl\. "
                     r"\d\d:\d\d</td>", spo2)  # fmt: skip
    assert "<td>94</td>" not in spo2  # 40 days ago: outside a week
    assert re.search(r"Senast: 86 %, \d", spo2)
    quarter = me.client.get("/mina/varden?range=90d").text
    assert 'data-zoom="90d" aria-current="page"' in quarter and "<td>94</td>" in quarter
    day = me.client.get("/mina/varden?range=24h").text
    assert 'data-zoom="24h" aria-current="page"' in day and "<td>86</td>" in day
    english = me.client.get("/mina/varden?lang=en").text
    assert "Your limit: below 88 %" in english and "<td>94</td>" not in english


def _proposed(client: TestClient, auth: Auth, pid: str, title: str) -> str:
    today = utcnow().date()
    body: dict[str, Any] = {
        "title": title,
        "measure": {"type": "weight", "aggregate": "last", "window_days": 14},
        "target": {"value": 70.0, "unit": "kg", "direction": "below"},
        "start": (today - timedelta(days=7)).isoformat(),
        "due": (today + timedelta(days=120)).isoformat(),
        "lifecycle": "proposed",
        "milestones": [{"title": "Ett kilo", "target": {"value": 71.0, "unit": "kg"}}],
    }
    made = client.post(f"/v1/patients/{pid}/goals", json=body, headers=auth("karin"))
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _lifecycle(client: TestClient, auth: Auth, pid: str, goal_id: str) -> str:
    goals = client.get(f"/v1/patients/{pid}/goals", headers=auth("karin")).json()["items"]
    return str(next(g for g in goals if g["id"] == goal_id)["lifecycle"])


def test_asta_agrees_to_one_proposed_goal_and_declines_another(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    asta = patient_id(session, "asta")
    yes = _proposed(client, auth, asta, "Väga under 70 kilo")
    no = _proposed(client, auth, asta, "Väga under 69 kilo")
    me = browser()
    me.login("asta")
    assert 'href="/mina/mal"' in me.client.get("/mina").text
    page = me.client.get("/mina/mal").text
    assert "Din vård föreslår det här målet." in page and "Karin Holm" in page
    assert f'action="/mina/mal/{yes}/beslut"' in page and "Ja, jag vill ha målet" in page
    assert "0 av 1 delmål nådda" in page

    agreed = me.post(f"/mina/mal/{yes}/beslut", {"decision": "agreed"}, token_from="/mina/mal")
    assert agreed.url.path == "/mina/mal" and "Du har sagt ja till målet" in agreed.text
    assert _lifecycle(client, auth, asta, yes) == "active"
    declined = me.post(f"/mina/mal/{no}/beslut", {"decision": "declined"}, token_from="/mina/mal")
    assert "Du har sagt nej till målet" in declined.text
    assert _lifecycle(client, auth, asta, no) == "cancelled"
    assert "Mål som inte gäller längre" in declined.text
    # The same answer again changes nothing; another answer to a decided goal is refused.
    again = me.post(f"/mina/mal/{yes}/beslut", {"decision": "agreed"}, token_from="/mina/mal")
    assert again.status_code == 200
    late = me.post(f"/mina/mal/{yes}/beslut", {"decision": "declined"}, token_from="/mina/mal")
    assert late.status_code == 409 and _lifecycle(client, auth, asta, yes) == "active"
    no_token = me.client.post(f"/mina/mal/{no}/beslut", data={"decision": "agreed"})
    assert no_token.status_code == 403 and _lifecycle(client, auth, asta, no) == "cancelled"


def test_a_relative_sees_goals_with_read_and_decides_only_with_agree(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    asta, allan = patient_id(session, "asta"), patient_id(session, "allan")
    goal = _proposed(client, auth, asta, "Väga under 70 kilo")
    maria = browser()
    maria.login("maria")
    page = maria.client.get(f"/mina/mal?for={asta}").text
    assert "Väga under 70 kilo" in page and "Vården föreslår det här målet." in page
    assert "/beslut" not in page  # no agree scope: no form
    refused = maria.post(f"/mina/mal/{goal}/beslut?for={asta}", {"decision": "agreed"},
                         token_from="/mina")  # fmt: skip
    assert refused.status_code == 404 and _lifecycle(client, auth, asta, goal) == "proposed"

    grants = client.get(f"/v1/patients/{asta}/proxies", headers=auth("asta")).json()["items"]
    grant = next(g for g in grants if g["grantee"]["display_name"].startswith("Maria"))
    scopes = sorted({*grant["scopes"], "agree"})
    widened = client.patch(f"/v1/patients/{asta}/proxies/{grant['id']}", json={"scopes": scopes},
                           headers=auth("asta"))  # fmt: skip
    assert widened.status_code == 200, widened.text
    page = maria.client.get(f"/mina/mal?for={asta}").text
    assert f'action="/mina/mal/{goal}/beslut?for={asta}"' in page
    agreed = maria.post(f"/mina/mal/{goal}/beslut?for={asta}", {"decision": "agreed"},
                        token_from="/mina")  # fmt: skip
    assert agreed.status_code == 200 and _lifecycle(client, auth, asta, goal) == "active"
    # Allan is not hers to see, on any of these pages.
    for path in ("/mina/mal", "/mina/varden"):
        assert maria.client.get(f"{path}?for={allan}").status_code == 404
    assert maria.post(f"/mina/mal/{goal}/beslut?for={allan}", {"decision": "agreed"},
                      token_from="/mina").status_code == 404  # fmt: skip


def test_allan_never_sees_astas_values_or_goals(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    asta = patient_id(session, "asta")
    goal = _proposed(client, auth, asta, "Väga under 70 kilo")
    allan = browser()
    allan.login("allan")
    for path in ("/mina/varden", "/mina/mal", "/mina/varden?range=90d&"):
        sep = "&" if "?" in path else "?"
        assert allan.client.get(f"{path.rstrip('&')}{sep}for={asta}").status_code == 404
    posted = allan.post(f"/mina/mal/{goal}/beslut?for={asta}", {"decision": "declined"},
                        token_from="/mina")  # fmt: skip
    assert posted.status_code == 404
    # His own page does not know Asta's goal either.
    assert allan.post(f"/mina/mal/{goal}/beslut", {"decision": "declined"},
                      token_from="/mina").status_code == 404  # fmt: skip
    assert _lifecycle(client, auth, asta, goal) == "proposed"


def test_a_value_without_a_unit_reads_without_a_stray_space(
    client: TestClient, auth: Auth, browser: Callable[[], Browser]
) -> None:
    reading = {"client_id": "q1", "type": "symptom_score", "unit": "{score}", "value": 18,
               "time": (utcnow() - timedelta(hours=3)).isoformat(),
               "context": {"instrument": "CAT"}}  # fmt: skip
    body = {"source": {"id": "values-test", "kind": "app", "name": "Appen"}, "readings": [reading]}
    answer = client.post("/v1/patients/me/sync", json=body, headers=auth("asta"))
    assert answer.json()["results"][0]["status"] == "created", answer.text
    me = browser()
    me.login("asta")
    page = me.client.get("/mina/varden").text
    chart = re.search(r'id="chart-symptom_score".*?</figure>', page, re.S)
    assert chart, page[-2000:]
    assert re.search(r"Senast: 18(,0)?, \d", chart.group(0)), chart.group(0)[:600]
    assert re.search(r"Lägst 18(,0)? och högst 18(,0)?\.", chart.group(0))
