"""GET /v1/patients/{pid}/fhir: the patient's data as FHIR R4, valid by fhir.resources (R4B)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent, AuditSubject
from app.auth.models import ProxyGrant, User
from app.clock import utcnow
from app.config import Settings
from app.db import transaction
from app.findings.models import Advice
from app.patients.models import Patient
from app.readings.models import Reading
from app.seed import load_goals, load_readings
from tests.app.factories import STOCKHOLM, batch, bp, patient_id, scalar

Auth = Callable[[str], dict[str, str]]
FHIR_JSON = "application/fhir+json"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
VITAL_SIGNS = "http://terminology.hl7.org/CodeSystem/observation-category"
# Type's LOINC code -> the UCUM codes its R4 vital-signs profile allows.
PROFILE_UNITS = {
    "8867-4": {"/min"},
    "9279-1": {"/min"},
    "2708-6": {"%"},
    "8310-5": {"Cel", "[degF]"},
    "29463-7": {"kg", "g", "[lb_av]"},
}


def fhir_get(client: TestClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    answer = client.get(url, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = answer.json()
    return body


def walk(client: TestClient, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every page of an export, following the next links."""
    pages = [fhir_get(client, url, headers)]
    while True:
        nxt = [link["url"] for link in pages[-1]["link"] if link["relation"] == "next"]
        if not nxt:
            return pages
        parts = urlsplit(nxt[0])
        pages.append(fhir_get(client, f"{parts.path}?{parts.query}", headers))
        assert len(pages) < 100


def resources(pages: list[dict[str, Any]], kind: str | None = None) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for page in pages
        for e in page["entry"]
        if kind is None or e["resource"]["resourceType"] == kind
    ]


def invalid_resources(pages: list[dict[str, Any]]) -> list[str]:
    """Each page as a Bundle, and each resource by its own model: what does not validate."""
    errors = []
    for page in pages:
        try:
            Bundle.model_validate(page)
        except ValueError as exc:
            errors.append(f"Bundle: {exc}")
        for resource in resources([page]):
            model = get_fhir_model_class(resource["resourceType"])
            try:
                model.model_validate(resource)
            except ValueError as exc:
                errors.append(f"{resource['resourceType']}/{resource['id']}: {exc}")
    return errors


def check_vital_signs(observation: dict[str, Any]) -> None:
    """The R4 vital-signs profile's required elements (fhir.resources checks structure only)."""
    assert observation["status"] in ("final", "entered-in-error")
    categories = [c for cat in observation["category"] for c in cat["coding"]]
    assert {"system": VITAL_SIGNS, "code": "vital-signs", "display": "Vital Signs"} in categories
    codes = [c["code"] for c in observation["code"]["coding"] if c["system"] == LOINC]
    assert codes, observation["code"]
    assert observation["subject"]["reference"].startswith("Patient/")
    assert "effectiveDateTime" in observation or "effectivePeriod" in observation
    if codes[0] == "85354-9":
        assert "valueQuantity" not in observation
        parts = {
            c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in observation["component"]
        }
        assert set(parts) == {"8480-6", "8462-4"}
        for quantity in parts.values():
            assert quantity["system"] == UCUM and quantity["code"] == "mm[Hg]"
            assert isinstance(quantity["value"], int | float)
        return
    quantity = observation["valueQuantity"]
    assert quantity["system"] == UCUM
    assert quantity["code"] in PROFILE_UNITS[codes[0]], (codes[0], quantity)
    assert isinstance(quantity["value"], int | float)


def seed_persona(factory: sessionmaker[Session], settings: Settings, handle: str) -> None:
    """A persona's readings and goals, as `selfcare seed` loads them (plans are there)."""
    root = settings.sample_data_dir
    sources = {s["id"]: s for s in json.loads((root / "personas.json").read_text())["sources"]}
    now = utcnow()
    with transaction(factory) as session:
        patient = session.get(Patient, patient_id(session, handle))
        assert patient is not None
        path = root / "readings" / f"{handle}.csv"
        assert load_readings(session, settings, patient, path, sources, now) > 0
        load_goals(session, patient, root / "goals" / f"{handle}.json", None, now)


def counted_rows(session: Session, pid: str) -> int:
    query = select(func.count()).where(Reading.patient_id == pid, Reading.duplicate_of.is_(None))
    return int(session.scalar(query) or 0)


