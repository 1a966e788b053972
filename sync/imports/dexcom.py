"""Dexcom Clarity CSV exports as ``cgm_glucose`` sync wire readings.

Only ``EGV`` rows (estimated glucose values) are readings; the patient, device, alert,
calibration, insulin and carb rows are skipped (counted in ``skipped``). The header row is
found by its ``Event Type`` column, so rows before it are ignored; the glucose unit comes
from the ``Glucose Value (mg/dL)`` or ``Glucose Value (mmol/L)`` header.

``Low`` and ``High`` rows (the glucose was beyond the sensor's range, 40–400 mg/dL or
2.2–22.2 mmol/L) are censored readings, never dropped: the limit value in the export's unit
with ``context.censored`` ``below`` or ``above`` (CLINICAL §7). They are the worst lows and
highs of the export, so they count in time below 3.0 / above 13.9 mmol/L and fire the
very-low and high rules.

Rejected EGV rows, each with its line and reason: values outside the sensor's reporting range
(Dexcom writes error codes there), empty values, and missing or malformed timestamps.

Timestamps are the receiver's local display time without an offset. They are read in the
patient's IANA zone: a time that occurs twice when clocks go back takes the offset that
puts it nearest the previous row (a CGM writes every 5 minutes, so the rows walk through
the repeated hour in order; the first row of a file takes the earlier offset); a time in
the gap when clocks go forward takes the offset from before the change (a clock that had
not yet moved). Each reading keeps its own offset on the wire.

``client_id`` is ``dexcom:<transmitter id>:<transmitter time>`` when the export has those
columns, else ``dexcom:<source device>:<UTC time>``; never the row index, which changes
from one export to the next.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from rules.catalogue import CENSORED
from sync.imports.result import ImportResult, Rejection, bounded_id
from sync.normalise import ItemError, ItemErrorCode

CLIENT_ID_PREFIX = "dexcom:"
SENSOR_RANGE = {
    "mg/dL": (Decimal(40), Decimal(400)),
    "mmol/L": (Decimal("2.2"), Decimal("22.2")),
}
"""The values a Dexcom sensor reports, per unit; outside it Dexcom writes Low/High."""

_GLUCOSE_HEADER = re.compile(r"^Glucose Value \((mg/dL|mmol/L)\)$")
_DECIMAL_COMMA = re.compile(r"^\d+,\d+$")


@dataclass(frozen=True)
class _Columns:
    timestamp: int
    event_type: int
    glucose: int
    unit: str
    device: int | None
    transmitter_id: int | None
    transmitter_time: int | None


def dexcom_csv_to_readings(text: str, *, zone: str | tzinfo) -> ImportResult:
    """Convert a Dexcom Clarity CSV export to cgm_glucose wire readings."""
    local_zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    readings: list[dict[str, Any]] = []
    rejected: list[Rejection] = []
    skipped = 0
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    columns: _Columns | None = None
    previous: datetime | None = None  # UTC time of the last EGV row, for repeated hours
    for row in reader:
        if columns is None:
            columns = _header(row)
            continue
        if not any(cell.strip() for cell in row):
            continue
        if _cell(row, columns.event_type) != "EGV":
            skipped += 1
            continue
        errors: list[ItemError] = []
        time = _time(row, columns, local_zone, previous, errors)
        if time is not None:
            previous = time.astimezone(UTC)
        censored = _censored(row, columns)
        value = _value(row, columns, errors) if censored is None else censored[1]
        client_id = None if time is None else _client_id(row, columns, time)
        if errors or time is None or value is None or client_id is None:
            rejected.append(Rejection(f"line {reader.line_num}", client_id, tuple(errors)))
            continue
        reading: dict[str, Any] = {
            "client_id": client_id,
            "type": "cgm_glucose",
            "time": time.isoformat(),
            "value": value,
            "unit": columns.unit,
        }
        if censored is not None:
            reading["context"] = {CENSORED: censored[0]}
        readings.append(reading)
    if columns is None:
        error = ItemError(
            loc="",
            code=ItemErrorCode.invalid,
            message="not a Dexcom Clarity export: no header row with an Event Type column",
        )
        rejected.append(Rejection("", None, (error,)))
    return ImportResult(readings, rejected, skipped)


def _header(row: Sequence[str]) -> _Columns | None:
    names = [cell.strip() for cell in row]
    if "Event Type" not in names:
        return None
    timestamp = next((i for i, n in enumerate(names) if n.startswith("Timestamp")), None)
    glucose = next((i for i, n in enumerate(names) if _GLUCOSE_HEADER.match(n)), None)
    if timestamp is None or glucose is None:
        return None
    match = _GLUCOSE_HEADER.match(names[glucose])
    assert match is not None
    return _Columns(
        timestamp=timestamp,
        event_type=names.index("Event Type"),
        glucose=glucose,
        unit=match.group(1),
        device=_find(names, "Source Device ID"),
        transmitter_id=_find(names, "Transmitter ID"),
        transmitter_time=_find(names, "Transmitter Time (Long Integer)"),
    )


def _find(names: list[str], name: str) -> int | None:
    return names.index(name) if name in names else None


def _cell(row: Sequence[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


def _time(
    row: Sequence[str],
    columns: _Columns,
    zone: tzinfo,
    previous: datetime | None,
    errors: list[ItemError],
) -> datetime | None:
    text = _cell(row, columns.timestamp)
    try:
        parsed = datetime.fromisoformat(text) if text else None
    except ValueError:
        parsed = None
    if parsed is None:
        errors.append(
            ItemError("Timestamp", ItemErrorCode.invalid, f"not a timestamp: {text[:40]!r}")
        )
        return None
    if parsed.tzinfo is not None:
        return parsed
    return local_time(parsed, zone, previous)


def local_time(naive: datetime, zone: tzinfo, previous: datetime | None = None) -> datetime:
    """Attach the zone's offset to a wall-clock time, DST-safe (see the module docstring)."""
    candidates = [
        aware
        for aware in (naive.replace(tzinfo=zone, fold=fold) for fold in (0, 1))
        if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive
    ] or [naive.replace(tzinfo=zone, fold=0)]  # in a spring-forward gap: the old offset
    chosen = candidates[0]
    if previous is not None:  # min keeps the first of a tie
        chosen = min(candidates, key=lambda c: abs(c.astimezone(UTC) - previous))
    offset = chosen.utcoffset()
    assert offset is not None
    return naive.replace(tzinfo=timezone(offset))


