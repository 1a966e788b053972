"""Apple Health exports (``export.xml``, or the ``export.zip`` around it) as sync wire readings.

Streaming: :meth:`ExportReader.items` yields readings and :class:`Rejection`\\ s while it
reads, so the app can ingest chunk by chunk; every top-level element is dropped from the tree
once handled, so memory stays bounded however long the export is. Parsing is by
``defusedxml``: Apple's inline DTD (element and attribute declarations) is read, but an entity
declaration (a billion-laughs bomb) or an external reference stops the file at once, unexpanded.

What becomes a reading (Apple's type → catalogue type, Apple's unit → catalogue unit):

- ``HeartRate`` → ``pulse`` (``count/min`` → ``/min``); ``RespiratoryRate`` → ``respiratory_rate``;
- a ``<Correlation type="HKCorrelationTypeIdentifierBloodPressure">`` → one ``blood_pressure``
  from the systolic and diastolic records inside it. Apple also writes those two samples as
  top-level records (all records come before the correlations in the file, grouped by type),
  so top-level ``BloodPressureSystolic``/``Diastolic`` records are skipped, never paired:
  pairing them would mean remembering every one of them until the end of the file, and a
  lone systolic is not a blood pressure reading anyway;
- ``OxygenSaturation`` → ``spo2``: Apple writes a fraction (0.97) with unit ``%``; it goes on
  the wire as unit ``1``, which the catalogue converts to 97 % (the original stays 0.97);
- ``BodyTemperature`` (``degC``, ``degF``), ``BloodGlucose`` (``mg/dL``, and Apple's
  ``mmol<180.15588…>/L`` as ``mmol/L``), ``BodyMass`` (``kg``, ``g``, ``lb``);
- ``StepCount`` → ``steps`` for the record's own interval (``startDate``..``endDate``): Apple
  writes a record per device and a few minutes; they are kept as they are, not summed per day
  (a sum would mix the phone's and the watch's counts of the same walk). A day's steps count
  one device's records, the one that counted most (``rules.progress.days.one_device_a_day``).

Any other element (BMI, workouts, activity summaries, ``Me``, ...) counts as ``skipped``. An
Apple unit not listed for the type is a rejection of that record (``unknown_unit``) with the
units that are known; implausible values are rejected by the ingest's normalisation.

Times: ``2016-04-18 08:25:32 -0700`` becomes ``2016-04-18T08:25:32-07:00``.

Source and device: one import is one source (the app's ``import-apple-health``); each
reading keeps Apple's ``sourceName`` and ``device`` in its ``context`` (``source_name``,
``device``). Why context and not a source per app: the ingest takes one source per batch and
a chunk mixes the watch, the phone and every app; and the context travels with the reading
to the care team's views. The device text is stored without the ``HKDevice: 0x…`` object
address, which changes from one export to the next (it would change the content, so a later
export's copy of a reading would conflict instead of answering duplicate).

``client_id``: ``apple-health:<type>:<sourceName>:<UTC start>[/<UTC end>]:<value>``
(hashed when longer than a client_id may be), so the same record in the same or a later
export answers duplicate. UTC, because Apple writes every date in the exporting phone's
zone of the day of export; a later export written in another zone keeps the same id (its
changed offset then answers ``client_id_conflict``: rejected, never stored twice).
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import IO, Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException, EntitiesForbidden
from defusedxml.ElementTree import iterparse

from sync.imports.result import Rejection, bounded_id
from sync.normalise import ItemError, ItemErrorCode

CLIENT_ID_PREFIX = "apple-health:"
EXPORT_NAME = "export.xml"
"""The export's file name inside ``export.zip`` (``apple_health_export/export.xml``)."""

_HK = "HKQuantityTypeIdentifier"
_BP_CORRELATION = "HKCorrelationTypeIdentifierBloodPressure"
_SYSTOLIC = _HK + "BloodPressureSystolic"
_DIASTOLIC = _HK + "BloodPressureDiastolic"
_APPLE_GLUCOSE_MMOL = re.compile(r"^mmol<\d+(\.\d+)?>/L$")
_APPLE_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-]\d{2})(\d{2})$")
_DEVICE_ADDRESS = re.compile(r"HKDevice: 0x[0-9A-Fa-f]+>?,?\s*")


@dataclass(frozen=True)
class _Mapping:
    type: str
    units: dict[str, str]  # Apple's unit -> the catalogue's


