"""POST /v1/patients/{pid}/import?format=fhir: FHIR R4 Observations through the same ingest.

On both databases: the round trip (Allan's FHIR export imported for another patient gives the
same readings), HealthKit on FHIR Observations (built from the fixture's own mapping), the
R4 examples, and bad input that is answered per item or refused whole, storing nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.clock import utcnow
from app.config import Settings
from app.readings.models import Reading
from tests.app.factories import STOCKHOLM, batch, bp, patient_id, scalar
from tests.app.interop.test_fhir_export import (
    check_persona_bundle,
    invalid_resources,
    resources,
    seed_persona,
    walk,
)
from tests.app.me.test_identity_api import UNUSED_TEST_PNR
from tests.shared_data import SHARED_DATA, needs

Auth = Callable[[str], dict[str, str]]
HK_MAPPING = "healthkit-on-fhir/HKSampleMapping.json"
R4_EXAMPLES = "fhir-r4-examples"
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def post_fhir(client: TestClient, pid: str, document: Any, headers: dict[str, str]) -> Any:
    """Import a FHIR document; the answer's JSON."""
    answer = client.post(
        f"/v1/patients/{pid}/import?format=fhir",
        content=json.dumps(document).encode(),
        headers={**headers, **FHIR_JSON},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def stored(client: TestClient, pid: str, headers: dict[str, str]) -> list[tuple[Any, ...]]:
    """The patient's readings as (type, UTC time, UTC end, value, unit), in time order."""
    items = client.get(f"/v1/patients/{pid}/readings?limit=1000", headers=headers).json()["items"]

    def utc(text: str | None) -> str | None:
        return datetime.fromisoformat(text).astimezone(UTC).isoformat() if text else None

    def exact(value: Any) -> Any:
        if isinstance(value, dict):
            return tuple(sorted((k, Decimal(str(v))) for k, v in value.items()))
        return Decimal(str(value))

    return sorted(
        (r["type"], utc(r["time"]), utc(r["end_time"]), exact(r["value"]), r["unit"]) for r in items
    )


def count_readings(session: Session, pid: str) -> int:
    query = select(func.count()).select_from(Reading).where(Reading.patient_id == pid)
    return int(session.scalar(query) or 0)


def test_the_fhir_export_imported_for_another_patient_gives_the_same_readings(
    client: TestClient, auth: Auth, session: Session
) -> None:
    readings = [
        bp(142, 91, minutes_ago=30),
        scalar("pulse", 72, "/min", minutes_ago=31),
        scalar("spo2", 0.97, "1", minutes_ago=32),
        scalar("temperature", 37.25, "Cel", minutes_ago=33),
        scalar("weight", 96.1, "kg", minutes_ago=34),
        scalar("respiratory_rate", 16, "/min", minutes_ago=35),
        scalar("glucose", 126, "mg/dL", minutes_ago=36),
        scalar("cgm_glucose", 7.1, "mmol/L", minutes_ago=37),
        scalar("ketones", 0.4, "mmol/L", minutes_ago=38),
        scalar("peak_flow", 420, "L/min", minutes_ago=39),
        scalar("symptom_score", 12, "{score}", minutes_ago=40, context={"instrument": "CAT"}),
    ]
    steps = scalar("steps", 8042, "{steps}", minutes_ago=24 * 60)
    steps["end_time"] = (utcnow() - timedelta(minutes=1)).astimezone(STOCKHOLM).isoformat()
    gone = scalar("weight", 97.3, "kg", minutes_ago=90)
    sent = client.post(
        "/v1/patients/me/sync", json=batch(*readings, steps, gone), headers=auth("allan")
    )
    assert sent.status_code == 200, sent.text
    gone_id = sent.json()["results"][-1]["id"]
    assert (
        client.delete(f"/v1/patients/me/readings/{gone_id}", headers=auth("allan")).status_code
        == 204
    )
    allan, gunilla = patient_id(session, "allan"), patient_id(session, "gunilla")
    assert count_readings(session, gunilla) == 0

    pages = walk(client, "/v1/patients/me/fhir?_count=5", auth("allan"))
    assert len(pages) == 3  # 13 Observations, 5 a page: the import takes them as one Bundle
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources(pages)],
    }
    others = len(bundle["entry"]) - 13
    answer = post_fhir(client, gunilla, bundle, auth("olof"))
    assert answer["summary"] == {
        "created": 12,
        "duplicate": 0,
        "rejected": 0,
        "skipped": others + 1,  # Patient pages, CarePlan, ... and the one entered in error
        "unprocessed": 0,
    }
    assert any("status entered-in-error" in line for line in answer["ignored"])
    assert any("a Patient, only Observations are imported" in line for line in answer["ignored"])
    assert stored(client, gunilla, auth("olof")) == stored(client, allan, auth("eva"))
    score = client.get(
        f"/v1/patients/{gunilla}/readings?type=symptom_score", headers=auth("olof")
    ).json()["items"]
    assert score[0]["context"]["instrument"] == "CAT"

    again = post_fhir(client, gunilla, bundle, auth("olof"))["summary"]
    assert again["created"] == 0 and again["duplicate"] == 12
    assert count_readings(session, gunilla) == 12