def check_persona_bundle(pages: list[dict[str, Any]], session: Session, pid: str) -> None:
    """A persona's export: valid pages, one Observation per measurement, the profiles' parts.

    Run for each persona by AT-27 (tests/app/interop/test_fhir_import.py), which then imports
    the same Bundle into a new patient.
    """
    assert invalid_resources(pages) == []
    assert all(p["resourceType"] == "Bundle" and p["type"] == "collection" for p in pages)
    assert all(datetime.fromisoformat(p["timestamp"]) <= utcnow() for p in pages)
    observations = resources(pages, "Observation")
    assert len(observations) == counted_rows(session, pid) > 0
    assert len({o["id"] for o in observations}) == len(observations)
    kinds = Counter(r["resourceType"] for r in resources(pages))
    assert kinds["Patient"] == len(pages)
    assert kinds["CarePlan"] >= 1
    (person,) = resources(pages[:1], "Patient")
    assert person["id"] == pid
    assert person["identifier"][0]["system"] == "urn:oid:1.2.752.129.2.1.3.1"
    assert len(person["identifier"][0]["value"]) == 12
    assert person["birthDate"] == (
        f"{person['identifier'][0]['value'][:4]}-{person['identifier'][0]['value'][4:6]}-"
        f"{person['identifier'][0]['value'][6:8]}"
    )
    for observation in observations:
        assert observation["subject"] == {"reference": f"Patient/{pid}"}
        assert "device" in observation
        category = observation["category"][0]["coding"][0]["code"]
        if category == "vital-signs":
            check_vital_signs(observation)
        else:
            quantity = observation["valueQuantity"]
            assert quantity["system"] == UCUM and quantity["code"]
    plans = resources(pages, "CarePlan")
    assert [p["status"] for p in plans].count("active") == 1
    for goal in resources(pages, "Goal"):
        assert goal["lifecycleStatus"]
        for target in goal["target"]:
            if "detailQuantity" in target:
                assert target["detailQuantity"]["system"] == UCUM


def test_categories_codes_and_units_per_type(client: TestClient, auth: Auth) -> None:
    readings = [
        bp(142, 91),
        scalar("pulse", 72, "/min"),
        scalar("spo2", 0.97, "1"),
        scalar("temperature", 37.25, "Cel"),
        scalar("weight", 96.1, "kg"),
        scalar("respiratory_rate", 16, "/min"),
        scalar("glucose", 126, "mg/dL"),
        scalar("cgm_glucose", 7.1, "mmol/L"),
        scalar("ketones", 0.4, "mmol/L"),
        scalar("peak_flow", 420, "L/min"),
        scalar("symptom_score", 12, "{score}", context={"instrument": "CAT"}),
    ]
    steps = scalar("steps", 8042, "{steps}", minutes_ago=24 * 60)
    steps["end_time"] = (utcnow().astimezone(STOCKHOLM)).isoformat()
    readings.append(steps)
    answer = client.post("/v1/patients/me/sync", json=batch(*readings), headers=auth("allan"))
    assert answer.status_code == 200, answer.text
    assert {r["status"] for r in answer.json()["results"]} == {"created"}
    pages = walk(client, "/v1/patients/me/fhir", auth("allan"))
    assert invalid_resources(pages) == []
    by_code: dict[str, dict[str, Any]] = {}
    for o in resources(pages, "Observation"):
        by_code[o["code"]["coding"][-1]["code"] if "text" in o["code"] else ""] = o
        for coding in o["code"]["coding"]:
            if coding["system"] == "urn:egenvard-sync:measurement-type":
                by_code[coding["code"]] = o
    expected = {
        "blood_pressure": ("vital-signs", "85354-9", None),
        "pulse": ("vital-signs", "8867-4", "/min"),
        "spo2": ("vital-signs", "2708-6", "%"),
        "temperature": ("vital-signs", "8310-5", "Cel"),
        "weight": ("vital-signs", "29463-7", "kg"),
        "respiratory_rate": ("vital-signs", "9279-1", "/min"),
        "glucose": ("laboratory", "14743-9", "mmol/L"),
        "cgm_glucose": ("laboratory", "105272-9", "mmol/L"),
        "ketones": ("laboratory", "53060-9", "mmol/L"),
        "steps": ("activity", "55423-8", "{steps}"),
        "peak_flow": ("exam", "19935-6", "L/min"),
        "symptom_score": ("survey", None, "{score}"),
    }
    for type_name, (category, code, unit) in expected.items():
        o = by_code[type_name]
        assert o["category"][0]["coding"][0]["code"] == category, type_name
        loinc = [c["code"] for c in o["code"]["coding"] if c["system"] == LOINC]
        assert (loinc[:1] or [None])[0] == code, type_name
        if category == "vital-signs":
            check_vital_signs(o)
        if unit is not None:
            assert o["valueQuantity"]["code"] == unit, type_name
    assert "59408-5" in [c["code"] for c in by_code["spo2"]["code"]["coding"]]
    assert by_code["symptom_score"]["code"]["text"] == "CAT score"
    assert set(by_code["steps"]["effectivePeriod"]) == {"start", "end"}
    assert "effectiveDateTime" not in by_code["steps"]
    effective = datetime.fromisoformat(by_code["pulse"]["effectiveDateTime"])
    sent = datetime.fromisoformat(readings[1]["time"])
    assert effective == sent and effective.utcoffset() == sent.utcoffset()  # the sent offset


