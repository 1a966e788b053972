"""FHIR R4 resources as plain JSON dicts, built by pure functions from stored rows (DESIGN §4.9).

Nothing here reads the database or the clock: the service loads the rows and passes them in.
Observations follow the R4 vital-signs profiles where R4 has one (blood pressure as the
85354-9 panel with its two components, heart rate, respiratory rate, SpO2, body temperature,
body weight); measured values are JSON numbers with the decimals as stored
(``rules.catalogue.json_number``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from app.findings.models import Advice, Flag, FlagStatus
from app.goals.models import Goal, Milestone
from app.patients.models import Patient
from app.plans.models import PlanVersion
from app.readings.models import ReadingStatus
from rules.catalogue import TypeSpec, json_number, spec_for
from sync.imports.fhir import CLIENT_ID_SYSTEM, INSTRUMENT_SYSTEM, LOINC, TYPE_SYSTEM, UCUM

PERSONNUMMER = "urn:oid:1.2.752.129.2.1.3.1"
SAMORDNINGSNUMMER = "urn:oid:1.2.752.129.2.1.3.3"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
GOAL_ACHIEVEMENT = "http://terminology.hl7.org/CodeSystem/goal-achievement"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
VITAL_SIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
# The service's own code systems, for what no standard code names (rules, instruments); the
# ones an import reads back are defined with the importer.
RULE_SYSTEM = "urn:egenvard-sync:rule"

Json = dict[str, Any]

# Type -> (observation category, R4 vital-signs profile or None).
_CATEGORY: Mapping[str, tuple[str, str | None]] = {
    "blood_pressure": ("vital-signs", "http://hl7.org/fhir/StructureDefinition/bp"),
    "pulse": ("vital-signs", "http://hl7.org/fhir/StructureDefinition/heartrate"),
    "respiratory_rate": ("vital-signs", "http://hl7.org/fhir/StructureDefinition/resprate"),
    "spo2": ("vital-signs", "http://hl7.org/fhir/StructureDefinition/oxygensat"),
    "temperature": ("vital-signs", "http://hl7.org/fhir/StructureDefinition/bodytemp"),
    "weight": ("vital-signs", "http://hl7.org/fhir/StructureDefinition/bodyweight"),
    "glucose": ("laboratory", None),
    "cgm_glucose": ("laboratory", None),
    "ketones": ("laboratory", None),
    "steps": ("activity", None),
    "symptom_score": ("survey", None),
    "peak_flow": ("exam", None),
}
_CATEGORY_DISPLAY = {
    "vital-signs": "Vital Signs",
    "laboratory": "Laboratory",
    "activity": "Activity",
    "survey": "Survey",
    "exam": "Exam",
}
# LOINC code -> its display (the codes CLINICAL.md §1 names).
_LOINC_DISPLAY: Mapping[str, str] = {
    "85354-9": "Blood pressure panel with all children optional",
    "8480-6": "Systolic blood pressure",
    "8462-4": "Diastolic blood pressure",
    "8867-4": "Heart rate",
    "14743-9": "Glucose [Moles/volume] in Capillary blood by Glucometer",
    "41653-7": "Glucose [Mass/volume] in Capillary blood by Glucometer",
    "105272-9": "Glucose [Moles/volume] in Interstitial fluid",
    "99504-3": "Glucose [Mass/volume] in Interstitial fluid",
    "29463-7": "Body weight",
    "2708-6": "Oxygen saturation in Arterial blood",
    "59408-5": "Oxygen saturation in Arterial blood by Pulse oximetry",
    "8310-5": "Body temperature",
    "9279-1": "Respiratory rate",
    "55423-8": "Number of steps in unspecified time Pedometer",
    "41950-7": "Number of steps in 24 hour Measured",
    "19935-6": "Maximum expiratory gas flow Respiratory system airway by Peak flow meter",
    "53060-9": "3-Hydroxybutyrate [Moles/volume] in Blood",
}
# How a UCUM code is written for people (Quantity.unit); the code itself is Quantity.code.
_UNIT_DISPLAY = {"mm[Hg]": "mmHg", "Cel": "°C", "/min": "/min", "{steps}": "steps"}
_GOAL_LIFECYCLE = {
    "proposed": "proposed",
    "active": "active",
    "achieved": "completed",
    "cancelled": "cancelled",
}
_GOAL_ACHIEVEMENT = {
    "on_track": ("in-progress", "In Progress"),
    "at_risk": ("no-progress", "No Progress"),
    "achieved": ("achieved", "Achieved"),
    "not_achieved": ("not-achieved", "Not Achieved"),
}


def instant(moment: datetime) -> str:
    """A UTC time as a FHIR instant."""
    return moment.astimezone(UTC).isoformat()


def local_time(moment: datetime, offset_minutes: int) -> str:
    """A stored UTC time at the reading's original UTC offset (a FHIR dateTime)."""
    return moment.astimezone(timezone(timedelta(minutes=offset_minutes))).isoformat()


