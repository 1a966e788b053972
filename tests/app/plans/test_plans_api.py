"""Plans over HTTP on both databases: versions, validation, thresholds from the plan."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.app.factories import batch, patient_id, scalar

Auth = Callable[[str], dict[str, str]]


def test_plan_put_creates_immutable_versions(
    client: TestClient, auth: Auth, session: Session
) -> None:
    pid = patient_id(session, "asta")
    current = client.get(f"/v1/patients/{pid}/plan", headers=auth("karin")).json()
    body = {k: current[k] for k in ("rules", "schedule", "agreements", "contact") if k in current}
    body["rules"] = [r for r in body["rules"] if r["rule"] != "pulse-abnormal"]
    saved = client.put(f"/v1/patients/{pid}/plan", json=body, headers=auth("karin"))
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == current["version"] + 1
    versions = client.get(f"/v1/patients/{pid}/plan/versions", headers=auth("maria")).json()
    assert [v["version"] for v in versions["items"]] == [current["version"] + 1, current["version"]]
    assert any(r["rule"] == "pulse-abnormal" for r in versions["items"][1]["rules"])


def test_plan_parameters_set_the_threshold(
    client: TestClient, auth: Auth, session: Session
) -> None:
    # Asta's COPD plan: SpO2 target 88 %, so 89 is fine and 87 is not.
    fine = client.post(
        "/v1/patients/me/sync", json=batch(scalar("spo2", 89, "%")), headers=auth("asta")
    ).json()
    low = client.post(
        "/v1/patients/me/sync", json=batch(scalar("spo2", 87, "%")), headers=auth("asta")
    ).json()
    assert fine["advice"] == []
    assert [a["rule"]["id"] for a in low["advice"]] == ["spo2-low"]
    flag = client.get("/v1/flags", headers=auth("karin")).json()["items"][0]
    assert flag["severity"] == "high"
    thresholds = flag["explanation"]["thresholds"]
    assert any(t["value"] == 88 and t["unit"] == "%" for t in thresholds.values())


def test_invalid_plan_answers_every_error_and_saves_nothing(
    client: TestClient, auth: Auth, session: Session
) -> None:
    pid = patient_id(session, "asta")
    before = client.get(f"/v1/patients/{pid}/plan/versions", headers=auth("karin")).json()
    body = {
        "rules": [
            {"rule": "no-such-rule"},
            {"rule": "spo2-low", "params": {"target_low": {"value": 88, "unit": "kg"}}},
            {"rule": "spo2-low", "params": {"whatever": 3}},
        ]
    }
    response = client.put(f"/v1/patients/{pid}/plan", json=body, headers=auth("karin"))
    assert response.status_code == 422
    codes = {e["code"] for e in response.json()["errors"]}
    assert {"unknown_rule", "unknown_unit", "unknown_param"} <= codes
    after = client.get(f"/v1/patients/{pid}/plan/versions", headers=auth("karin")).json()
    assert after == before


def test_patients_and_proxies_may_read_but_not_edit_the_plan(
    client: TestClient, auth: Auth, session: Session
) -> None:
    pid = patient_id(session, "asta")
    plan = client.get(f"/v1/patients/{pid}/plan", headers=auth("asta")).json()
    body = {"rules": plan["rules"]}
    assert (
        client.put(f"/v1/patients/{pid}/plan", json=body, headers=auth("asta")).status_code == 403
    )
    assert (
        client.put(f"/v1/patients/{pid}/plan", json=body, headers=auth("maria")).status_code == 403
    )
    assert (
        client.put(f"/v1/patients/{pid}/plan", json=body, headers=auth("olof")).status_code == 404
    )


def test_rule_library_is_listed_with_sources(client: TestClient, auth: Auth) -> None:
    rules = client.get("/v1/rules", headers=auth("eva")).json()["items"]
    ids = {r["id"] for r in rules}
    assert {
        "bp-very-high",
        "bp-low",
        "glucose-low",
        "glucose-very-low",
        "spo2-low",
        "pulse-abnormal",
        "temperature-fever",
    } <= ids
    assert all(r["source"] for r in rules)
    assert client.get("/v1/rules/bp-very-high", headers=auth("allan")).status_code == 200
    assert client.get("/v1/rules/nope", headers=auth("allan")).status_code == 404
    assert client.get("/v1/rules").status_code == 401