def healthkit_observation(
    mapping: dict[str, Any], kind: str, value: Any, *, minutes_ago: int, unit: str | None = None
) -> dict[str, Any]:
    """An Observation as HealthKit on FHIR writes it, codes and unit from its own mapping."""
    entry = mapping["HKQuantitySamples"][kind]
    moment = (utcnow() - timedelta(minutes=minutes_ago)).astimezone(STOCKHOLM)
    quantity = {k: v for k, v in entry["unit"].items() if k in ("code", "system", "unit")}
    if unit is not None:
        quantity["unit"] = unit
    return {
        "resourceType": "Observation",
        "id": str(uuid.uuid4()),
        "status": "final",
        "code": {"coding": entry["codings"]},
        "effectivePeriod": {"start": moment.isoformat(), "end": moment.isoformat()},
        "valueQuantity": {"value": value, **quantity},
    }


@needs(HK_MAPPING)
def test_healthkit_on_fhir_observations_import_with_their_units(
    client: TestClient, auth: Auth, session: Session
) -> None:
    mapping = json.loads((SHARED_DATA / HK_MAPPING).read_text())
    pressure = mapping["HKCorrelations"]["HKCorrelationTypeIdentifierBloodPressure"]
    moment = (utcnow() - timedelta(minutes=10)).astimezone(STOCKHOLM).isoformat()
    systolic = mapping["HKQuantitySamples"]["HKQuantityTypeIdentifierBloodPressureSystolic"]
    diastolic = mapping["HKQuantitySamples"]["HKQuantityTypeIdentifierBloodPressureDiastolic"]
    panel = {
        "resourceType": "Observation",
        "id": "hk-bp-1",
        "status": "final",
        "code": {"coding": pressure["codings"]},
        "effectiveDateTime": moment,
        "component": [
            {"code": {"coding": part["codings"]}, "valueQuantity": {"value": v, **part["unit"]}}
            for part, v in ((systolic, 138), (diastolic, 88))
        ],
    }
    steps = healthkit_observation(mapping, "HKQuantityTypeIdentifierStepCount", 412, minutes_ago=60)
    steps["effectivePeriod"]["end"] = (
        (utcnow() - timedelta(minutes=50)).astimezone(STOCKHOLM).isoformat()
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": r}
            for r in [
                panel,
                healthkit_observation(
                    mapping, "HKQuantityTypeIdentifierHeartRate", 64, minutes_ago=11
                ),
                healthkit_observation(
                    mapping, "HKQuantityTypeIdentifierOxygenSaturation", 0.96, minutes_ago=12
                ),
                healthkit_observation(
                    mapping, "HKQuantityTypeIdentifierBloodGlucose", 108, minutes_ago=13
                ),
                healthkit_observation(
                    mapping, "HKQuantityTypeIdentifierBodyMass", 200.5, minutes_ago=14
                ),
                healthkit_observation(
                    mapping, "HKQuantityTypeIdentifierBodyTemperature", 37.4, minutes_ago=15
                ),
                steps,
            ]
        ],
    }
    pid = patient_id(session, "allan")
    answer = post_fhir(client, pid, bundle, auth("allan"))
    assert answer["summary"]["created"] == 7, answer
    assert answer["rejected"] == []
    items = client.get("/v1/patients/me/readings", headers=auth("allan")).json()["items"]
    got = {
        r["type"]: (
            json.dumps(r["value"]),
            r["unit"],
            json.dumps(r["original"]["value"]),
            r["original"]["unit"],
        )
        for r in items
    }
    # Canonical values as stored: lb to kg, mg/dL to mmol/L, the HealthKit fraction to %.
    assert got["blood_pressure"][1] == "mm[Hg]"
    assert json.loads(got["blood_pressure"][0]) == {"systolic": 138, "diastolic": 88}
    assert got["pulse"][1] == "/min"
    assert got["spo2"][1] == "%" and Decimal(json.loads(got["spo2"][0])) == Decimal(96)
    assert got["glucose"][1] == "mmol/L" and got["glucose"][3] == "mg/dL"
    assert got["weight"][1] == "kg" and got["weight"][3] == "[lb_av]"
    weight = Decimal(str(json.loads(got["weight"][0])))
    assert abs(weight - Decimal("90.944")) < Decimal("0.01")  # 200.5 lb
    assert got["temperature"][1] == "Cel"
    assert got["steps"][1] == "{steps}"
    again = post_fhir(client, pid, bundle, auth("allan"))["summary"]
    assert again["created"] == 0 and again["duplicate"] == 7


