"""Imports over HTTP on both databases: Dexcom Clarity CSV and Open mHealth, same ingest."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.findings.models import Evaluation
from app.readings.models import Reading
from tests.app.factories import patient_id
from tests.live import LiveServer
from tests.shared_data import SHARED_DATA, needs

Auth = Callable[[str], dict[str, str]]
DEXCOM_FILE = "cgmquantify/dexcom_g6_test_file.csv"
OMH_DIR = "openmhealth-schemas/test-data/omh"
DEXCOM = SHARED_DATA / DEXCOM_FILE
OMH = SHARED_DATA / OMH_DIR


def _omh(type_: str, version: str, name: str) -> bytes:
    return (OMH / type_ / version / name).read_bytes()


@needs(DEXCOM_FILE)
def test_dexcom_export_imports_once_as_cgm_readings(
    client: TestClient, auth: Auth, session: Session
) -> None:
    pid = patient_id(session, "gunilla")
    headers = {**auth("olof"), "Content-Type": "text/csv"}
    url = f"/v1/patients/{pid}/import?format=dexcom-csv"
    first = client.post(url, content=DEXCOM.read_bytes(), headers=headers)
    assert first.status_code == 200, first.text
    summary = first.json()["summary"]
    assert summary["created"] == 2148 and summary["rejected"] == 0
    stored = session.scalar(
        select(func.count()).select_from(Reading).where(Reading.type == "cgm_glucose")
    )
    assert stored == 2148
    again = client.post(url, content=DEXCOM.read_bytes(), headers=headers).json()["summary"]
    assert again["created"] == 0 and again["duplicate"] == 2148
    # The same ingest ran the rules: Gunilla's plan watches glucose lows.
    evaluated = session.scalar(
        select(func.count()).select_from(Evaluation).where(Evaluation.patient_id == pid)
    )
    assert evaluated and evaluated > 0
    log = client.get(f"/v1/patients/{pid}/access-log", headers=auth("olof")).json()["items"]
    assert any(e["resource"].endswith("/import") for e in log)


@needs(OMH_DIR)
def test_open_mhealth_points_import_and_bad_ones_say_why(
    client: TestClient, auth: Auth, session: Session
) -> None:
    passing = sorted((OMH / "heart-rate").glob("*/shouldPass/*.json"))
    failing = sorted((OMH / "heart-rate").glob("*/shouldFail/*.json"))
    assert passing and failing
    documents = [json.loads(p.read_text()) for p in passing]
    answer = client.post("/v1/patients/me/import?format=omh", json=documents, headers=auth("allan"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["summary"]["created"] + body["summary"]["rejected"] >= 1
    assert body["summary"]["created"] >= 1
    for path in failing:
        one = client.post(
            "/v1/patients/me/import?format=omh",
            content=path.read_bytes(),
            headers={**auth("allan"), "Content-Type": "application/json"},
        )
        assert one.status_code == 200, (path.name, one.text)
        result = one.json()
        assert result["summary"]["created"] == 0, path.name
        reasons = [
            e["message"]
            for r in result["rejected"] + result["results"]
            for e in r.get("errors", [])
        ]
        assert reasons, path.name


@needs(DEXCOM_FILE)
def test_import_input_errors_and_access(client: TestClient, auth: Auth, session: Session) -> None:
    headers = {**auth("allan"), "Content-Type": "application/json"}
    assert (
        client.post(
            "/v1/patients/me/import?format=omh", content=b"{nope", headers=headers
        ).status_code
        == 400
    )
    assert (
        client.post("/v1/patients/me/import?format=xml", content=b"{}", headers=headers).status_code
        == 422
    )
    before = session.scalar(select(func.count()).select_from(Reading))
    pid = patient_id(session, "allan")
    denied = client.post(
        f"/v1/patients/{pid}/import?format=dexcom-csv",
        content=DEXCOM.read_bytes(),
        headers=auth("karin"),
    )
    assert denied.status_code == 404
    assert session.scalar(select(func.count()).select_from(Reading)) == before


@needs(DEXCOM_FILE)
def test_cli_import_goes_through_the_same_ingest(
    db_url: str, tmp_path: Path, session: Session
) -> None:
    cli = LiveServer(db_url, tmp_path)  # only its configuration: the CLI runs, no server
    out = cli.cli("import", str(DEXCOM), "--patient", "gunilla", "--format", "dexcom-csv")
    assert "created 2148" in out
    again = cli.cli("import", str(DEXCOM), "--patient", "gunilla", "--format", "dexcom-csv")
    assert "created 0" in again and "duplicate 2148" in again
    pid = patient_id(session, "gunilla")
    assert (
        session.scalar(select(func.count()).select_from(Reading).where(Reading.patient_id == pid))
        == 2148
    )


def test_a_clarity_export_with_low_rows_counts_them_and_fires_very_low(
    client: TestClient, auth: Auth, session: Session
) -> None:
    """Gunilla's export: the night's worst values are "Low"; they count and they flag."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from app.clock import clock
    from app.findings.models import Advice, Flag

    header = (
        "Index,Timestamp (YYYY-MM-DDThh:mm:ss),Event Type,Event Subtype,Patient Info,"
        "Device Info,Source Device ID,Glucose Value (mg/dL),Insulin Value (u),"
        "Carb Value (grams),Duration (hh:mm:ss),Glucose Rate of Change (mg/dL/min),"
        "Transmitter Time (Long Integer)"
    )
    start = datetime(2026, 11, 19, 0, 0)  # local time, as Clarity writes it
    night = {36: "55", 37: "45", 38: "Low", 39: "Low", 40: "Low", 41: "42", 42: "60"}
    rows = [
        f"{i + 1},{(start + timedelta(minutes=5 * i)).isoformat()},EGV,,,,G7,"
        f"{night.get(i, '120')},,,,,"
        for i in range(288)
    ]
    clock.fixed = datetime(2026, 11, 20, 0, 0, tzinfo=ZoneInfo("Europe/Stockholm")).astimezone(UTC)
    pid = patient_id(session, "gunilla")
    answer = client.post(
        f"/v1/patients/{pid}/import?format=dexcom-csv",
        content="\n".join([header, *rows]).encode(),
        headers={**auth("olof"), "Content-Type": "text/csv"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["summary"]["created"] == 288
    assert answer.json()["summary"]["rejected"] == 0
    stored = session.scalars(select(Reading).where(Reading.patient_id == pid)).all()
    censored = [r for r in stored if (r.context or {}).get("censored") == "below"]
    assert len(censored) == 3
    assert {(r.original_unit, str(r.original_values["value"])) for r in censored} == {
        ("mg/dL", "40")
    }
    summary = client.get(
        f"/v1/patients/{pid}/summary?type=cgm_glucose&days=1", headers=auth("olof")
    ).json()
    # 45, Low ×3, 42 are below 54 mg/dL: 5 of 288 readings.
    assert abs(float(summary["tbr_3_0"]) - 5 / 288 * 100) < 0.05
    flag = session.scalars(
        select(Flag).where(Flag.patient_id == pid, Flag.rule_id == "glucose-very-low")
    ).one()
    assert flag.explanation["episode"]["nadir"] == "40"
    assert "under 40 mg/dL" in flag.explanation["summary"]["sv"]
    advice = session.scalars(select(Advice).where(Advice.patient_id == pid)).all()
    assert {a.rule_id for a in advice} == {"glucose-low", "glucose-very-low"}