def reference(kind: str, resource_id: str) -> Json:
    """A literal reference to a resource of the bundle."""
    return {"reference": f"{kind}/{resource_id}"}


def quantity(value: Any, unit: str, comparator: str | None = None) -> Json:
    """A UCUM quantity with the value as an exact JSON number."""
    out: Json = {
        "value": json_number(value),
        "unit": _UNIT_DISPLAY.get(unit, unit),
        "system": UCUM,
        "code": unit,
    }
    if comparator:
        out["comparator"] = comparator
    return out


def loinc(code: str) -> Json:
    """A LOINC coding with its display where the catalogue names one."""
    coding: Json = {"system": LOINC, "code": code}
    if code in _LOINC_DISPLAY:
        coding["display"] = _LOINC_DISPLAY[code]
    return coding


def _type_code(type_name: str, loinc_code: str, context: Mapping[str, Any]) -> Json:
    """Observation.code: LOINC where there is one; the service's type otherwise."""
    codings: list[Json] = []
    if loinc_code:
        codings.append(loinc(loinc_code))
    if type_name == "spo2" and loinc_code == "2708-6":
        codings.append(loinc("59408-5"))  # pulse oximetry, as CLINICAL.md §1 asks
    codings.append({"system": TYPE_SYSTEM, "code": type_name})
    code: Json = {"coding": codings}
    instrument = context.get("instrument") if type_name == "symptom_score" else None
    if isinstance(instrument, str) and instrument:
        codings.append({"system": INSTRUMENT_SYSTEM, "code": instrument})
        code["text"] = f"{instrument} score"
    else:
        code["text"] = type_name.replace("_", " ")
    return code


def _loinc_of(row: Mapping[str, Any], spec: TypeSpec | None) -> str:
    """The reading's LOINC code for its canonical value.

    A reading keeps the code of the unit it was sent in (41653-7 for glucose in mg/dL); the
    value exported is the canonical one (mmol/L), so the code is the canonical unit's.
    """
    stored = str(row["loinc"] or "")
    if spec is not None and stored in spec.unit_loinc.values():
        return spec.loinc
    return stored


def device_display(source: Mapping[str, Any] | None) -> str | None:
    """The source as people name it: app name and version, and the device."""
    if source is None:
        return None
    parts = [source.get("name") or source.get("client_source_id") or ""]
    if source.get("version"):
        parts.append(str(source["version"]))
    device = source.get("device") or {}
    made = " ".join(str(device[k]) for k in ("manufacturer", "model") if device.get(k))
    if made:
        parts.append(f"({made})")
    text = " ".join(p for p in parts if p).strip()
    return text or None