@needs(R4_EXAMPLES)
def test_the_r4_examples_import_or_say_why_not(
    client: TestClient, auth: Auth, session: Session
) -> None:
    pid = patient_id(session, "allan")
    outcomes = {}
    for name in (
        "Observation-f001",
        "Observation-satO2",
        "Observation-bmi",
        "Observation-heart-rate",
    ):
        document = json.loads((SHARED_DATA / R4_EXAMPLES / f"{name}.json").read_text())
        answer = post_fhir(client, pid, document, auth("allan"))
        outcomes[name] = (
            answer["summary"]["created"],
            [(r["where"], r["errors"][0]["code"]) for r in answer["rejected"]],
        )
    assert outcomes["Observation-f001"] == (1, [])  # glucose 6.3 mmol/L, 2013
    assert outcomes["Observation-satO2"] == (1, [])  # 95 %
    assert outcomes["Observation-bmi"] == (0, [("Observation/bmi", "unknown_type")])
    # The example gives a date without a time of day: no measurement time.
    assert outcomes["Observation-heart-rate"] == (0, [("Observation/heart-rate", "invalid")])
    assert count_readings(session, pid) == 2


def test_bad_fhir_is_refused_or_rejected_per_item_and_stores_nothing(
    client: TestClient, auth: Auth, session: Session
) -> None:
    pid = patient_id(session, "allan")
    url = f"/v1/patients/{pid}/import?format=fhir"
    headers = {**auth("allan"), **FHIR_JSON}
    refused = client.post(url, content=b'{"resourceType": "Observation", ', headers=headers)
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "FHIR resource is not valid JSON" in refused.json()["detail"]
    assert client.post(url, content=b"\xff\xfe", headers=headers).status_code == 400
    moment = (utcnow() - timedelta(minutes=5)).astimezone(STOCKHOLM).isoformat()

    def observation(code: str, value: Any, unit: str, **extra: Any) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "id": code.replace("|", "-") + unit.replace("/", "-"),
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "effectiveDateTime": moment,
            "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": unit},
            **extra,
        }

    bad = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": observation("1234-5", 10, "mg")},  # unknown code
            {"resource": observation("8867-4", 70, "furlong")},  # unknown unit
            {"resource": observation("8867-4", 700, "/min")},  # implausible
            {"resource": observation("8867-4", "70", "/min")},  # value as text
            {"resource": observation("8867-4", 70, "/min", effectiveDateTime="2026-11-20")},
            {
                "resource": {
                    **observation("8867-4", 70, "/min"),
                    "effectiveDateTime": "2026-11-20T07:00:00",
                }
            },
            {"resource": "not a resource"},
            {"resource": {"resourceType": "Patient", "id": "p"}},
        ],
    }
    answer = post_fhir(client, pid, bad, auth("allan"))
    # What the converter cannot read names its place in the Bundle; what the ingest refuses
    # (units, plausibility, offsets) is a per-item result under the Observation's id.
    unread = [(r["where"].split(" ")[0], r["errors"][0]["code"]) for r in answer["rejected"]]
    assert unread == [
        ("entry[0]", "unknown_type"),
        ("entry[3]", "invalid"),
        ("entry[4]", "invalid"),
        ("entry[6]", "invalid"),
    ], answer["rejected"]
    refused_items = [
        (r["client_id"], r["errors"][0]["code"])
        for r in answer["results"]
        if r["status"] == "rejected"
    ]
    assert refused_items == [
        ("fhir:Observation/8867-4furlong", "unknown_unit"),
        ("fhir:Observation/8867-4-min", "implausible"),
        ("fhir:Observation/8867-4-min", "missing_offset"),
    ], answer["results"]
    assert all(r["errors"][0]["message"] for r in answer["rejected"])
    assert answer["summary"]["created"] == 0 and answer["summary"]["skipped"] == 1
    assert count_readings(session, pid) == 0
    not_json_object = post_fhir(client, pid, [1, 2], auth("allan"))
    assert not_json_object["rejected"][0]["errors"][0]["code"] == "invalid"
    assert count_readings(session, pid) == 0


