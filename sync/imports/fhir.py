"""FHIR R4 Observations (one, or a Bundle of them) as sync wire readings (DESIGN §4.9).

The measurement type is read from the codings, most specific first: this service's own type
coding (what its export writes), then a HealthKit type (HealthKit on FHIR writes one beside
the LOINC code), then LOINC (the catalogue's codes per type and unit, the blood-pressure
panel with its 8480-6 / 8462-4 components, pulse oximetry 59408-5, steps per day 41950-7).
Glucose and CGM share no LOINC code, so a capillary code is ``glucose`` and an interstitial
one ``cgm_glucose``. Values are ``valueQuantity`` (or one per component) with the UCUM
``code``, else the written ``unit``; the ingest converts and checks them as for a sync.

Only measurements become readings. Other resources of a Bundle (Patient, Goal, CarePlan,
Flag, Communication, ...) are counted in ``skipped`` and listed by ``ignored``, never stored;
an Observation marked ``entered-in-error`` or ``cancelled`` is skipped the same way (it is
not a measurement). An Observation that cannot be read is a rejection naming its place in the
Bundle and its id.

``client_id`` is ``fhir:`` and the Observation's first identifier (``system|value``), else its
id, else a hash of its content: the same Observation imported again answers ``duplicate``,
and a changed one with the same identifier answers ``client_id_conflict`` (a correction is a
delete plus a new reading, as for a sync).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from rules.catalogue import MeasurementType, spec_for
from sync.imports.omh.errors import Errors
from sync.imports.result import ImportResult, Rejection, bounded_id, content_id

CLIENT_ID_PREFIX = "fhir:"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
HEALTHKIT = "http://developer.apple.com/documentation/healthkit"
# The service's own code systems (its export writes them; an import reads them back).
TYPE_SYSTEM = "urn:egenvard-sync:measurement-type"
INSTRUMENT_SYSTEM = "urn:egenvard-sync:instrument"
CLIENT_ID_SYSTEM = "urn:egenvard-sync:client-id"

BP_PANEL = "85354-9"
_NOT_MEASUREMENTS = frozenset({"entered-in-error", "cancelled"})
_HEALTHKIT_TYPES: Mapping[str, str] = {
    "HKQuantityTypeIdentifierHeartRate": "pulse",
    "HKQuantityTypeIdentifierOxygenSaturation": "spo2",
    "HKQuantityTypeIdentifierBodyTemperature": "temperature",
    "HKQuantityTypeIdentifierBodyMass": "weight",
    "HKQuantityTypeIdentifierBloodGlucose": "glucose",
    "HKQuantityTypeIdentifierStepCount": "steps",
    "HKQuantityTypeIdentifierRespiratoryRate": "respiratory_rate",
    "HKQuantityTypeIdentifierPeakExpiratoryFlowRate": "peak_flow",
    "HKCorrelationTypeIdentifierBloodPressure": "blood_pressure",
}
# LOINC codes that name a type beyond the catalogue's own per type and unit.
_EXTRA_LOINC: Mapping[str, str] = {
    "59408-5": "spo2",  # oxygen saturation by pulse oximetry
    "41950-7": "steps",  # steps in 24 hours
    "2339-0": "glucose",  # glucose in blood, mass/volume
    "15074-8": "glucose",  # glucose in blood, moles/volume
}
# Units as people (and HealthKit on FHIR) write them where no UCUM code is given.
_UNIT_ALIASES: Mapping[str, str] = {
    "mmHg": "mm[Hg]",
    "beats/minute": "/min",
    "breaths/minute": "/min",
    "lbs": "[lb_av]",
    "lb": "[lb_av]",
    "C": "Cel",
    "°C": "Cel",
    "degC": "Cel",
    "F": "[degF]",
    "°F": "[degF]",
    "degF": "[degF]",
    "steps": "{steps}",
    "count": "{steps}",
}
_NOTE_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]{0,63}): (.{1,200})$")


def _loinc_types() -> dict[str, str]:
    """Every LOINC code the catalogue gives a type, and the extra ones above."""
    codes: dict[str, str] = dict(_EXTRA_LOINC)
    for member in MeasurementType:
        spec = spec_for(member.value)
        if spec is None or member.value == "blood_pressure":
            continue
        for code in (spec.loinc, *spec.unit_loinc.values()):
            if code:
                codes.setdefault(code, member.value)
    codes[BP_PANEL] = "blood_pressure"
    return codes


_LOINC_TYPES = _loinc_types()


def fhir_to_readings(document: Any) -> ImportResult:
    """Convert a FHIR Observation, or a Bundle of resources, to sync wire readings."""
    result = ImportResult()
    _document(document, result)
    return ImportResult(
        readings=result.readings,
        rejected=result.rejected,
        skipped=len(result.ignored),
        ignored=result.ignored,
    )


def _document(document: Any, result: ImportResult) -> None:
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        _reject(result, "", None, "", "a FHIR resource is a JSON object with a resourceType")
        return
    if document["resourceType"] != "Bundle":
        _resource(document, "", result)
        return
    entries = document.get("entry", [])
    if not isinstance(entries, list):
        _reject(result, "", None, "entry", "Bundle.entry must be a list")
        return
    for index, entry in enumerate(entries):
        where = f"entry[{index}]"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            _reject(result, where, None, "resource", "a Bundle entry needs a resource object")
            continue
        _resource(resource, where, result)


def _resource(resource: dict[str, Any], where: str, result: ImportResult) -> None:
    kind = resource.get("resourceType")
    named = _named(where, resource)
    if kind != "Observation":
        result.ignored.append(f"{named}: a {kind}, only Observations are imported")
        return
    if resource.get("status") in _NOT_MEASUREMENTS:
        result.ignored.append(f"{named}: status {resource['status']}, not a measurement")
        return
    errors = Errors("")
    reading = _observation(resource, errors)
    client_id = _client_id(resource, reading)
    if errors or reading is None:
        result.rejected.append(Rejection(named, client_id, tuple(errors)))
        return
    result.readings.append({"client_id": client_id, **reading})


def _named(where: str, resource: Mapping[str, Any]) -> str:
    """The place of a resource in the file and its id, as the answer names it."""
    rid = resource.get("id")
    label = f"{resource.get('resourceType')}/{rid}" if isinstance(rid, str) and rid else ""
    return " ".join(p for p in (where, label) if p)


def _reject(result: ImportResult, where: str, client_id: str | None, loc: str, why: str) -> None:
    errors = Errors("")
    errors.invalid(loc, why)
    result.rejected.append(Rejection(where, client_id, tuple(errors)))


def _client_id(resource: Mapping[str, Any], reading: dict[str, Any] | None) -> str | None:
    """The Observation's identifier, id, or content as a stable client_id."""
    identifiers = resource.get("identifier")
    if isinstance(identifiers, list):
        for identifier in identifiers:
            if isinstance(identifier, dict) and isinstance(identifier.get("value"), str):
                system = identifier.get("system")
                if system == CLIENT_ID_SYSTEM:
                    return bounded_id(CLIENT_ID_PREFIX, identifier["value"])
                natural = f"{system}|{identifier['value']}" if system else identifier["value"]
                return bounded_id(CLIENT_ID_PREFIX, natural)
    rid = resource.get("id")
    if isinstance(rid, str) and rid:
        return bounded_id(CLIENT_ID_PREFIX, f"Observation/{rid}")
    return content_id(CLIENT_ID_PREFIX, reading) if reading is not None else None


