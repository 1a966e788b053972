"""Apple Health export.xml / export.zip to wire readings: mapping, layout and hostile files."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest

from sync.imports.apple_health import (
    EntitiesDeclared,
    ExportReader,
    ExportUnreadable,
    apple_time,
)
from sync.imports.result import Rejection
from tests.apple_health_export import (
    BILLION_LAUGHS,
    WATCH_DEVICE,
    blood_pressure,
    export_xml,
    export_zip,
    record,
)
from tests.shared_data import SHARED_DATA, needs

AT = "2026-11-20 07:31:00 +0100"
DOGSHEEP = "apple-health/dogsheep_export.xml"
DOGSHEEP_ZIP = "apple-health/dogsheep_zip_export.xml"


def _read(data: bytes) -> tuple[list[dict[str, Any]], list[Rejection], ExportReader]:
    reader = ExportReader(io.BytesIO(data))
    items = list(reader.items())
    readings = [i for i in items if isinstance(i, dict)]
    return readings, [i for i in items if isinstance(i, Rejection)], reader


@pytest.mark.parametrize(
    ("line", "type_", "value", "unit"),
    [
        (record("HeartRate", "72", "count/min", AT), "pulse", Decimal(72), "/min"),
        (record("RespiratoryRate", "16", "count/min", AT), "respiratory_rate", Decimal(16), "/min"),
        (record("OxygenSaturation", "0.97", "%", AT), "spo2", Decimal("0.97"), "1"),
        (record("BodyTemperature", "100.4", "degF", AT), "temperature", Decimal("100.4"), "[degF]"),
        (record("BodyTemperature", "37.2", "degC", AT), "temperature", Decimal("37.2"), "Cel"),
        (
            record("BloodGlucose", "6.2", "mmol<180.1558800000541>/L", AT),
            "glucose",
            Decimal("6.2"),
            "mmol/L",
        ),
        (record("BloodGlucose", "112", "mg/dL", AT), "glucose", Decimal(112), "mg/dL"),
        (record("BodyMass", "180.5", "lb", AT), "weight", Decimal("180.5"), "[lb_av]"),
        (record("BodyMass", "81.2", "kg", AT), "weight", Decimal("81.2"), "kg"),
    ],
)
def test_each_apple_type_maps_to_the_catalogue(
    line: str, type_: str, value: Decimal, unit: str
) -> None:
    readings, rejected, _ = _read(export_xml(line))
    assert rejected == []
    [reading] = readings
    assert (reading["type"], reading["value"], reading["unit"]) == (type_, value, unit)
    assert reading["time"] == "2026-11-20T07:31:00+01:00"
    assert "end_time" not in reading
    assert reading["client_id"].startswith("apple-health:")


def test_steps_keep_their_interval() -> None:
    line = record("StepCount", "412", "count", AT, "2026-11-20 07:41:00 +0100")
    [reading], _, _ = _read(export_xml(line))
    assert reading["type"] == "steps" and reading["unit"] == "{steps}"
    assert reading["value"] == 412
    assert (reading["time"], reading["end_time"]) == (
        "2026-11-20T07:31:00+01:00",
        "2026-11-20T07:41:00+01:00",
    )


def test_a_blood_pressure_correlation_is_one_reading_and_its_loose_records_are_skipped() -> None:
    readings, rejected, reader = _read(export_xml(blood_pressure("142", "91", AT)))
    assert rejected == []
    assert [(r["type"], r["value"], r["unit"]) for r in readings] == [
        ("blood_pressure", {"systolic": Decimal(142), "diastolic": Decimal(91)}, "mm[Hg]")
    ]
    assert reader.skipped == 2  # the standalone systolic and diastolic records


def test_source_and_device_are_kept_without_the_object_address() -> None:
    line = record("HeartRate", "64", "count/min", AT, source="Allans Watch", device=WATCH_DEVICE)
    [reading], _, _ = _read(export_xml(line))
    assert reading["context"] == {
        "source_name": "Allans Watch",
        "device": "name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,2, "
        "software:9.1",
    }


def test_client_ids_are_stable_across_exports_and_zones() -> None:
    here = record("HeartRate", "64", "count/min", "2026-11-20 07:31:00 +0100")
    there = record("HeartRate", "64", "count/min", "2026-11-20 01:31:00 -0500")
    other = record("HeartRate", "65", "count/min", "2026-11-20 07:31:00 +0100")
    ids = [_read(export_xml(line))[0][0]["client_id"] for line in (here, here, there, other)]
    assert ids[0] == ids[1] == ids[2] != ids[3]


def test_unknown_units_and_bad_values_are_rejected_one_by_one() -> None:
    body = (
        record("HeartRate", "64", "count/s", AT)
        + record("BodyMass", "12", "stone", AT)
        + record("HeartRate", "fast", "count/min", AT)
        + record("HeartRate", "70", "count/min", "yesterday")
        + record("HeartRate", "71", "count/min", AT)
    )
    readings, rejected, _ = _read(export_xml(body))
    assert [r["value"] for r in readings] == [71]
    assert [(r.where, [e.code for e in r.errors]) for r in rejected] == [
        ("record 3 (HeartRate)", ["unknown_unit"]),
        ("record 4 (BodyMass)", ["unknown_unit"]),
        ("record 5 (HeartRate)", ["invalid"]),
        ("record 6 (HeartRate)", ["invalid", "invalid"]),  # startDate and endDate
    ]
    assert "count/s" in rejected[0].errors[0].message
    assert "count/min" in rejected[0].errors[0].message


@needs(DOGSHEEP, DOGSHEEP_ZIP)
@pytest.mark.parametrize("name", [DOGSHEEP, DOGSHEEP_ZIP])
def test_the_dogsheep_exports_hold_one_heart_rate_and_skip_the_rest(name: str) -> None:
    data = (SHARED_DATA / name).read_bytes()
    for payload in (data, export_zip(data)):
        readings, rejected, reader = _read(payload)
        assert [(r["type"], r["value"]) for r in readings] == [("pulse", 72)]
        assert rejected == []
        assert reader.skipped == 4  # BMI, a workout, two activity summaries


def test_an_xml_bomb_is_refused_unexpanded() -> None:
    with pytest.raises(EntitiesDeclared, match="declares XML entities"):
        _read(BILLION_LAUGHS)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not well-formed"),
        (b"{not xml}", "not well-formed"),
        (export_xml(record("HeartRate", "64", "count/min", AT))[:-40], "not well-formed"),
        (export_zip(b"<HealthData/>")[:60], "zip file"),
        (export_zip(b"<HealthData/>", name="other.xml"), "holds no export.xml"),
    ],
    ids=["empty", "not-xml", "truncated-xml", "truncated-zip", "zip-without-export"],
)
def test_broken_files_say_why(data: bytes, message: str) -> None:
    with pytest.raises(ExportUnreadable, match=message):
        _read(data)


def test_a_broken_file_yields_what_came_before_the_break() -> None:
    body = record("HeartRate", "64", "count/min", AT) + record("HeartRate", "65", "count/min", AT)
    data = export_xml(body)
    reader = ExportReader(io.BytesIO(data[: data.index(b"</HealthData>") - 20]))
    seen: list[Any] = []
    with pytest.raises(ExportUnreadable):
        seen.extend(reader.items())
    assert [r["value"] for r in seen] == [64]


def test_apple_times() -> None:
    assert apple_time("2016-04-18 08:25:32 -0700").isoformat() == "2016-04-18T08:25:32-07:00"  # type: ignore[union-attr]
    assert apple_time("2016-04-18T08:25:32-07:00") is None
    assert apple_time("2016-02-30 08:25:32 -0700") is None