def test_values_are_json_numbers_with_the_stored_decimals(client: TestClient, auth: Auth) -> None:
    readings = [
        scalar("cgm_glucose", 7.1, "mmol/L"),
        scalar("weight", 96.0, "kg"),
        scalar("temperature", 37.25, "Cel"),
        scalar("glucose", 5.55, "mmol/L"),
        scalar("pulse", 64, "/min"),
        bp(142, 91),
    ]
    answer = client.post("/v1/patients/me/sync", json=batch(*readings), headers=auth("allan"))
    assert answer.status_code == 200, answer.text
    raw = client.get("/v1/patients/me/fhir", headers=auth("allan")).text
    body = json.loads(raw, parse_float=Decimal)
    values = {
        o["code"]["coding"][-1]["code"]: o.get("valueQuantity", {}).get("value")
        for o in resources([body], "Observation")
    }
    assert values["cgm_glucose"] == Decimal("7.1")
    assert values["weight"] == Decimal("96.0")
    assert values["temperature"] == Decimal("37.25")
    assert values["glucose"] == Decimal("5.55")
    assert values["pulse"] == 64 and isinstance(values["pulse"], int)
    assert '"value":7.1,' in raw.replace(" ", "")
    assert ucum_values(body) and all(isinstance(v, int | Decimal) for v in ucum_values(body))


def ucum_values(node: Any) -> list[Any]:
    """The value of every UCUM quantity anywhere in a resource."""
    if isinstance(node, list):
        return [v for item in node for v in ucum_values(item)]
    if not isinstance(node, dict):
        return []
    own = [node["value"]] if node.get("system") == UCUM else []
    return own + [v for item in node.values() for v in ucum_values(item)]


def test_paging_gives_every_reading_exactly_once(
    client: TestClient, auth: Auth, session: Session
) -> None:
    now = utcnow()
    readings = [scalar("weight", 80 + (i % 100) / 10, "kg", minutes_ago=i * 7) for i in range(1200)]
    # A few share a time, so the keyset must break ties by id.
    for item in readings[:10]:
        item["time"] = (now - timedelta(minutes=3)).astimezone(STOCKHOLM).isoformat()
    answer = client.post("/v1/patients/me/sync", json=batch(*readings), headers=auth("allan"))
    assert answer.status_code == 200, answer.text
    created = {r["id"] for r in answer.json()["results"] if r["status"] == "created"}
    assert len(created) == 1200
    pages = walk(client, "/v1/patients/me/fhir?_count=500", auth("allan"))
    assert len(pages) == 3
    assert [len(resources([p], "Observation")) for p in pages] == [500, 500, 200]
    ids = [o["id"] for o in resources(pages, "Observation")]
    assert len(ids) == len(set(ids)) == 1200
    assert set(ids) == created
    assert all(len(resources([p], "Patient")) == 1 for p in pages)
    assert resources(pages[1:], "CarePlan") == []  # the rest comes once, on the first page
    assert [link["relation"] for link in pages[-1]["link"]] == ["self"]
    assert invalid_resources(pages[:1]) == []


