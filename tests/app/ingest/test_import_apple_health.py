"""Apple Health imports over HTTP and the CLI on both databases: streamed, chunked, resumable.

The file goes to a temporary file and through the same ingest as sync, in chunks (2 here, so
a small export has several); a file that breaks after whole chunks committed stops with
``stopped_at`` and the complete file completes it; hostile files are refused, storing nothing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.clock import clock
from app.config import Settings
from app.main import create_app
from app.readings.models import ImportRun, Reading
from tests.app.factories import patient_id
from tests.apple_health_export import (
    BILLION_LAUGHS,
    WATCH_DEVICE,
    blood_pressure,
    export_xml,
    export_zip,
    record,
)
from tests.live import LiveServer
from tests.shared_data import SHARED_DATA, needs

Auth = Callable[[str], dict[str, str]]
URL = "/v1/patients/me/import?format=apple-health"
DOGSHEEP = "apple-health/dogsheep_export.xml"
DOGSHEEP_ZIP = "apple-health/dogsheep_zip_export.xml"

# One of each kind Apple writes, as the iPhone lays them out (records, then correlations).
GENERATED = export_xml(
    record("HeartRate", "64", "count/min", "2026-11-20 07:30:00 +0100", device=WATCH_DEVICE)
    + record("OxygenSaturation", "0.97", "%", "2026-11-20 07:32:00 +0100")
    + record("BloodGlucose", "6.2", "mmol<180.1558800000541>/L", "2026-11-20 07:33:00 +0100")
    + record("BodyMass", "180.5", "lb", "2026-11-20 07:34:00 +0100")
    + record("BodyTemperature", "100.4", "degF", "2026-11-20 07:35:00 +0100")
    + record("StepCount", "412", "count", "2026-11-20 08:00:00 +0100", "2026-11-20 08:10:00 +0100")
    + record("BodyMassIndex", "24.1", "count", "2026-11-20 07:34:00 +0100")
    + blood_pressure("142", "91", "2026-11-20 07:31:00 +0100")
)
EXPECTED = {
    # type: (values, unit, original values, original unit)
    "pulse": ({"value": "64"}, "/min", {"value": "64"}, "/min"),
    "spo2": ({"value": "97"}, "%", {"value": "0.97"}, "1"),
    "glucose": ({"value": "6.2"}, "mmol/L", {"value": "6.2"}, "mmol/L"),
    "weight": ({"value": "81.873423"}, "kg", {"value": "180.5"}, "[lb_av]"),
    "temperature": ({"value": "38"}, "Cel", {"value": "100.4"}, "[degF]"),
    "steps": ({"value": "412"}, "{steps}", {"value": "412"}, "{steps}"),
    "blood_pressure": (
        {"systolic": "142", "diastolic": "91"},
        "mm[Hg]",
        {"systolic": "142", "diastolic": "91"},
        "mm[Hg]",
    ),
}


@pytest.fixture
def chunked(settings: Settings) -> Iterator[TestClient]:
    """The app with chunks of 2 readings and a 64 KiB cap on Apple Health files."""
    small = {"import_chunk_readings": 2, "apple_health_max_bytes": 64 * 1024}
    app = create_app(settings.model_copy(update=small))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    app.state.engine.dispose()


def _readings(session: Session, pid: str) -> list[Reading]:
    session.expire_all()
    return list(
        session.scalars(
            select(Reading).where(Reading.patient_id == pid).order_by(Reading.time)
        ).all()
    )


def _count(session: Session, pid: str) -> int:
    session.expire_all()
    query = select(func.count()).select_from(Reading).where(Reading.patient_id == pid)
    return session.scalar(query) or 0


@needs(DOGSHEEP, DOGSHEEP_ZIP)
def test_the_dogsheep_exports_import_as_xml_and_zip(
    client: TestClient, auth: Auth, session: Session
) -> None:
    pid = patient_id(session, "allan")
    before = _count(session, pid)
    xml = (SHARED_DATA / DOGSHEEP).read_bytes()
    first = client.post(URL, content=xml, headers=auth("allan"))
    assert first.status_code == 200, first.text
    assert first.json()["summary"] == {
        "created": 1,
        "duplicate": 0,
        "rejected": 0,
        "skipped": 4,
        "unprocessed": 0,
    }
    assert first.json()["import"]["status"] == "complete"
    zipped = export_zip((SHARED_DATA / DOGSHEEP_ZIP).read_bytes())
    again = client.post(URL, content=zipped, headers=auth("allan")).json()["summary"]
    assert again["created"] == 0 and again["duplicate"] == 1 and again["skipped"] == 4
    assert _count(session, pid) == before + 1


def test_steps_the_phone_and_the_watch_both_counted_are_counted_once(
    client: TestClient, auth: Auth, session: Session
) -> None:
    """An export keeps the iPhone's and the watch's records of the same walks; the day's
    steps are the watch's (it counted more), not both added up."""
    clock.fixed = datetime(2026, 6, 11, 12, 0, tzinfo=ZoneInfo("Europe/Stockholm")).astimezone(UTC)
    walks = [("08:00", "08:10", "1200", "1500"), ("17:00", "17:10", "900", "1000")]
    xml = export_xml(
        "".join(
            record(
                "StepCount",
                phone,
                "count",
                f"2026-06-10 {start}:00 +0200",
                f"2026-06-10 {end}:00 +0200",
            )
            + record(
                "StepCount",
                watch,
                "count",
                f"2026-06-10 {start}:00 +0200",
                f"2026-06-10 {end}:00 +0200",
                source="Allans Apple Watch",
                device=WATCH_DEVICE,
            )
            for start, end, phone, watch in walks
        )  # fmt: skip
    )
    answer = client.post(URL, content=xml, headers=auth("allan"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["summary"]["created"] == 4  # every record is kept

    summary = client.get("/v1/patients/me/summary?type=steps&days=2", headers=auth("allan"))
    assert summary.status_code == 200, summary.text
    day = {d["date"]: d for d in summary.json()["days"]}["2026-06-10"]
    assert (day["sum"], day["count"]) == (2500, 2), day  # not 4,600 from four records


def test_a_generated_export_gives_exactly_these_readings_once(
    chunked: TestClient, auth: Auth, session: Session
) -> None:
    pid = patient_id(session, "allan")
    before = {r.id for r in _readings(session, pid)}
    answer = chunked.post(URL, content=GENERATED, headers=auth("allan"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["summary"] == {
        "created": 7,
        "duplicate": 0,
        "rejected": 0,
        "skipped": 3,
        "unprocessed": 0,
    }
    assert body["import"]["chunks"] == 4 and body["import"]["chunks_committed"] == 4
    new = [r for r in _readings(session, pid) if r.id not in before]
    got = {r.type: (r.values, r.unit, r.original_values, r.original_unit) for r in new}
    assert got == EXPECTED
    steps = next(r for r in new if r.type == "steps")
    assert steps.end_time is not None and (steps.end_time - steps.time).total_seconds() == 600
    pulse = next(r for r in new if r.type == "pulse")
    assert pulse.utc_offset_minutes == 60
    assert pulse.context["device"].startswith("name:Apple Watch")
    bp = next(r for r in new if r.type == "blood_pressure")
    assert bp.context == {"source_name": "Omron"}
    # The same file again, and the same records in a later export: nothing new.
    again = chunked.post(URL, content=GENERATED, headers=auth("allan")).json()
    assert again["summary"]["created"] == 0 and again["summary"]["duplicate"] == 7
    assert again["import"]["id"] == body["import"]["id"] and again["import"]["attempts"] == 2
    later = export_xml(
        GENERATED.decode().split("<HealthData", 1)[1].split(">", 1)[1].rsplit("</HealthData>")[0]
        + record("HeartRate", "66", "count/min", "2026-11-21 07:30:00 +0100")
    )
    third = chunked.post(URL, content=export_zip(later), headers=auth("allan")).json()
    assert third["summary"]["created"] == 1 and third["summary"]["duplicate"] == 7
    assert len(_readings(session, pid)) == len(before) + 8


def test_unknown_units_and_implausible_values_are_rejected_with_reasons(
    client: TestClient, auth: Auth, session: Session
) -> None:
    body = export_xml(
        record("HeartRate", "64", "count/s", "2026-11-20 07:30:00 +0100")
        + record("HeartRate", "400", "count/min", "2026-11-20 07:31:00 +0100")
        + record("OxygenSaturation", "97", "%", "2026-11-20 07:32:00 +0100")
        + record("HeartRate", "70", "count/min", "2026-11-20 07:33:00 +0100")
    )
    answer = client.post(URL, content=body, headers=auth("allan")).json()
    assert answer["summary"]["created"] == 1 and answer["summary"]["rejected"] == 3
    [unit] = answer["rejected"]
    assert unit["where"] == "record 3 (HeartRate)"
    assert unit["errors"][0]["code"] == "unknown_unit" and "count/s" in unit["errors"][0]["message"]
    implausible = [r for r in answer["results"] if r["status"] == "rejected"]
    assert [e["code"] for r in implausible for e in r["errors"]] == ["implausible", "implausible"]


def test_an_xml_bomb_is_refused_and_nothing_is_stored(
    client: TestClient, auth: Auth, session: Session
) -> None:
    pid = patient_id(session, "allan")
    before = _count(session, pid)
    runs = session.scalar(select(func.count()).select_from(ImportRun))
    for payload in (BILLION_LAUGHS, export_zip(BILLION_LAUGHS)):
        answer = client.post(URL, content=payload, headers=auth("allan"))
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "declares XML entities" in answer.json()["detail"]
    assert _count(session, pid) == before
    assert session.scalar(select(func.count()).select_from(ImportRun)) == runs


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (b"<HealthData><Record", "not well-formed"),
        (b"not xml at all", "not well-formed"),
        (export_zip(GENERATED)[:200], "zip file"),
    ],
    ids=["truncated-xml", "not-xml", "truncated-zip"],
)
def test_broken_files_before_any_chunk_answer_400(
    chunked: TestClient, auth: Auth, session: Session, payload: bytes, detail: str
) -> None:
    pid = patient_id(session, "allan")
    before = _count(session, pid)
    answer = chunked.post(URL, content=payload, headers=auth("allan"))
    assert answer.status_code == 400, answer.text
    assert detail in answer.json()["detail"]
    assert _count(session, pid) == before


def test_a_file_broken_after_whole_chunks_stops_and_the_complete_file_completes_it(
    chunked: TestClient, auth: Auth, session: Session
) -> None:
    pid = patient_id(session, "allan")
    before = _count(session, pid)
    # Cut inside the fifth record: two chunks of two committed, the fifth reading never read.
    cut = GENERATED[: GENERATED.index(b"BodyTemperature") + 40]
    broken = chunked.post(URL, content=cut, headers=auth("allan"))
    assert broken.status_code == 200, broken.text
    run = broken.json()["import"]
    assert run["status"] == "stopped" and run["chunks_committed"] == 2
    assert run["stopped_at"]["chunk"] == 3 and run["stopped_at"]["reading_index"] == 4
    assert "not well-formed" in run["stopped_at"]["reason"]
    assert _count(session, pid) == before + 4
    done = chunked.post(URL, content=GENERATED, headers=auth("allan")).json()
    assert done["import"]["status"] == "complete"
    assert done["summary"]["created"] == 3 and done["summary"]["duplicate"] == 4
    assert _count(session, pid) == before + 7
    session.expire_all()
    stopped = session.get(ImportRun, run["id"])
    assert stopped is not None and stopped.stopped_at is not None


def test_a_file_over_the_cap_answers_413(chunked: TestClient, auth: Auth, session: Session) -> None:
    pid = patient_id(session, "allan")
    before = _count(session, pid)
    big = export_xml(
        "".join(
            record("HeartRate", "64", "count/min", f"2026-11-20 07:{m:02d}:{s:02d} +0100")
            for m in range(60)
            for s in range(0, 60, 10)
        )
    )
    assert len(big) > 64 * 1024
    answer = chunked.post(URL, content=big, headers=auth("allan"))
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("application/problem+json")
    # Without a Content-Length (chunked transfer), the stream is cut at the cap all the same.
    streamed = chunked.post(URL, content=iter([big[:40_000], big[40_000:]]), headers=auth("allan"))
    assert streamed.status_code == 413
    assert _count(session, pid) == before


def test_cli_imports_an_apple_health_zip_once(
    db_url: str, tmp_path: Path, session: Session
) -> None:
    path = tmp_path / "export.zip"
    path.write_bytes(export_zip(GENERATED))
    cli = LiveServer(db_url, tmp_path)  # only its configuration: the CLI runs, no server
    out = cli.cli("import", str(path), "--patient", "allan", "--format", "apple-health")
    assert "created 7" in out and "skipped 3" in out, out
    again = cli.cli("import", str(path), "--patient", "allan", "--format", "apple-health")
    assert "created 0" in again and "duplicate 7" in again, again
    pid = patient_id(session, "allan")
    types = {r.type for r in _readings(session, pid) if r.client_id.startswith("apple-health:")}
    assert types == set(EXPECTED)


def test_a_measurement_the_app_already_synced_is_a_duplicate_of_it(
    client: TestClient, auth: Auth, session: Session
) -> None:
    envelope = {
        "source": {"id": "allan-phone", "kind": "app", "name": "Min hälsa"},
        "readings": [
            {
                "client_id": "app-pulse-1",
                "type": "pulse",
                "time": "2026-11-22T07:30:20+01:00",
                "value": 61,
                "unit": "/min",
            }
        ],
    }
    synced = client.post("/v1/patients/me/sync", json=envelope, headers=auth("allan")).json()
    [first] = synced["results"]
    export = export_xml(record("HeartRate", "61", "count/min", "2026-11-22 07:30:00 +0100"))
    answer = client.post(URL, content=export, headers=auth("allan")).json()
    assert answer["summary"]["created"] == 0 and answer["summary"]["duplicate"] == 1
    [result] = answer["results"]
    assert result["duplicate_of"] == first["id"]


def test_cli_refuses_an_xml_bomb_and_stores_nothing(
    db_url: str, tmp_path: Path, session: Session
) -> None:
    path = tmp_path / "export.xml"
    path.write_bytes(BILLION_LAUGHS)
    cli = LiveServer(db_url, tmp_path)
    pid = patient_id(session, "allan")
    before = _count(session, pid)
    with pytest.raises(subprocess.CalledProcessError) as refused:
        cli.cli("import", str(path), "--patient", "allan", "--format", "apple-health")
    assert "declares XML entities" in refused.value.stdout
    assert _count(session, pid) == before