def _codings(concept: Any) -> list[tuple[str, str]]:
    """The (system, code) pairs of a CodeableConcept."""
    if not isinstance(concept, dict) or not isinstance(concept.get("coding"), list):
        return []
    return [
        (str(c.get("system") or ""), str(c["code"]))
        for c in concept["coding"]
        if isinstance(c, dict) and isinstance(c.get("code"), str)
    ]


def measurement_type(concept: Any) -> str | None:
    """The measurement type an Observation.code names, most specific coding first."""
    codings = _codings(concept)
    for system, code in codings:
        if system == TYPE_SYSTEM and spec_for(code) is not None:
            return code
    for system, code in codings:
        if system == HEALTHKIT and code in _HEALTHKIT_TYPES:
            return _HEALTHKIT_TYPES[code]
    for system, code in codings:
        if system == LOINC and code in _LOINC_TYPES:
            return _LOINC_TYPES[code]
    return None


def _observation(resource: Mapping[str, Any], errors: Errors) -> dict[str, Any] | None:
    type_name = measurement_type(resource.get("code"))
    if type_name is None:
        codes = ", ".join(f"{s or '?'}|{c}" for s, c in _codings(resource.get("code")))
        errors.add("code", "unknown_type", f"no measurement type for the code {codes or '(none)'}")
        return None
    reading: dict[str, Any] = {"type": type_name}
    _effective(resource, reading, errors)
    spec = spec_for(type_name)
    if spec is not None and not spec.interval:
        # HealthKit on FHIR writes a period that starts and ends at once for a point sample.
        reading.pop("end_time", None)
    if type_name == "blood_pressure":
        _components(resource, reading, errors)
    else:
        quantity = _quantity(resource.get("valueQuantity"), "valueQuantity", errors)
        if quantity is not None:
            value, unit = quantity
            reading["value"], reading["unit"] = _healthkit_fraction(
                resource, type_name, value, unit
            )
    context = _context(resource, type_name)
    if context:
        reading["context"] = context
    return None if errors else reading


