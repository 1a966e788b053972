"""Dexcom Clarity CSV import: the cgmquantify export, DST, Low/High and error rows."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from sync.imports import dexcom_csv_to_readings
from sync.imports.dexcom import local_time
from sync.normalise import NormalisedReading, normalise_reading
from tests.shared_data import SHARED_DATA

EXPORT = SHARED_DATA / "cgmquantify" / "dexcom_g6_test_file.csv"
NOW = datetime(2030, 1, 1, tzinfo=UTC)
STOCKHOLM = ZoneInfo("Europe/Stockholm")
HEADER = (
    "Index,Timestamp (YYYY-MM-DDThh:mm:ss),Event Type,Event Subtype,Patient Info,Device Info,"
    "Source Device ID,Glucose Value (mg/dL),Insulin Value (u),Carb Value (grams),"
    "Duration (hh:mm:ss),Glucose Rate of Change (mg/dL/min)"
)


def export(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def egv(index: int, timestamp: str, value: str, device: str = "iPhone G6") -> str:
    return f"{index},{timestamp},EGV,,,,{device},{value},,,,"


@pytest.fixture(scope="module")
def fixture_text() -> str:
    if not EXPORT.is_file():
        pytest.skip(f"the shared fixture {EXPORT} is not there")
    return EXPORT.read_text(encoding="utf-8")


def test_every_egv_row_of_the_export_imports(fixture_text: str) -> None:
    rows = list(csv.reader(fixture_text.removeprefix("\ufeff").splitlines()))
    egv_rows = [row for row in rows[1:] if row[2] == "EGV"]
    assert len(egv_rows) == 2148  # as the fixture's SOURCE.txt says

    result = dexcom_csv_to_readings(fixture_text, zone="Europe/Stockholm")

    assert result.rejected == []
    assert len(result.readings) == len(egv_rows)
    assert result.skipped == len(rows) - 1 - len(egv_rows)  # name, birth date, device, alerts
    assert len({r["client_id"] for r in result.readings}) == len(egv_rows)
    normalised = [normalise_reading(r, now=NOW) for r in result.readings]
    assert all(isinstance(n, NormalisedReading) for n in normalised)
    times = [n.time for n in normalised if isinstance(n, NormalisedReading)]
    assert times == sorted(times) and len(set(times)) == len(times)
    # The values are the file's, in the order of the file.
    assert [r["value"] for r in result.readings] == [int(row[7]) for row in egv_rows]


@pytest.mark.parametrize(
    ("index", "time", "value"),
    [
        (12, "2016-10-24T11:24:17+02:00", 103),
        (13, "2016-10-24T11:29:17+02:00", 102),
        # 2016-10-30: Stockholm leaves summer time at 03:00 CEST; these rows straddle it.
        (1560, "2016-10-30T02:59:06+02:00", 107),
        (1561, "2016-10-30T03:04:07+01:00", 106),
        (2159, "2016-11-01T09:19:02+01:00", 108),
    ],
)
def test_rows_of_the_export(fixture_text: str, index: int, time: str, value: int) -> None:
    readings = dexcom_csv_to_readings(fixture_text, zone="Europe/Stockholm").readings
    reading = readings[index - 12]  # the first EGV row has Index 12
    utc = datetime.fromisoformat(time).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert reading == {
        "client_id": f"dexcom:iPhone G6:{utc}",
        "type": "cgm_glucose",
        "time": time,
        "value": value,
        "unit": "mg/dL",
    }


def test_the_first_reading_in_mmol(fixture_text: str) -> None:
    reading = dexcom_csv_to_readings(fixture_text, zone="Europe/Stockholm").readings[0]
    normalised = normalise_reading(reading, now=NOW)
    assert isinstance(normalised, NormalisedReading)
    assert normalised.values == {"value": Decimal("5.717267")}  # 103 / 18.0156
    assert normalised.time == datetime(2016, 10, 24, 9, 24, 17, tzinfo=UTC)


def test_the_zone_is_the_patients(fixture_text: str) -> None:
    reading = dexcom_csv_to_readings(fixture_text, zone="America/New_York").readings[0]
    assert reading["time"] == "2016-10-24T11:24:17-04:00"


def test_low_and_high_are_kept_as_censored_readings() -> None:
    """Dexcom's Low and High are the worst values of the export: kept, never dropped."""
    text = export(
        egv(1, "2026-11-20T03:00:00", "Low"),
        egv(2, "2026-11-20T03:05:00", "45"),
        egv(3, "2026-11-20T07:05:00", "High"),
    )
    result = dexcom_csv_to_readings(text, zone=STOCKHOLM)
    assert not result.rejected
    assert [(r["value"], r["unit"], r.get("context")) for r in result.readings] == [
        (40, "mg/dL", {"censored": "below"}),
        (45, "mg/dL", None),
        (400, "mg/dL", {"censored": "above"}),
    ]
    mmol = export(
        egv(1, "2026-11-20T03:00:00", "Low"),
        egv(2, "2026-11-20T03:05:00", "High"),
        header=HEADER.replace("mg/dL", "mmol/L"),
    )
    assert [
        (r["value"], r["context"]) for r in dexcom_csv_to_readings(mmol, zone=STOCKHOLM).readings
    ] == [(Decimal("2.2"), {"censored": "below"}), (Decimal("22.2"), {"censored": "above"})]
    for reading in result.readings:
        assert isinstance(normalise_reading(reading, now=NOW), NormalisedReading)