def test_since_keeps_what_changed_after_it(
    client: TestClient, auth: Auth, factory: sessionmaker[Session]
) -> None:
    first = scalar("weight", 90.5, "kg", minutes_ago=60)
    answer = client.post("/v1/patients/me/sync", json=batch(first), headers=auth("allan"))
    first_id = answer.json()["results"][0]["id"]
    with transaction(factory) as db:  # received an hour ago
        db.execute(
            update(Reading)
            .where(Reading.id == first_id)
            .values(received_at=utcnow() - timedelta(hours=1))
        )
    since = (utcnow() - timedelta(minutes=30)).isoformat()
    second = scalar("weight", 90.4, "kg", minutes_ago=5)
    client.post("/v1/patients/me/sync", json=batch(second), headers=auth("allan"))
    params = {"since": since}
    page = client.get("/v1/patients/me/fhir", params=params, headers=auth("allan")).json()
    assert [o["valueQuantity"]["value"] for o in resources([page], "Observation")] == [90.4]
    # Entering the first in error is a change after `since`: it comes back, so marked.
    deleted = client.delete(f"/v1/patients/me/readings/{first_id}", headers=auth("allan"))
    assert deleted.status_code == 204
    page = client.get("/v1/patients/me/fhir", params=params, headers=auth("allan")).json()
    statuses = {o["id"]: o["status"] for o in resources([page], "Observation")}
    assert statuses[first_id] == "entered-in-error"
    assert list(statuses.values()).count("final") == 1
    assert invalid_resources([page]) == []


