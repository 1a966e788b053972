"""The patient's own copy of their data: a ZIP with the FHIR Bundle and a CSV per type.

The ZIP is written to a spooled temporary file page by page (``PAGE`` readings at a time),
so a long CGM history does not sit in memory twice. It holds:

- ``fhir-bundle.json``: every page of ``GET /v1/patients/{pid}/fhir`` as one collection
  Bundle (the Patient once, then Goals, CarePlans, Flags, advice and every Observation);
- ``<type>.csv`` per measurement type: local time (the reading's own UTC offset) and UTC,
  the end of an interval, the value as stored (one column per component, so a blood pressure
  has systolic and diastolic), the unit, the value and unit as sent, the source and the
  status; RFC 4180 with a UTF-8 byte order mark, so a spreadsheet shows å, ä and ö;
- ``LASMIG.txt``: what the files are, in Swedish and English.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy.orm import Session

from app.auth.policy import Access
from app.interop import fhir
from app.interop import service as interop_service
from app.readings import repository as readings_repository
from app.readings.repository import ReadingRow
from rules.catalogue import MeasurementType, spec_for

PAGE = 5000
SPOOL_BYTES = 8 * 1024 * 1024  # past this the ZIP goes to a temporary file on disk
CHUNK = 64 * 1024
README = """Dina egenvårdsvärden — en kopia av dina uppgifter

fhir-bundle.json  allt i FHIR R4-format: dina värden, mål, planer, råd och flaggor.
                  Vården och andra appar kan läsa den.
<typ>.csv         dina värden, en fil per sorts mätning. Öppna i ett kalkylprogram.
                  local_time är tiden där du mätte, utc_time samma tid i UTC.
                  value är värdet så som tjänsten sparat det (unit), original_value
                  och original_unit som din app eller mätare skickade det.

Your self-care values — a copy of your data

fhir-bundle.json  everything in FHIR R4: your values, goals, plans, advice and flags.
<type>.csv        your values, one file per kind of measurement, for a spreadsheet.
                  local_time is the time where you measured, utc_time the same in UTC;
                  value and unit as stored, original_value and original_unit as sent.
"""


def patient_copy(
    session: Session, access: Access, *, lang: str, base: str, now: datetime
) -> IO[bytes]:
    """The patient's copy as a ZIP in a (spooled) temporary file, positioned at its start."""
    # Not a with-block: the file outlives this call; chunks() closes it once it is sent.
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_entry("LASMIG.txt", now), README)
        with archive.open(_entry("fhir-bundle.json", now), "w") as target:
            _write_bundle(session, access, io.TextIOWrapper(target, "utf-8"), lang, base, now)
        for type_name, rows in _by_type(session, access.patient.id):
            with archive.open(_entry(f"{type_name}.csv", now), "w") as target:
                _write_csv(session, type_name, rows, io.TextIOWrapper(target, "utf-8-sig"))
    out.seek(0)
    return out


def _entry(name: str, now: datetime) -> zipfile.ZipInfo:
    """A compressed member of the ZIP, dated when the copy was made (UTC)."""
    info = zipfile.ZipInfo(name, date_time=now.astimezone(UTC).timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def chunks(file: IO[bytes]) -> Iterator[bytes]:
    """The file's bytes in pieces, closing it at the end."""
    with file:
        while piece := file.read(CHUNK):
            yield piece


def _write_bundle(
    session: Session, access: Access, text: io.TextIOWrapper, lang: str, base: str, now: datetime
) -> None:
    """Every page of the FHIR export as one Bundle, written entry by entry."""
    head = fhir.bundle([], [], base, now)
    del head["entry"], head["link"]
    text.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "entry": [')
    cursor: str | None = None
    first = True
    while True:
        page = interop_service.export(
            session,
            access,
            since=None,
            count=PAGE,
            cursor=cursor,
            lang=lang,
            base=base,
            self_url="",
            next_url=lambda c: c,
            now=now,
        )
        entries = page["entry"] if cursor is None else page["entry"][1:]  # the Patient once
        for entry in entries:
            text.write(("" if first else ",\n") + json.dumps(entry, ensure_ascii=False))
            first = False
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not following:
            break
        cursor = following[0]
    text.write("]}\n")
    text.flush()
    text.detach()


def _by_type(session: Session, patient_id: str) -> Iterator[tuple[str, Iterator[ReadingRow]]]:
    """Each measurement type the patient has readings of, with its readings in time order."""
    for member in MeasurementType:
        first = readings_repository.changed_page(
            session, patient_id, since=None, after=None, limit=PAGE, type_=member.value
        )
        if first:
            yield member.value, _pages(session, patient_id, member.value, first)


def _pages(
    session: Session, patient_id: str, type_name: str, page: list[ReadingRow]
) -> Iterator[ReadingRow]:
    """The readings of one type, a page of ``PAGE`` at a time."""
    while True:
        yield from page
        if len(page) < PAGE:
            return
        page = readings_repository.changed_page(
            session,
            patient_id,
            since=None,
            after=(page[-1]["time"], page[-1]["id"]),
            limit=PAGE,
            type_=type_name,
        )


def _write_csv(
    session: Session, type_name: str, rows: Iterator[ReadingRow], text: io.TextIOWrapper
) -> None:
    """One type's readings as CSV: times, value per component, units, source, status."""
    spec = spec_for(type_name)
    components = list(spec.components) if spec is not None else ["value"]
    value_columns = components if components != ["value"] else ["value"]
    original_columns = [f"original_{c}" for c in value_columns]
    sources: dict[str, str] = {}
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(
        [
            "local_time",
            "utc_time",
            "end_local_time",
            "end_utc_time",
            *value_columns,
            "unit",
            *original_columns,
            "original_unit",
            "source",
            "status",
        ]
    )
    for row in rows:
        offset = int(row["utc_offset_minutes"])
        end = row["end_time"]
        if row["source_id"] not in sources:
            sources |= _source_names(session, [row["source_id"]])
        writer.writerow(
            [
                fhir.local_time(row["time"], offset),
                fhir.instant(row["time"]),
                fhir.local_time(end, offset) if end else "",
                fhir.instant(end) if end else "",
                *_values(row["values"], value_columns),
                row["unit"],
                *_values(row["original_values"], value_columns),
                row["original_unit"],
                sources[row["source_id"]],
                row["status"],
            ]
        )
    text.flush()
    text.detach()


def _values(values: dict[str, Any], columns: list[str]) -> list[str]:
    return [str(values.get(column, "")) for column in columns]


def _source_names(session: Session, source_ids: list[str]) -> dict[str, str]:
    """The sources as people name them (app, version, device)."""
    named = interop_service.source_dicts(session, source_ids)
    return {sid: fhir.device_display(named.get(sid)) or "" for sid in source_ids}