def test_empty_and_error_values_are_rejected_with_a_reason_per_row() -> None:
    text = export(
        egv(3, "2026-11-20T07:10:00", ""),
        egv(4, "2026-11-20T07:15:00", "5"),  # an error code, not a glucose value
        egv(5, "2026-11-20T07:20:00", "401"),
        egv(6, "not a time", "120"),
        egv(7, "2026-11-20T07:30:00", "12o"),
        egv(8, "2026-11-20T07:35:00", "120"),
    )
    result = dexcom_csv_to_readings(text, zone=STOCKHOLM)
    assert [r["value"] for r in result.readings] == [120]
    reasons = {r.where: [(e.code, e.message) for e in r.errors] for r in result.rejected}
    assert list(reasons) == [f"line {n}" for n in range(2, 7)]
    assert reasons["line 2"] == [("invalid", "no glucose value")]
    assert reasons["line 3"][0][0] == "implausible" and "error code" in reasons["line 3"][0][1]
    assert reasons["line 4"][0][0] == "implausible"
    assert reasons["line 5"][0][0] == "invalid" and "timestamp" in reasons["line 5"][0][1]
    assert reasons["line 6"] == [("invalid", "not a number: '12o'")]
    assert all(r.client_id for r in result.rejected if r.where != "line 5")


def test_a_clock_going_back_keeps_the_rows_in_order() -> None:
    # 2026-10-25 in Stockholm: 02:00–02:59 happens twice (CEST, then CET).
    rows = [egv(1, "2026-10-25T01:55:00", "100")]
    rows += [egv(2 + i, f"2026-10-25T02:{m:02d}:00", "100") for i, m in enumerate(range(0, 60, 5))]
    rows += [egv(20 + i, f"2026-10-25T02:{m:02d}:00", "101") for i, m in enumerate(range(0, 60, 5))]
    rows += [egv(40, "2026-10-25T03:00:00", "102")]
    result = dexcom_csv_to_readings(export(*rows), zone=STOCKHOLM)
    assert not result.rejected
    times = [datetime.fromisoformat(r["time"]) for r in result.readings]
    steps = {later - earlier for earlier, later in zip(times, times[1:], strict=False)}
    assert steps == {timedelta(minutes=5)}
    assert result.readings[1]["time"] == "2026-10-25T02:00:00+02:00"
    assert result.readings[13]["time"] == "2026-10-25T02:00:00+01:00"
    assert len({r["client_id"] for r in result.readings}) == len(rows)