def observation(row: Mapping[str, Any], patient_id: str, source: Mapping[str, Any] | None) -> Json:
    """One stored reading as an Observation (a vital-signs profile where R4 has one)."""
    type_name = str(row["type"])
    kind, profile = _CATEGORY.get(type_name, ("survey", None))
    values: Mapping[str, Any] = row["values"]
    context: Mapping[str, Any] = row["context"] or {}
    status = "entered-in-error" if row["status"] == ReadingStatus.ENTERED_IN_ERROR else "final"
    spec = spec_for(type_name)
    resource: Json = {"resourceType": "Observation", "id": row["id"]}
    if profile is not None:
        resource["meta"] = {"profile": [VITAL_SIGNS_PROFILE, profile]}
    resource |= {
        "identifier": [{"system": CLIENT_ID_SYSTEM, "value": row["client_id"]}],
        "status": status,
        "category": [
            {
                "coding": [
                    {
                        "system": OBSERVATION_CATEGORY,
                        "code": kind,
                        "display": _CATEGORY_DISPLAY[kind],
                    }
                ],
                "text": _CATEGORY_DISPLAY[kind],
            }
        ],
        "code": _type_code(type_name, _loinc_of(row, spec), context),
        "subject": reference("Patient", patient_id),
    }
    if row["end_time"] is not None:
        offset = int(row["utc_offset_minutes"])
        resource["effectivePeriod"] = {
            "start": local_time(row["time"], offset),
            "end": local_time(row["end_time"], offset),
        }
    else:
        resource["effectiveDateTime"] = local_time(row["time"], int(row["utc_offset_minutes"]))
    resource["issued"] = instant(row["received_at"])
    unit = str(row["unit"])
    if list(values) == ["value"]:
        resource["valueQuantity"] = quantity(values["value"], unit)
    else:
        component_loinc = spec.component_loinc if spec is not None else {}
        resource["component"] = [
            {
                "code": (
                    {"coding": [loinc(component_loinc[name])], "text": name}
                    if name in component_loinc
                    else {"text": name}
                ),
                "valueQuantity": quantity(values[name], unit),
            }
            for name in (spec.components if spec is not None else sorted(values))
            if name in values
        ]
    display = device_display(source)
    if display:
        resource["device"] = {"display": display}
    notes = [f"{k}: {v}" for k, v in sorted(context.items()) if isinstance(v, str | int)]
    if notes:
        resource["note"] = [{"text": "; ".join(notes)}]
    return resource


def patient(row: Patient, birth_date: date | None) -> Json:
    """The patient: personnummer (or samordningsnummer), name and birth date."""
    resource: Json = {"resourceType": "Patient", "id": row.id, "active": True}
    pnr = row.personnummer or ""
    if len(pnr) == 12 and pnr.isdigit():
        system = SAMORDNINGSNUMMER if int(pnr[6:8]) > 60 else PERSONNUMMER
        resource["identifier"] = [{"use": "official", "system": system, "value": pnr}]
    resource["name"] = [{"text": row.display_name}]
    if birth_date is not None:
        resource["birthDate"] = birth_date.isoformat()
    resource["communication"] = [
        {
            "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": row.language}]},
            "preferred": True,
        }
    ]
    return resource


def birth_date_of(personnummer: str) -> date | None:
    """The birth date a personnummer (or samordningsnummer, day + 60) carries, if it parses."""
    if len(personnummer) != 12 or not personnummer.isdigit():
        return None
    day = int(personnummer[6:8])
    try:
        return date(int(personnummer[:4]), int(personnummer[4:6]), day - 60 if day > 60 else day)
    except ValueError:
        return None


def _goal_code(measure: Mapping[str, Any]) -> Json:
    """The measure of a goal target: the LOINC of its type, or of its component."""
    type_name = str(measure.get("type", ""))
    spec = spec_for(type_name)
    component = measure.get("component")
    code_value = ""
    if spec is not None:
        code_value = spec.component_loinc.get(component or "value", "") or (
            spec.loinc if not component else ""
        )
    codings = [loinc(code_value)] if code_value else []
    codings.append({"system": TYPE_SYSTEM, "code": type_name})
    window = measure.get("window_days")
    aggregate = measure.get("aggregate")
    text = " ".join(
        str(p)
        for p in (aggregate, component, type_name.replace("_", " "), window and f"over {window} d")
        if p
    )
    return {"coding": codings, "text": text}