def all_readings(client: TestClient, pid: str, headers: dict[str, str]) -> list[tuple[Any, ...]]:
    """Every measurement of a patient (type, UTC times, value, unit), across the list's pages."""
    rows: list[tuple[Any, ...]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/patients/{pid}/readings", params=params, headers=headers).json()
        rows += [
            (
                r["type"],
                datetime.fromisoformat(r["time"]).astimezone(UTC),
                datetime.fromisoformat(r["end_time"]).astimezone(UTC) if r["end_time"] else None,
                json.dumps(r["value"], sort_keys=True),
                r["unit"],
            )
            for r in page["items"]
            if r["duplicate_of"] is None  # another source's copy: one measurement, exported once
        ]
        cursor = page["next_cursor"]
        if not cursor:
            return sorted(rows, key=repr)


# AT-27. Gunilla's 9,300 CGM values go through the ingest twice (seed, then import): the full
# suite's, not the fast lane's.
@pytest.mark.parametrize(
    "handle", ["allan", "asta", pytest.param("gunilla", marks=pytest.mark.slow)]
)
def test_at27_each_persona_round_trips_through_fhir_into_a_new_patient(
    client: TestClient,
    auth: Auth,
    session: Session,
    factory: sessionmaker[Session],
    settings: Settings,
    handle: str,
) -> None:
    seed_persona(factory, settings, handle)
    pid = patient_id(session, handle)
    pages = walk(client, f"/v1/patients/{pid}/fhir?_count=5000", auth(handle))
    invalid = invalid_resources(pages)
    everything = resources(pages)
    check_persona_bundle(pages, session, pid)
    team = client.get("/v1/teams", headers=auth("olof")).json()["items"][0]["id"]
    enrolled = client.post(
        "/v1/patients",
        json={"personnummer": UNUSED_TEST_PNR, "display_name": "Ny Patient", "team_id": team},
        headers=auth("olof"),
    )
    assert enrolled.status_code == 201, enrolled.text
    new = enrolled.json()["id"]
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in everything],
    }
    answer = post_fhir(client, new, bundle, auth("olof"))
    original = all_readings(client, pid, auth("eva" if handle != "gunilla" else "olof"))
    copied = all_readings(client, new, auth("olof"))
    equal = original == copied
    print(
        f"AT-27 {handle}: resources={len(everything)} invalid={len(invalid)} "
        f"readings={len(original)} readings_equal={equal}"
    )
    assert invalid == []
    assert answer["rejected"] == [] and answer["summary"]["rejected"] == 0
    assert answer["summary"]["created"] == len(original) > 0
    assert equal