def test_a_clock_going_back_in_a_file_newest_first() -> None:
    rows = [egv(1, "2026-10-25T03:00:00", "102")]
    rows += [
        egv(2 + i, f"2026-10-25T02:{m:02d}:00", "101") for i, m in enumerate(range(55, -1, -5))
    ]
    rows += [
        egv(20 + i, f"2026-10-25T02:{m:02d}:00", "100") for i, m in enumerate(range(55, -1, -5))
    ]
    result = dexcom_csv_to_readings(export(*rows), zone=STOCKHOLM)
    times = [datetime.fromisoformat(r["time"]) for r in result.readings]
    steps = {earlier - later for earlier, later in zip(times, times[1:], strict=False)}
    assert steps == {timedelta(minutes=5)}


def test_a_time_in_the_spring_gap_takes_the_old_offset() -> None:
    # 2026-03-29: 02:00–02:59 does not exist in Stockholm; a clock not yet moved shows it.
    result = dexcom_csv_to_readings(export(egv(1, "2026-03-29T02:30:00", "100")), zone=STOCKHOLM)
    assert result.readings[0]["time"] == "2026-03-29T02:30:00+01:00"


@pytest.mark.parametrize(
    ("naive", "previous", "offset_hours"),
    [
        (datetime(2026, 7, 1, 12), None, 2),
        (datetime(2026, 12, 1, 12), None, 1),
        (datetime(2026, 10, 25, 2, 30), None, 2),
        (datetime(2026, 10, 25, 2, 30), datetime(2026, 10, 25, 1, 25, tzinfo=UTC), 1),
        (datetime(2026, 10, 25, 2, 30), datetime(2026, 10, 25, 0, 25, tzinfo=UTC), 2),
    ],
)
def test_local_time(naive: datetime, previous: datetime | None, offset_hours: int) -> None:
    aware = local_time(naive, STOCKHOLM, previous)
    assert aware.utcoffset() == timedelta(hours=offset_hours)
    assert aware.replace(tzinfo=None) == naive


def test_an_mmol_export_with_decimal_commas_and_a_transmitter() -> None:
    header = (
        "Index,Timestamp (YYYY-MM-DDThh:mm:ss),Event Type,Event Subtype,Patient Info,"
        "Device Info,Source Device ID,Glucose Value (mmol/L),Transmitter Time (Long Integer),"
        "Transmitter ID"
    )
    text = export(
        '1,2026-11-20 07:00:00,EGV,,,,Android G6,"5,6",123456,8XYZ12',
        "2,2026-11-20 07:05:00,EGV,,,,Android G6,5.8,123756,8XYZ12",
        "3,2026-11-20 07:10:00,EGV,,,,Android G6,2.1,124056,8XYZ12",
        header=header,
    )
    result = dexcom_csv_to_readings(text, zone=STOCKHOLM)
    assert [(r["value"], r["unit"]) for r in result.readings] == [
        (Decimal("5.6"), "mmol/L"),
        (Decimal("5.8"), "mmol/L"),
    ]
    assert result.readings[0]["client_id"] == "dexcom:8XYZ12:123456"
    assert result.readings[0]["time"] == "2026-11-20T07:00:00+01:00"
    assert [e.code for e in result.rejected[0].errors] == ["implausible"]  # below 2.2 mmol/L


def test_lines_before_the_header_and_a_byte_order_mark_are_ignored() -> None:
    text = "\ufeffDexcom Clarity export\n,,\n" + export(egv(1, "2026-11-20T07:00:00", "100"))
    result = dexcom_csv_to_readings(text, zone=STOCKHOLM)
    assert len(result.readings) == 1 and not result.rejected


def test_a_file_that_is_not_a_clarity_export() -> None:
    result = dexcom_csv_to_readings("a,b,c\n1,2,3\n", zone=STOCKHOLM)
    assert not result.readings
    [rejection] = result.rejected
    assert "no header row" in rejection.errors[0].message


def test_an_import_twice_gives_the_same_client_ids(fixture_text: str) -> None:
    first = dexcom_csv_to_readings(fixture_text, zone="Europe/Stockholm")
    again = dexcom_csv_to_readings(fixture_text, zone="Europe/Stockholm")
    assert first.readings == again.readings