def _comparator(direction: str | None, inclusive: bool) -> str | None:
    if direction == "below":
        return "<=" if inclusive else "<"
    if direction == "above":
        return ">=" if inclusive else ">"
    return None


def _targets(
    measure: Mapping[str, Any], target: Mapping[str, Any], due: date | None, direction: str | None
) -> list[Json]:
    """One FHIR target per component of a target value (a BP goal has two)."""
    value = target.get("value")
    unit = str(target.get("unit") or "")
    comparator = _comparator(direction, bool(target.get("inclusive", True)))
    parts: list[tuple[Mapping[str, Any], Any]]
    if isinstance(value, Mapping):
        parts = [({**measure, "component": name}, v) for name, v in value.items()]
    else:
        parts = [(measure, value)]
    out: list[Json] = []
    for part_measure, part_value in parts:
        entry: Json = {"measure": _goal_code(part_measure)}
        if part_value is not None and unit:
            entry["detailQuantity"] = quantity(part_value, unit, comparator)
        if due is not None:
            entry["dueDate"] = due.isoformat()
        out.append(entry)
    return out


def goal(row: Goal, milestones: Sequence[Milestone], patient_id: str) -> Json:
    """A goal: lifecycle, achievement from its stored progress, targets with UCUM quantities."""
    resource: Json = {
        "resourceType": "Goal",
        "id": row.id,
        "lifecycleStatus": _GOAL_LIFECYCLE.get(row.lifecycle, "proposed"),
    }
    progress = row.progress or {}
    achievement = _GOAL_ACHIEVEMENT.get(str(progress.get("status")))
    if row.lifecycle == "achieved":
        achievement = _GOAL_ACHIEVEMENT["achieved"]
    if achievement is not None:
        resource["achievementStatus"] = {
            "coding": [
                {"system": GOAL_ACHIEVEMENT, "code": achievement[0], "display": achievement[1]}
            ]
        }
    resource |= {
        "description": {"text": row.title},
        "subject": reference("Patient", patient_id),
        "startDate": row.start.isoformat(),
    }
    direction = row.target.get("direction")
    targets = _targets(row.measure, row.target, row.due, direction)
    for milestone in milestones:
        targets += _targets(row.measure, milestone.target, milestone.due, direction)
    resource["target"] = targets
    notes = [{"text": text} for text in row.agreements if text]
    notes += [
        {"text": f"Milestone: {m.title}" + (" (achieved)" if m.achieved_at else "")}
        for m in milestones
    ]
    if notes:
        resource["note"] = notes
    return resource


def _timing(entry: Mapping[str, Any]) -> Json:
    """A schedule entry's times and days as a FHIR Timing."""
    days = entry.get("days", "daily")
    repeat: Json = {
        "frequency": max(1, len(entry.get("times") or [])),
        "period": 1,
        "periodUnit": "wk" if days == "weekly" else "d",
    }
    if entry.get("times"):
        repeat["timeOfDay"] = [f"{t}:00" for t in entry["times"]]
    if days == "weekdays":
        repeat["dayOfWeek"] = ["mon", "tue", "wed", "thu", "fri"]
    return {"repeat": repeat}


