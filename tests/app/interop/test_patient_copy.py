"""GET /v1/patients/{pid}/export: the patient's own copy, a ZIP of FHIR and CSV, both databases."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent, AuditSubject
from app.clock import utcnow
from app.interop import copy as copy_service
from tests.app.factories import STOCKHOLM, batch, bp, patient_id, scalar
from tests.app.interop.test_fhir_export import counted_rows, invalid_resources, resources

Auth = Callable[[str], dict[str, str]]


def download(client: TestClient, url: str, headers: dict[str, str]) -> zipfile.ZipFile:
    answer = client.get(url, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-disposition"].startswith('attachment; filename="egenvard-')
    return zipfile.ZipFile(io.BytesIO(answer.content))


def table(archive: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    raw = archive.read(name)
    assert raw.startswith(b"\xef\xbb\xbf")  # a spreadsheet then reads å, ä and ö
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


@pytest.mark.parametrize("page", [copy_service.PAGE, 2])
def test_the_copy_holds_the_bundle_and_a_csv_per_type(
    client: TestClient,
    auth: Auth,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
    page: int,
) -> None:
    monkeypatch.setattr(copy_service, "PAGE", page)  # 2: every part is written page by page
    steps = scalar("steps", 8042, "{steps}", minutes_ago=24 * 60)
    steps["end_time"] = (utcnow() - timedelta(minutes=1)).astimezone(STOCKHOLM).isoformat()
    readings = [
        bp(142, 91, minutes_ago=30),
        bp(138, 88, minutes_ago=90),
        bp(151, 95, minutes_ago=150),
        scalar("glucose", 126, "mg/dL", minutes_ago=40),
        scalar("weight", 96.1, "kg", minutes_ago=50),
        scalar("weight", 95.85, "kg", minutes_ago=24 * 60 + 50),
        steps,
    ]
    sent = client.post("/v1/patients/me/sync", json=batch(*readings), headers=auth("allan"))
    assert sent.status_code == 200, sent.text
    wrong = sent.json()["results"][5]["id"]
    deleted = client.delete(f"/v1/patients/me/readings/{wrong}", headers=auth("allan"))
    assert deleted.status_code == 204
    pid = patient_id(session, "allan")

    archive = download(client, "/v1/patients/me/export", auth("allan"))
    assert sorted(archive.namelist()) == [
        "LASMIG.txt",
        "blood_pressure.csv",
        "fhir-bundle.json",
        "glucose.csv",
        "steps.csv",
        "weight.csv",
    ]
    assert "Dina egenvårdsvärden" in archive.read("LASMIG.txt").decode()
    bundle = json.loads(archive.read("fhir-bundle.json"))
    Bundle.model_validate(bundle)
    assert invalid_resources([bundle]) == []
    assert len(resources([bundle], "Patient")) == 1
    assert len(resources([bundle], "Observation")) == counted_rows(session, pid) == 7
    assert len(resources([bundle], "CarePlan")) >= 1

    pressures = table(archive, "blood_pressure.csv")
    assert [(r["systolic"], r["diastolic"], r["unit"]) for r in pressures] == [
        ("151", "95", "mm[Hg]"),
        ("138", "88", "mm[Hg]"),
        ("142", "91", "mm[Hg]"),
    ]
    first = pressures[-1]
    assert datetime.fromisoformat(first["local_time"]) == datetime.fromisoformat(
        readings[0]["time"]
    )
    assert (
        datetime.fromisoformat(first["local_time"]).utcoffset()
        == datetime.fromisoformat(readings[0]["time"]).utcoffset()
    )
    assert first["utc_time"].endswith("+00:00")
    assert first["source"] == "Testappen 1.0" and first["status"] == "final"
    glucose = table(archive, "glucose.csv")
    assert (glucose[0]["unit"], glucose[0]["original_value"], glucose[0]["original_unit"]) == (
        "mmol/L",
        "126",
        "mg/dL",
    )
    weights = table(archive, "weight.csv")
    assert [(w["value"], w["status"]) for w in weights] == [
        ("95.85", "entered-in-error"),
        ("96.1", "final"),
    ]
    (walked,) = table(archive, "steps.csv")
    assert walked["value"] == "8042" and walked["end_utc_time"]

    query = (
        select(AuditEvent.actor_handle, AuditEvent.resource)
        .join(AuditSubject, AuditSubject.event_seq == AuditEvent.seq)
        .where(AuditSubject.patient_id == pid, AuditEvent.resource.like("%/export"))
    )
    assert list(session.execute(query)) == [("allan", "GET /v1/patients/{pid}/export")]


def test_a_proxy_who_may_read_downloads_it_and_the_care_team_may_not(
    client: TestClient, auth: Auth, session: Session
) -> None:
    asta = patient_id(session, "asta")
    sent = client.post(
        f"/v1/patients/{asta}/sync", json=batch(scalar("spo2", 93, "%")), headers=auth("asta")
    )
    assert sent.status_code == 200, sent.text
    archive = download(client, f"/v1/patients/{asta}/export", auth("maria"))
    assert [r["value"] for r in table(archive, "spo2.csv")] == ["93"]
    assert client.get(f"/v1/patients/{asta}/export", headers=auth("karin")).status_code == 403
    assert client.get(f"/v1/patients/{asta}/export", headers=auth("allan")).status_code == 404
    assert client.get(f"/v1/patients/{asta}/export").status_code == 401