RECORD_TYPES: dict[str, _Mapping] = {
    _HK + "HeartRate": _Mapping("pulse", {"count/min": "/min"}),
    _HK + "RespiratoryRate": _Mapping("respiratory_rate", {"count/min": "/min"}),
    _HK + "OxygenSaturation": _Mapping("spo2", {"%": "1"}),  # Apple's % is a fraction
    _HK + "BodyTemperature": _Mapping("temperature", {"degC": "Cel", "degF": "[degF]"}),
    _HK + "BloodGlucose": _Mapping("glucose", {"mg/dL": "mg/dL", "mmol/L": "mmol/L"}),
    _HK + "BodyMass": _Mapping("weight", {"kg": "kg", "g": "g", "lb": "[lb_av]"}),
    _HK + "StepCount": _Mapping("steps", {"count": "{steps}"}),
}
"""Apple quantity types read as readings (blood pressure comes from its correlation)."""

_BP_UNITS = {"mmHg": "mm[Hg]"}


class ExportUnreadable(ValueError):
    """The file cannot be read (on): not XML, not a zip with an export, or entities declared."""

    def __init__(self, message: str, *, records_read: int) -> None:
        super().__init__(message)
        self.records_read = records_read


class EntitiesDeclared(ExportUnreadable):
    """The file declares XML entities (or refers outside itself): refused, never expanded."""


@dataclass
class ExportReader:
    """Read one export from a binary file (xml or zip), counting as it goes."""

    file: IO[bytes]
    records_read: int = 0  # top-level elements handled (records, correlations, workouts, ...)
    skipped: int = 0

    def items(self) -> Iterator[dict[str, Any] | Rejection]:
        """Yield wire readings and rejections in file order; ExportUnreadable on a bad file."""
        xml = self._xml()
        try:
            yield from self._parse(xml)
        finally:
            if xml is not self.file:
                xml.close()

    def _xml(self) -> IO[bytes]:
        head = self.file.read(4)
        self.file.seek(0)
        if head != b"PK\x03\x04":
            return self.file
        try:
            archive = zipfile.ZipFile(self.file)
            names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == EXPORT_NAME]
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ExportUnreadable(
                f"the zip file is damaged or incomplete ({exc})", records_read=0
            ) from exc
        if not names:
            raise ExportUnreadable(f"the zip file holds no {EXPORT_NAME}", records_read=0)
        # apple_health_export/export.xml; the shortest path if a zip holds more than one.
        return archive.open(min(names, key=len))

    def _parse(self, xml: IO[bytes]) -> Iterator[dict[str, Any] | Rejection]:
        depth = 0
        root: Element | None = None
        try:
            for event, element in iterparse(xml, events=("start", "end")):
                if event == "start":
                    depth += 1
                    if depth == 1:
                        root = element
                    continue
                depth -= 1
                if depth != 1:
                    continue  # nested elements are read with their top-level element
                self.records_read += 1
                yield from self._top_level(element)
                element.clear()
                if root is not None:
                    root.remove(element)  # the root would otherwise keep every emptied child
        except EntitiesForbidden as exc:
            raise EntitiesDeclared(
                f"the file declares XML entities ({exc.name!r}); an Apple Health export "
                "declares none, and they are refused, not expanded",
                records_read=self.records_read,
            ) from exc
        except DefusedXmlException as exc:
            raise EntitiesDeclared(
                f"the file refers to something outside itself ({exc}); refused",
                records_read=self.records_read,
            ) from exc
        except ParseError as exc:
            line, column = exc.position
            raise ExportUnreadable(
                f"the XML is not well-formed at line {line}, column {column} "
                f"(after {self.records_read} records)",
                records_read=self.records_read,
            ) from exc
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
            # A zip member that breaks while it is read (truncated, bad CRC, bad deflate data).
            raise ExportUnreadable(
                f"the zip file breaks after {self.records_read} records ({exc})",
                records_read=self.records_read,
            ) from exc
        if root is None:
            raise ExportUnreadable("the file is empty", records_read=0)

    def _top_level(self, element: Element) -> Iterator[dict[str, Any] | Rejection]:
        where = f"record {self.records_read}"
        if element.tag == "Record":
            kind = element.get("type", "")
            mapping = RECORD_TYPES.get(kind)
            if mapping is None:  # also a top-level systolic/diastolic: see the docstring
                self.skipped += 1
                return
            yield _quantity(element, mapping, where)
        elif element.tag == "Correlation" and element.get("type") == _BP_CORRELATION:
            yield _blood_pressure(element, where)
        elif element.tag not in ("ExportDate", "Me"):
            self.skipped += 1


