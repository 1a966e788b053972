"""Open mHealth import: the schema repository's own test data, and the mapping in detail.

Every ``shouldPass`` file of the supported types must become one reading that
``normalise_reading`` accepts, except the files named in ``REJECTED_ON_PURPOSE`` with the
reason they are rejected. Every ``shouldFail`` file must be rejected, for the reason
``FAIL_REASONS`` names for its file name. No ``shouldFail`` file is accepted on purpose:
the importer is lenient only where versions differ (an enumeration is checked against the
union of the supported versions' values), and no ``shouldFail`` file depends on that.
The files are read from ``../shared`` when the tests run, never copied into the project.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sync.imports import ImportResult, omh_to_readings
from sync.imports.omh import SUPPORTED
from sync.normalise import ItemError, NormalisedReading, normalise_reading
from tests.shared_data import SHARED_DATA, needs

OMH = SHARED_DATA / "openmhealth-schemas" / "test-data" / "omh"
NOW = datetime(2030, 1, 1, tzinfo=UTC)  # well after every time in the test data
TYPES = {
    "blood-pressure": "blood_pressure",
    "blood-glucose": "glucose",
    "body-weight": "weight",
    "heart-rate": "pulse",
    "oxygen-saturation": "spo2",
    "step-count": "steps",
    "body-temperature": "temperature",
}

NO_TIME = ("effective_time_frame", "a reading needs a time")
PART_OF_DAY = ("effective_time_frame.time_interval", "a date and part of day is not a time")
STEP_STATISTIC = ("descriptive_statistic", "is not the number of steps in the interval")

REJECTED_ON_PURPOSE: dict[str, tuple[str, str]] = {
    # OMH made the time frame optional in early versions; without one a reading cannot be
    # placed in the patient's day, windowed by a rule or deduplicated (later versions
    # require it: see the missing-time-frame shouldFail files).
    "blood-pressure/1.0/shouldPass/blood-pressure-only.json": NO_TIME,
    "blood-pressure/1.0/shouldPass/with-position.json": NO_TIME,
    "blood-pressure/1.0/shouldPass/with-user-notes.json": NO_TIME,
    "blood-pressure/2.0/shouldPass/blood-pressure-only.json": NO_TIME,
    "blood-pressure/2.0/shouldPass/with-posture.json": NO_TIME,
    "blood-glucose/1.0/shouldPass/blood-glucose-only.json": NO_TIME,
    "blood-glucose/1.0/shouldPass/with-blood-specimen-type.json": NO_TIME,
    "blood-glucose/1.0/shouldPass/with-temporal-relationship-to-meal.json": NO_TIME,
    "blood-glucose/1.0/shouldPass/with-temporal-relationship-to-sleep.json": NO_TIME,
    "blood-glucose/1.0/shouldPass/with-user-notes.json": NO_TIME,
    "blood-glucose/2.0/shouldPass/blood-glucose-only.json": NO_TIME,
    "blood-glucose/2.0/shouldPass/with-specimen-source.json": NO_TIME,
    "body-weight/1.0/shouldPass/body-weight-only.json": NO_TIME,
    "heart-rate/1.0/shouldPass/heart-rate-only.json": NO_TIME,
    "step-count/1.0/shouldPass/step-count-only.json": NO_TIME,
    # "evening of 2013-02-05" is six hours wide and has no UTC offset.
    "blood-pressure/1.0/shouldPass/with-time-frame.json": PART_OF_DAY,
    # A maximum or average steps per day (or session) over months is not the number of
    # steps taken between start and end, which is what a steps reading means.
    "step-count/2.0/shouldPass/with-average.json": STEP_STATISTIC,
    "step-count/2.0/shouldPass/with-maximum.json": STEP_STATISTIC,
    "step-count/2.0/shouldPass/with-session.json": STEP_STATISTIC,
    "step-count/3.0/shouldPass/with-average.json": STEP_STATISTIC,
    "step-count/3.0/shouldPass/with-maximum.json": STEP_STATISTIC,
    "step-count/3.0/shouldPass/with-session.json": STEP_STATISTIC,
    # The interval ends in 2020 but starts in 2023: a broken fixture the schema cannot see.
    "body-temperature/4.0/shouldPass/valid-temperature-with-statistic.json": (
        "effective_time_frame.time_interval",
        "the interval ends before it starts",
    ),
}

# The reason each shouldFail file must be rejected for: (loc of an error, its code).
FAIL_REASONS: dict[str, tuple[str, str]] = {
    "empty-document": ("", "unknown_type"),
    "invalid-unit": ("*.unit", "unknown_unit"),
    "incorrect-unit": ("heart_rate.unit", "unknown_unit"),
    "invalid-unit-step-count": ("step_count.unit", "unknown_unit"),
    "invalid-oxygen-unit": ("supplemental_oxygen_flow_rate.unit", "unknown_unit"),
    "invalid-pa-value": ("temporal_relationship_to_physical_activity", "invalid"),
    "invalid-timeframe-format": ("effective_time_frame.time_interval", "invalid"),
    "invalid-blood-specimen-type": ("blood_specimen_type", "invalid"),
    "invalid-specimen-source": ("specimen_source", "invalid"),
    "invalid-descriptive-statistic": ("descriptive_statistic", "invalid"),
    "invalid-temporal-relationship-to-meal": ("temporal_relationship_to_meal", "invalid"),
    "invalid-temporal-relationship-to-sleep": ("temporal_relationship_to_sleep", "invalid"),
    "invalid-time-frame": ("effective_time_frame", "invalid"),
    "invalid-time-interval": ("effective_time_frame.time_interval", "invalid"),
    "missing-time-frame": ("effective_time_frame", "invalid"),
    "missing-effective-time-frame": ("effective_time_frame", "invalid"),
    "missing-body-weight-unit": ("body_weight.unit", "invalid"),
    "missing-body-weight-value": ("body_weight.value", "invalid"),
    "string-step-count-value": ("step_count*", "invalid"),
    "step-count-only": ("effective_time_frame", "invalid"),
    "with-date-time": ("effective_time_frame", "invalid"),
}


def _files(kind: str) -> list[Path]:
    return sorted(path for name in TYPES for path in OMH.glob(f"{name}/*/{kind}/*.json"))


def _id(path: Path) -> str:
    return path.relative_to(OMH).as_posix()


def _import(path: Path) -> tuple[ImportResult, list[ItemError]]:
    """Import one file; return the result and every error, the importer's or the gate's."""
    result = omh_to_readings(json.loads(path.read_text(encoding="utf-8")))
    errors = [error for rejection in result.rejected for error in rejection.errors]
    for reading in result.readings:
        normalised = normalise_reading(reading, now=NOW)
        if not isinstance(normalised, NormalisedReading):
            errors.extend(normalised)
    return result, errors


def _matches(pattern: str, loc: str) -> bool:
    if pattern.startswith("*"):
        return loc.endswith(pattern[1:])
    if pattern.endswith("*"):
        return loc.startswith(pattern[:-1])
    return loc == pattern


@needs("openmhealth-schemas/test-data/omh")
def test_the_test_data_is_there() -> None:
    assert OMH.is_dir(), f"Open mHealth test data not found at {OMH}"
    for name in TYPES:
        assert list(OMH.glob(f"{name}/*/shouldPass/*.json")), name
        assert list(OMH.glob(f"{name}/*/shouldFail/*.json")), name
    on_disk = {_id(path) for path in _files("shouldPass")}
    assert set(REJECTED_ON_PURPOSE) <= on_disk  # no stale exception


@needs("openmhealth-schemas/test-data/omh")
def test_every_version_on_disk_is_supported() -> None:
    for name in TYPES:
        majors = {path.name.split(".")[0] for path in (OMH / name).iterdir()}
        assert majors <= set(SUPPORTED[name]), name


@pytest.mark.parametrize("path", _files("shouldPass"), ids=_id)
def test_should_pass(path: Path) -> None:
    result, errors = _import(path)
    exception = REJECTED_ON_PURPOSE.get(_id(path))
    if exception is not None:
        loc, reason = exception
        assert not result.readings
        assert any(e.loc == loc and reason in e.message for e in errors), errors
        return
    assert errors == []
    assert len(result.readings) == 1 and not result.rejected
    reading = result.readings[0]
    expected = TYPES[path.parts[-4]]
    assert reading["type"] in ({expected, "cgm_glucose"} if expected == "glucose" else {expected})


@pytest.mark.parametrize("path", _files("shouldFail"), ids=_id)
def test_should_fail(path: Path) -> None:
    result, errors = _import(path)
    assert not result.readings or any(
        not isinstance(normalise_reading(r, now=NOW), NormalisedReading) for r in result.readings
    )
    assert errors and all(e.message for e in errors)
    assert path.stem in FAIL_REASONS, f"say why {_id(path)} must fail"
    loc, code = FAIL_REASONS[path.stem]
    assert any(_matches(loc, e.loc) and e.code == code for e in errors), errors


# -- the mapping in detail -------------------------------------------------------------------


def one(doc: Any) -> dict[str, Any]:
    result = omh_to_readings(doc)
    assert not result.rejected, result.rejected
    assert len(result.readings) == 1
    reading = result.readings[0]
    assert isinstance(normalise_reading(reading, now=NOW), NormalisedReading)
    return reading


def errors_of(doc: Any) -> list[tuple[str, str]]:
    result = omh_to_readings(doc)
    assert not result.readings
    return [(e.loc, e.code) for rejection in result.rejected for e in rejection.errors]


AT = {"effective_time_frame": {"date_time": "2026-11-20T07:31:00+01:00"}}


def bp(**extra: Any) -> dict[str, Any]:
    return {
        "systolic_blood_pressure": {"value": 142, "unit": "mmHg"},
        "diastolic_blood_pressure": {"value": 91, "unit": "mmHg"},
        **AT,
        **extra,
    }


def test_blood_pressure_with_everything() -> None:
    reading = one(
        bp(
            body_posture="sitting",
            measurement_location="left upper arm",
            temporal_relationship_to_physical_activity="at rest",
            user_notes="after coffee",
        )
    )
    assert reading == {
        "client_id": reading["client_id"],
        "type": "blood_pressure",
        "time": "2026-11-20T07:31:00+01:00",
        "value": {"systolic": 142, "diastolic": 91},
        "unit": "mm[Hg]",
        "context": {
            "position": "sitting",
            "location": "left upper arm",
            "activity": "at rest",
            "note": "after coffee",
        },
    }
    assert reading["client_id"].startswith("omh:sha256:")


@pytest.mark.parametrize(
    ("body", "type_name", "value", "unit", "canonical"),
    [
        ({"blood_glucose": {"value": 126, "unit": "mg/dL"}}, "glucose", 126, "mg/dL", "6.993939"),
        ({"blood_glucose": {"value": 7.0, "unit": "mmol/L"}}, "glucose", 7.0, "mmol/L", "7.0"),
        ({"body_weight": {"value": 180, "unit": "lb"}}, "weight", 180, "[lb_av]", "81.646627"),
        ({"body_weight": {"value": 82400, "unit": "g"}}, "weight", 82400, "g", "82.4"),
        ({"heart_rate": {"value": 67.5, "unit": "beats/min"}}, "pulse", 67.5, "/min", "67.5"),
        ({"oxygen_saturation": {"value": 95, "unit": "%"}}, "spo2", 95, "%", "95"),
        ({"body_temperature": {"value": 100.4, "unit": "F"}}, "temperature", 100.4, "[degF]", "38"),
        ({"body_temperature": {"value": 37.2, "unit": "C"}}, "temperature", 37.2, "Cel", "37.2"),
    ],
)
def test_units_map_to_the_catalogue(
    body: dict[str, Any], type_name: str, value: Any, unit: str, canonical: str
) -> None:
    reading = one({**body, **AT})
    assert (reading["type"], reading["value"], reading["unit"]) == (type_name, value, unit)
    normalised = normalise_reading(reading, now=NOW)
    assert isinstance(normalised, NormalisedReading)
    assert normalised.values["value"] == Decimal(canonical)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"body_temperature": {"value": 310, "unit": "K"}}, "body_temperature.unit"),
        ({"body_weight": {"value": 2900, "unit": "oz"}}, "body_weight.unit"),
        ({"blood_glucose": {"value": 5, "unit": "mmol/l"}}, "blood_glucose.unit"),
    ],
)
def test_omh_units_we_do_not_accept(body: dict[str, Any], loc: str) -> None:
    assert errors_of({**body, **AT}) == [(loc, "unknown_unit")]


def test_interstitial_glucose_is_cgm() -> None:
    body = {
        "blood_glucose": {"value": 5.4, "unit": "mmol/L"},
        "specimen_source": "interstitial fluid",
    }
    reading = one({**body, **AT})
    assert reading["type"] == "cgm_glucose"
    assert reading["context"] == {"specimen": "interstitial fluid"}


@pytest.mark.parametrize("specimen", ["urine", "saliva", "tears"])
def test_glucose_outside_blood_is_rejected(specimen: str) -> None:
    body = {"blood_glucose": {"value": 5.4, "unit": "mmol/L"}, "specimen_source": specimen}
    assert errors_of({**body, **AT}) == [("specimen_source", "invalid")]


def test_meal_and_sleep_go_to_the_context() -> None:
    reading = one(
        {
            "blood_glucose": {"value": 95, "unit": "mg/dL"},
            "temporal_relationship_to_meal": "fasting",
            "temporal_relationship_to_sleep": "on waking",
            **AT,
        }
    )
    assert reading["context"] == {"meal": "fasting", "sleep": "on waking"}


def test_a_summary_over_an_interval_keeps_its_end_and_statistic() -> None:
    reading = one(
        {
            "heart_rate": {"value": 50, "unit": "beats/min"},
            "effective_time_frame": {
                "time_interval": {
                    "start_date_time": "2020-02-05T06:00:00+01:00",
                    "end_date_time": "2020-02-06T06:00:00+01:00",
                }
            },
            "descriptive_statistic": "minimum",
        }
    )
    assert reading["time"] == "2020-02-05T06:00:00+01:00"
    assert "end_time" not in reading
    assert reading["context"] == {
        "statistic": "minimum",
        "interval_end": "2020-02-06T06:00:00+01:00",
    }


@pytest.mark.parametrize("statistic", ["standard deviation", "variance", "count", "sum"])
def test_a_statistic_that_is_not_a_level_is_rejected(statistic: str) -> None:
    assert errors_of(bp(descriptive_statistic=statistic)) == [("descriptive_statistic", "invalid")]


@pytest.mark.parametrize(
    "interval",
    [
        {
            "start_date_time": "2026-11-19T00:00:00+01:00",
            "end_date_time": "2026-11-20T00:00:00+01:00",
        },
        {"start_date_time": "2026-11-19T00:00:00+01:00", "duration": {"value": 24, "unit": "h"}},
        {"end_date_time": "2026-11-20T00:00:00+01:00", "duration": {"value": 1, "unit": "d"}},
    ],
)
def test_steps_cover_an_interval(interval: dict[str, Any]) -> None:
    doc = {
        "step_count": {"value": 8042, "unit": "steps"},
        "effective_time_frame": {"time_interval": interval},
    }
    reading = one(doc)
    assert (reading["time"], reading["end_time"]) == (
        "2026-11-19T00:00:00+01:00",
        "2026-11-20T00:00:00+01:00",
    )
    assert (reading["value"], reading["unit"]) == (8042, "{steps}")


def test_a_step_total_may_say_it_is_a_sum() -> None:
    interval = {"start_date_time": "2026-11-19T00:00:00Z", "duration": {"value": 1, "unit": "d"}}
    reading = one(
        {
            "step_count": 8042,
            "effective_time_frame": {"time_interval": interval},
            "descriptive_statistic": "sum",
        }
    )
    assert reading["context"] == {"statistic": "sum"}


@pytest.mark.parametrize(
    ("frame", "loc", "code"),
    [
        ({"date_time": "2026-11-20T07:31:00"}, "effective_time_frame.date_time", "missing_offset"),
        ({"date_time": "yesterday morning"}, "effective_time_frame.date_time", "invalid"),
        ({"date_time": 1763620260}, "effective_time_frame.date_time", "invalid"),
        (
            {
                "time_interval": {
                    "start_date_time": "2026-11-20T07:31:00Z",
                    "duration": {"value": 1, "unit": "Mo"},
                }
            },
            "effective_time_frame.time_interval.duration",
            "invalid",
        ),
        (
            {"date_time": "2026-11-20T07:31:00Z", "time_interval": {}},
            "effective_time_frame",
            "invalid",
        ),
    ],
)
def test_bad_time_frames(frame: dict[str, Any], loc: str, code: str) -> None:
    assert errors_of({**bp(), "effective_time_frame": frame}) == [(loc, code)]


def test_supplemental_oxygen_goes_to_the_context() -> None:
    reading = one(
        {
            "oxygen_saturation": {"value": 91, "unit": "%"},
            "supplemental_oxygen_flow_rate": {"value": 2.5, "unit": "L/min"},
            "oxygen_therapy_mode_of_administration": "nasal cannula",
            "system": "peripheral capillary",
            "measurement_method": "pulse oximetry",
            **AT,
        }
    )
    assert reading["context"] == {
        "oxygen_flow_l_min": 2.5,
        "oxygen_therapy": "nasal cannula",
        "system": "peripheral capillary",
        "method": "pulse oximetry",
    }


def test_long_notes_are_cut_to_the_context_limit() -> None:
    reading = one(bp(user_notes="x" * 2000))
    assert len(reading["context"]["note"]) == 500


def test_numbers_must_be_numbers() -> None:
    doc = bp()
    doc["systolic_blood_pressure"] = {"value": True, "unit": "mmHg"}
    doc["diastolic_blood_pressure"] = {"value": "91", "unit": "mmHg"}
    assert errors_of(doc) == [
        ("systolic_blood_pressure.value", "invalid"),
        ("diastolic_blood_pressure.value", "invalid"),
    ]


def test_exact_decimals_pass_through() -> None:
    doc = json.loads(
        json.dumps({"body_weight": {"value": 82.40, "unit": "kg"}, **AT}), parse_float=Decimal
    )
    assert one(doc)["value"] == Decimal("82.4")


def test_implausible_values_are_left_to_the_gate() -> None:
    result = omh_to_readings(bp(systolic_blood_pressure={"value": 400, "unit": "mmHg"}))
    assert len(result.readings) == 1
    gate = normalise_reading(result.readings[0], now=NOW)
    assert isinstance(gate, list) and [(e.loc, e.code) for e in gate] == [
        ("value.systolic", "implausible")
    ]


# -- data points, headers, lists and client ids ------------------------------------------------

HEADER: dict[str, Any] = {
    "id": "123e4567-e89b-12d3-a456-426655440000",
    "creation_date_time": "2026-11-20T07:32:00Z",
    "schema_id": {"namespace": "omh", "name": "blood-pressure", "version": "4.0"},
    "acquisition_provenance": {"source_name": "Omron Connect", "modality": "sensed"},
}


def test_a_data_point_takes_its_client_id_from_the_header() -> None:
    reading = one({"header": HEADER, "body": bp()})
    assert reading["client_id"] == "omh:123e4567-e89b-12d3-a456-426655440000"
    assert reading["type"] == "blood_pressure"


def test_a_long_header_id_is_hashed() -> None:
    reading = one({"header": {**HEADER, "id": "x" * 300}, "body": bp()})
    assert reading["client_id"].startswith("omh:sha256:") and len(reading["client_id"]) <= 128


@pytest.mark.parametrize(
    ("schema_id", "loc", "code"),
    [
        (
            {"namespace": "omh", "name": "physical-activity", "version": "1.0"},
            "header.schema_id",
            "unknown_type",
        ),
        (
            {"namespace": "omh", "name": "blood-pressure", "version": "5.0"},
            "header.schema_id.version",
            "unknown_type",
        ),
        (
            {"namespace": "acme", "name": "blood-pressure", "version": "4.0"},
            "header.schema_id",
            "unknown_type",
        ),
        ({"namespace": "omh", "name": "heart-rate", "version": "2.0"}, "body", "invalid"),
        ({"namespace": "omh"}, "header.schema_id", "invalid"),
    ],
)
def test_the_header_schema_must_be_supported_and_agree(
    schema_id: dict[str, Any], loc: str, code: str
) -> None:
    result = omh_to_readings({"header": {**HEADER, "schema_id": schema_id}, "body": bp()})
    assert not result.readings
    [rejection] = result.rejected
    assert rejection.client_id == "omh:123e4567-e89b-12d3-a456-426655440000"
    assert any(e.loc.startswith(loc) and e.code == code for e in rejection.errors), rejection


def test_a_data_point_needs_a_body() -> None:
    assert errors_of({"header": HEADER}) == [("body", "invalid")]


def test_a_list_answers_per_item() -> None:
    good = {"header": HEADER, "body": bp()}
    result = omh_to_readings([good, {"heart_rate": {"value": 60, "unit": "beat/min"}, **AT}, 7])
    assert [r["client_id"] for r in result.readings] == ["omh:" + HEADER["id"]]
    assert [(r.where, [e.loc for e in r.errors]) for r in result.rejected] == [
        ("[1]", ["heart_rate.unit"]),
        ("[2]", [""]),
    ]


def test_without_a_header_id_the_client_id_is_a_hash_of_the_content() -> None:
    first = one(bp())
    assert one(bp())["client_id"] == first["client_id"]  # a second import is a duplicate
    same_number = bp(systolic_blood_pressure={"value": 142.0, "unit": "mmHg"})
    assert one(same_number)["client_id"] == first["client_id"]
    later = bp(effective_time_frame={"date_time": "2026-11-20T19:31:00+01:00"})
    assert one(later)["client_id"] != first["client_id"]


def test_a_body_with_two_measurements_is_rejected() -> None:
    doc = {**bp(), "heart_rate": {"value": 60, "unit": "beats/min"}}
    assert errors_of(doc) == [("", "invalid")]