def _effective(resource: Mapping[str, Any], reading: dict[str, Any], errors: Errors) -> None:
    """The reading's time (and end) from effectiveDateTime, effectiveInstant or the period.

    A point measurement given as a period is taken at its start.
    """
    moment = resource.get("effectiveDateTime", resource.get("effectiveInstant"))
    period = resource.get("effectivePeriod")
    if moment is not None:
        reading["time"] = _date_time(moment, "effectiveDateTime", errors)
    elif isinstance(period, dict) and period.get("start") is not None:
        reading["time"] = _date_time(period["start"], "effectivePeriod.start", errors)
        if period.get("end") is not None:
            reading["end_time"] = _date_time(period["end"], "effectivePeriod.end", errors)
    else:
        errors.invalid("effective", "an Observation needs effectiveDateTime or effectivePeriod")


def _date_time(value: Any, loc: str, errors: Errors) -> str:
    """A FHIR dateTime with a time of day (a date alone is no measurement time)."""
    if not isinstance(value, str) or "T" not in value:
        errors.invalid(loc, f"{loc} needs a date and a time of day with a UTC offset")
        return ""
    return value


def _components(resource: Mapping[str, Any], reading: dict[str, Any], errors: Errors) -> None:
    """Systolic and diastolic from the panel's components, in one unit."""
    spec = spec_for("blood_pressure")
    assert spec is not None
    by_code = {code: name for name, code in spec.component_loinc.items()}
    values: dict[str, Any] = {}
    units: set[str] = set()
    components = resource.get("component")
    for index, component in enumerate(components if isinstance(components, list) else []):
        if not isinstance(component, dict):
            continue
        names = [
            by_code[c] for s, c in _codings(component.get("code")) if s == LOINC and c in by_code
        ]
        if not names:
            continue
        quantity = _quantity(component.get("valueQuantity"), f"component[{index}]", errors)
        if quantity is not None:
            values[names[0]], unit = quantity
            units.add(unit)
    missing = [name for name in spec.components if name not in values]
    if missing and not errors:
        errors.invalid(
            "component", f"a blood pressure needs {' and '.join(missing)} (8480-6, 8462-4)"
        )
    if len(units) > 1:
        errors.add("component", "unknown_unit", "systolic and diastolic come in different units")
    if values and units:
        reading["value"], reading["unit"] = values, units.pop()


def _quantity(quantity: Any, loc: str, errors: Errors) -> tuple[Any, str] | None:
    """A Quantity's value (exact decimal) and its UCUM unit."""
    if not isinstance(quantity, dict) or "value" not in quantity:
        errors.invalid(loc, f"{loc} needs a value")
        return None
    raw = quantity["value"]
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
        errors.invalid(f"{loc}.value", "a quantity's value must be a number")
        return None
    try:
        value = raw if isinstance(raw, Decimal) else Decimal(str(raw))
    except InvalidOperation:
        errors.invalid(f"{loc}.value", "a quantity's value must be a number")
        return None
    code = quantity.get("code") if quantity.get("system") in (UCUM, None) else None
    unit = code if isinstance(code, str) and code else quantity.get("unit")
    if not isinstance(unit, str) or not unit:
        errors.add(f"{loc}.code", "unknown_unit", f"{loc} needs a UCUM unit")
        return None
    if quantity.get("comparator"):
        errors.invalid(f"{loc}.comparator", "a value beyond a limit (< or >) is not imported")
        return None
    return value, _UNIT_ALIASES.get(unit, unit)


def _healthkit_fraction(
    resource: Mapping[str, Any], type_name: str, value: Decimal, unit: str
) -> tuple[Decimal, str]:
    """HealthKit writes oxygen saturation as a fraction with the unit %: 0.97 is 97 %."""
    from_healthkit = any(s == HEALTHKIT for s, _ in _codings(resource.get("code")))
    if type_name == "spo2" and unit == "%" and from_healthkit and value <= 1:
        return value * 100, unit
    return value, unit


def _context(resource: Mapping[str, Any], type_name: str) -> dict[str, Any]:
    """The instrument of a symptom score, and the context this service's export wrote."""
    context: dict[str, Any] = {}
    codings = _codings(resource.get("code"))
    ours = any(s == TYPE_SYSTEM for s, _ in codings)
    if ours:
        notes = resource.get("note")
        for note in notes if isinstance(notes, list) else []:
            text = note.get("text") if isinstance(note, dict) else None
            for part in str(text or "").split("; "):
                match = _NOTE_FIELD.match(part)
                if match:
                    key, value = match.groups()
                    context[key] = int(value) if re.fullmatch(r"-?\d{1,15}", value) else value
    for system, code in codings:
        if system == INSTRUMENT_SYSTEM and type_name == "symptom_score":
            context["instrument"] = code
    return context


__all__ = ["CLIENT_ID_PREFIX", "fhir_to_readings", "measurement_type"]