def _quantity(record: Element, mapping: _Mapping, where: str) -> dict[str, Any] | Rejection:
    short = record.get("type", "").removeprefix(_HK)
    errors: list[ItemError] = []
    start, end = _time(record, "startDate", errors), _time(record, "endDate", errors)
    value = _number(record, errors)
    unit = _unit(record, mapping.units, short, errors)
    source_name = record.get("sourceName", "")
    client_id = None
    if start is not None and end is not None and value is not None:
        client_id = _client_id(short, source_name, start, end, value, mapping.type == "steps")
    if errors or start is None or end is None or value is None or unit is None:
        return Rejection(f"{where} ({short})", client_id, tuple(errors))
    assert client_id is not None
    reading: dict[str, Any] = {
        "client_id": client_id,
        "type": mapping.type,
        "time": start.isoformat(),
        "value": value,
        "unit": unit,
        "context": _context(record),
    }
    if mapping.type == "steps":
        reading["end_time"] = end.isoformat()
    return reading


def _blood_pressure(correlation: Element, where: str) -> dict[str, Any] | Rejection:
    errors: list[ItemError] = []
    start = _time(correlation, "startDate", errors)
    values: dict[str, Decimal] = {}
    units: set[str] = set()
    for record in correlation.iter("Record"):
        component = {_SYSTOLIC: "systolic", _DIASTOLIC: "diastolic"}.get(record.get("type", ""))
        if component is None:
            continue
        number = _number(record, errors, loc=f"value.{component}")
        unit = _unit(record, _BP_UNITS, "BloodPressure", errors)
        if number is not None:
            values[component] = number
        if unit is not None:
            units.add(unit)
    for component in ("systolic", "diastolic"):
        if component not in values and not any(e.loc == f"value.{component}" for e in errors):
            errors.append(
                ItemError(
                    f"value.{component}",
                    ItemErrorCode.invalid,
                    f"the blood pressure correlation has no {component} record",
                )
            )
    client_id = None
    if start is not None and len(values) == 2:
        client_id = _client_id(
            "BloodPressure",
            correlation.get("sourceName", ""),
            start,
            start,
            f"{values['systolic']}/{values['diastolic']}",
            False,
        )
    if len(units) > 1:
        errors.append(
            ItemError("unit", ItemErrorCode.invalid, "systolic and diastolic in different units")
        )
    if errors or start is None or client_id is None or len(units) != 1:
        return Rejection(f"{where} (BloodPressure)", client_id, tuple(errors))
    return {
        "client_id": client_id,
        "type": "blood_pressure",
        "time": start.isoformat(),
        "value": values,
        "unit": units.pop(),
        "context": _context(correlation),
    }


def apple_time(text: str) -> datetime | None:
    """Read Apple's ``2016-04-18 08:25:32 -0700``; None when it is not that shape."""
    match = _APPLE_TIME.match(text)
    if match is None:
        return None
    day, clock, hours, minutes = match.groups()
    try:
        return datetime.fromisoformat(f"{day}T{clock}{hours}:{minutes}")
    except ValueError:
        return None


def _time(element: Element, name: str, errors: list[ItemError]) -> datetime | None:
    text = element.get(name, "")
    parsed = apple_time(text)
    if parsed is None:
        loc = "time" if name == "startDate" else "end_time"
        errors.append(ItemError(loc, ItemErrorCode.invalid, f"{name} is not a date: {text[:40]!r}"))
    return parsed


def _number(element: Element, errors: list[ItemError], loc: str = "value") -> Decimal | None:
    text = element.get("value", "")
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        errors.append(ItemError(loc, ItemErrorCode.invalid, f"not a number: {text[:40]!r}"))
        return None
    return number


def _unit(
    element: Element, units: dict[str, str], short: str, errors: list[ItemError]
) -> str | None:
    apple = element.get("unit", "")
    if _APPLE_GLUCOSE_MMOL.match(apple):
        apple = "mmol/L"  # mmol<180.155…>/L: Apple writes glucose's molar mass into the unit
    unit = units.get(apple)
    if unit is None:
        known = ", ".join(sorted(units))
        errors.append(
            ItemError(
                "unit",
                ItemErrorCode.unknown_unit,
                f"Apple Health unit {apple[:40]!r} is not known for {short} (known: {known})",
            )
        )
    return unit


def _context(element: Element) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if source := element.get("sourceName"):
        context["source_name"] = source[:200]
    if device := element.get("device"):
        context["device"] = _DEVICE_ADDRESS.sub("", device).strip("<> ")[:200]
    return context


def _client_id(
    short: str, source: str, start: datetime, end: datetime, value: Any, interval: bool
) -> str:
    utc = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if interval or end != start:
        utc += "/" + end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return bounded_id(CLIENT_ID_PREFIX, f"{short}:{source}:{utc}:{value}")


__all__ = [
    "CLIENT_ID_PREFIX",
    "EXPORT_NAME",
    "RECORD_TYPES",
    "EntitiesDeclared",
    "ExportReader",
    "ExportUnreadable",
    "apple_time",
]