def test_bad_parameters_answer_4xx(client: TestClient, auth: Auth) -> None:
    for query, status in [
        ("_count=0", 422),
        ("_count=5001", 422),
        ("since=2026-01-01T00:00:00", 422),  # no offset
        ("since=yesterday", 422),
        ("_cursor=not-a-cursor", 400),
    ]:
        answer = client.get(f"/v1/patients/me/fhir?{query}", headers=auth("allan"))
        assert answer.status_code == status, (query, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")


def audit_rows(session: Session, pid: str) -> list[tuple[str, str, str]]:
    query = (
        select(AuditEvent.actor_handle, AuditEvent.resource, AuditEvent.outcome)
        .join(AuditSubject, AuditSubject.event_seq == AuditEvent.seq)
        .where(AuditSubject.patient_id == pid, AuditEvent.resource.like("%/fhir"))
        .order_by(AuditEvent.seq)
    )
    return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def test_reads_are_audited_and_strangers_get_404(
    client: TestClient, auth: Auth, session: Session, factory: sessionmaker[Session]
) -> None:
    allan, asta = patient_id(session, "allan"), patient_id(session, "asta")
    resource = "GET /v1/patients/{pid}/fhir"
    assert client.get(f"/v1/patients/{allan}/fhir", headers=auth("eva")).status_code == 200
    assert audit_rows(session, allan) == [("eva", resource, "ok")]
    # Another team's clinician, another patient, a missing id: all alike, 404.
    for handle, pid in [("olof", allan), ("gunilla", allan), ("allan", str(uuid.uuid4()))]:
        answer = client.get(f"/v1/patients/{pid}/fhir", headers=auth(handle))
        assert answer.status_code == 404, handle
    assert [r[0] for r in audit_rows(session, allan)] == ["eva", "olof", "gunilla"]
    assert all(r[2].startswith("refused") for r in audit_rows(session, allan)[1:])
    # Maria reads Asta's export as her proxy, until her grant loses the read scope.
    assert client.get(f"/v1/patients/{asta}/fhir", headers=auth("maria")).status_code == 200
    with transaction(factory) as db:
        maria = db.scalars(select(User.id).where(User.handle == "maria")).one()
        db.execute(
            update(ProxyGrant)
            .where(ProxyGrant.grantee_id == maria)
            .values(scopes=["enter_readings"])
        )
    assert client.get(f"/v1/patients/{asta}/fhir", headers=auth("maria")).status_code == 404


def test_openapi_declares_the_fhir_media_type(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/v1/patients/{pid}/fhir"]["get"]
    assert list(operation["responses"]["200"]["content"]) == [FHIR_JSON]
    names = {p["name"] for p in operation["parameters"]}
    assert {"pid", "since", "_count", "_cursor"} <= names


def test_goals_plans_flags_and_advice(
    client: TestClient, auth: Auth, session: Session, factory: sessionmaker[Session],
    settings: Settings,
) -> None:  # fmt: skip
    pid = patient_id(session, "allan")
    with transaction(factory) as db:
        allan = db.get(Patient, pid)
        assert allan is not None
        load_goals(db, allan, settings.sample_data_dir / "goals" / "allan.json", None, utcnow())
    current = client.get(f"/v1/patients/{pid}/plan", headers=auth("eva")).json()
    body = {k: current[k] for k in ("rules", "schedule", "agreements", "contact") if k in current}
    saved = client.put(f"/v1/patients/{pid}/plan", json=body, headers=auth("eva"))
    assert saved.status_code == 200, saved.text
    # A very high blood pressure: advice to Allan and a flag for the team.
    answer = client.post("/v1/patients/me/sync", json=batch(bp(195, 125)), headers=auth("allan"))
    assert answer.json()["advice"], answer.text
    page = fhir_get(client, f"/v1/patients/{pid}/fhir", auth("eva"))
    assert invalid_resources([page]) == []

    plans = resources([page], "CarePlan")
    assert [p["status"] for p in plans] == ["active", "revoked"]
    assert plans[0]["replaces"] == [{"reference": f"CarePlan/{plans[1]['id']}"}]
    assert plans[1]["period"]["end"] == plans[0]["period"]["start"]
    assert plans[0]["activity"] and plans[0]["note"]
    timing = plans[0]["activity"][0]["detail"]["scheduledTiming"]["repeat"]
    assert timing["timeOfDay"] == ["07:00:00", "21:00:00"]

    goals = {g["description"]["text"]: g for g in resources([page], "Goal")}
    pressure = goals["Hemblodtryck under 135/85 till mars"]
    assert pressure["lifecycleStatus"] == "active"
    quantities = {
        t["measure"]["coding"][0]["code"]: t["detailQuantity"] for t in pressure["target"]
    }
    assert quantities["8480-6"] == {
        "value": 135, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]", "comparator": "<",
    }  # fmt: skip
    assert quantities["8462-4"]["value"] == 85
    weight = goals["Gå ner 5 kilo till sommaren"]
    assert [t["detailQuantity"]["value"] for t in weight["target"]] == [91.0, 94.0]
    assert weight["target"][0]["detailQuantity"]["comparator"] == "<="

    (flag,) = resources([page], "Flag")
    assert flag["status"] == "active" and flag["code"]["text"]
    assert flag["code"]["coding"][0]["code"] == "bp-very-high"
    communications = resources([page], "Communication")
    assert communications and all(c["status"] == "completed" for c in communications)
    assert communications[0]["recipient"] == [{"reference": f"Patient/{pid}"}]
    assert communications[0]["payload"][0]["contentString"]

    resolved = client.post(
        f"/v1/flags/{flag['id']}/resolve", json={"note": "Ringt, mäter om"}, headers=auth("eva")
    )
    assert resolved.status_code == 200, resolved.text
    page = fhir_get(client, f"/v1/patients/{pid}/fhir", auth("allan"))
    (flag,) = resources([page], "Flag")
    assert flag["status"] == "inactive" and "end" in flag["period"]

    # The reading entered in error; advice taken back (as a goal's congratulation is).
    reading_id = answer.json()["results"][0]["id"]
    deleted = client.delete(f"/v1/patients/me/readings/{reading_id}", headers=auth("allan"))
    assert deleted.status_code == 204
    advice_id = answer.json()["advice"][0]["id"]
    with transaction(factory) as db:
        db.execute(
            update(Advice)
            .where(Advice.id == advice_id)
            .values(withdrawn_at=utcnow(), withdrawn_reason="entered_in_error")
        )
    page = fhir_get(client, f"/v1/patients/{pid}/fhir", auth("allan"))
    (taken_back,) = [c for c in resources([page], "Communication") if c["id"] == advice_id]
    assert taken_back["status"] == "entered-in-error"
    assert taken_back["statusReason"] == {"text": "entered_in_error"}
    assert {"reference": f"Observation/{reading_id}"} in taken_back["about"]
    observation = next(o for o in resources([page], "Observation") if o["id"] == reading_id)
    assert observation["status"] == "entered-in-error"
    assert invalid_resources([page]) == []