def care_plan(
    row: PlanVersion, patient_id: str, *, current: bool, superseded_at: datetime | None
) -> Json:
    """A plan version: active when current, revoked once a newer version replaced it."""
    body = row.body
    status = "active" if current else "revoked"
    resource: Json = {
        "resourceType": "CarePlan",
        "id": row.id,
        "identifier": [{"system": "urn:egenvard-sync:plan-version", "value": str(row.version)}],
        "status": status,
        "intent": "plan",
        "title": f"Egenvårdsplan, version {row.version}",
        "subject": reference("Patient", patient_id),
        "period": {"start": instant(row.created_at)},
        "created": instant(row.created_at),
    }
    if superseded_at is not None:
        resource["period"]["end"] = instant(superseded_at)
    rules = [str(r.get("rule")) for r in body.get("rules", []) if r.get("rule")]
    if rules:
        resource["description"] = "Rules: " + ", ".join(rules)
    activities = []
    for entry in body.get("schedule", []):
        type_name = str(entry.get("type", ""))
        spec = spec_for(type_name)
        code: Json = {"coding": [{"system": TYPE_SYSTEM, "code": type_name}]}
        if spec is not None and spec.loinc:
            code["coding"].insert(0, loinc(spec.loinc))
        times = ", ".join(entry.get("times") or [])
        code["text"] = type_name.replace("_", " ")
        activities.append(
            {
                "detail": {
                    "kind": "ServiceRequest",
                    "code": code,
                    "status": "scheduled" if current else "stopped",
                    "scheduledTiming": _timing(entry),
                    "description": f"Measure {code['text']} {entry.get('days', 'daily')}"
                    + (f" at {times}" if times else ""),
                }
            }
        )
    if activities:
        resource["activity"] = activities
    notes = [{"text": str(a["text"])} for a in body.get("agreements", []) if str(a.get("text", ""))]
    if notes:
        resource["note"] = notes
    return resource


def care_plans(rows: Sequence[PlanVersion], patient_id: str) -> list[Json]:
    """Every plan version (newest first): each names the version it replaced."""
    ordered = sorted(rows, key=lambda r: r.version)
    out: list[Json] = []
    for index, row in enumerate(ordered):
        newer = ordered[index + 1] if index + 1 < len(ordered) else None
        resource = care_plan(
            row,
            patient_id,
            current=newer is None,
            superseded_at=newer.created_at if newer is not None else None,
        )
        if index > 0:
            resource["replaces"] = [reference("CarePlan", ordered[index - 1].id)]
        out.append(resource)
    return out[::-1]


def flag(row: Flag, patient_id: str, lang: str) -> Json:
    """A flag for the care team: active until resolved; the rule names its code."""
    title = row.title.get(lang) or row.title.get("sv") or row.rule_id
    resource: Json = {
        "resourceType": "Flag",
        "id": row.id,
        "status": "inactive" if row.status == FlagStatus.RESOLVED else "active",
        "category": [
            {
                "coding": [{"system": FLAG_CATEGORY, "code": "clinical", "display": "Clinical"}],
                "text": f"severity: {row.severity}",
            }
        ],
        "code": {
            "coding": [
                {"system": RULE_SYSTEM, "code": row.rule_id, "version": str(row.rule_version)}
            ],
            "text": title,
        },
        "subject": reference("Patient", patient_id),
        "period": {"start": instant(row.created_at)},
    }
    if row.resolved_at is not None:
        resource["period"]["end"] = instant(row.resolved_at)
    return resource


def communication(row: Advice, patient_id: str, lang: str) -> Json:
    """Advice sent to the patient, in one language; withdrawn advice is entered in error."""
    title = row.title.get(lang) or row.title.get("sv") or ""
    body = row.body.get(lang) or row.body.get("sv") or ""
    resource: Json = {
        "resourceType": "Communication",
        "id": row.id,
        "language": lang,
        "status": "entered-in-error" if row.withdrawn_at is not None else "completed",
        "category": [
            {"coding": [{"system": RULE_SYSTEM, "code": row.rule_id}], "text": "self-care advice"}
        ],
        "priority": "urgent" if row.priority == "urgent" else "routine",
        "subject": reference("Patient", patient_id),
        "sent": instant(row.created_at),
        "recipient": [reference("Patient", patient_id)],
        "payload": [{"contentString": text} for text in (title, body) if text],
    }
    if row.withdrawn_at is not None and row.withdrawn_reason:
        resource["statusReason"] = {"text": row.withdrawn_reason}
    if row.reading_ids:
        resource["about"] = [reference("Observation", rid) for rid in row.reading_ids]
    return resource


def bundle(
    resources: Sequence[Json], links: Sequence[tuple[str, str]], base: str, now: datetime
) -> Json:
    """A collection Bundle of the resources, made at ``now``, each entry with its full URL."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": instant(now),
        "link": [{"relation": relation, "url": url} for relation, url in links],
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources
        ],
    }