def _value(row: Sequence[str], columns: _Columns, errors: list[ItemError]) -> int | Decimal | None:
    loc = f"Glucose Value ({columns.unit})"
    text = _cell(row, columns.glucose)
    if _DECIMAL_COMMA.match(text):
        text = text.replace(",", ".")  # a decimal comma, as in a Swedish export
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        message = "no glucose value" if not text else f"not a number: {text[:40]!r}"
        errors.append(ItemError(loc, ItemErrorCode.invalid, message))
        return None
    low, high = SENSOR_RANGE[columns.unit]
    if not low <= number <= high:
        errors.append(
            ItemError(
                loc,
                ItemErrorCode.implausible,
                f"{text} {columns.unit} is outside the sensor's range {low}–{high} "
                "(an error code, not a glucose value)",
            )
        )
        return None
    return int(number) if text.isdigit() else number


def _censored(row: Sequence[str], columns: _Columns) -> tuple[str, int | Decimal] | None:
    """``("below", 40)`` for a ``Low`` row, ``("above", 400)`` for ``High``; else None."""
    text = _cell(row, columns.glucose).casefold()
    if text not in ("low", "high"):
        return None
    low, high = SENSOR_RANGE[columns.unit]
    limit = low if text == "low" else high
    number: int | Decimal = int(limit) if limit == limit.to_integral_value() else limit
    return ("below" if text == "low" else "above"), number


def _client_id(row: Sequence[str], columns: _Columns, time: datetime) -> str:
    transmitter = _cell(row, columns.transmitter_id)
    transmitter_time = _cell(row, columns.transmitter_time)
    if transmitter and transmitter_time:
        return bounded_id(CLIENT_ID_PREFIX, f"{transmitter}:{transmitter_time}")
    device = _cell(row, columns.device) or "unknown"
    utc = time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return bounded_id(CLIENT_ID_PREFIX, f"{device}:{utc}")


__all__ = ["CLIENT_ID_PREFIX", "SENSOR_RANGE", "dexcom_csv_to_readings", "local_time"]
