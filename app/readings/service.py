"""Readings: the sync ingest (exactly once, per-item results), listing and deletion.

One batch is one transaction: readings, evaluations, advice, flags, outbox rows, change-feed
rows and the audit row commit together before the answer is sent, or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app import metrics
from app.config import Settings
from app.db import new_id
from app.errors import NotFound
from app.findings import corrections as findings_corrections
from app.findings import evaluation
from app.findings.evaluation import READINGS, ReadingRow, to_fact
from app.findings.models import Advice
from app.goals import progress as goals_progress
from app.patients.models import Patient
from app.readings import feed
from app.readings.models import Reading, ReadingStatus, Source
from rules.facts import ReadingFact
from sync.dedup import DEDUP_WINDOW, find_same_measurement
from sync.normalise import ItemError, NormalisedReading, normalise_reading
from sync.wire import SourceIn


@dataclass
class IngestResult:
    """What a batch did: one result per submitted item, in order, and the advice raised."""

    results: list[dict[str, Any]] = field(default_factory=list)
    advice: list[Advice] = field(default_factory=list)
    created_ids: list[str] = field(default_factory=list)


def upsert_source(session: Session, patient_id: str, source: SourceIn, now: datetime) -> Source:
    """The server's record of an app or device, created on first sight."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(Source)
        .values(
            id=new_id(),
            patient_id=patient_id,
            client_source_id=source.id,
            kind=source.kind,
            name=source.name or "",
            version=source.version or "",
            device=source.device.model_dump() if source.device else None,
            first_seen=now,
            last_seen=now,
        )
        .on_conflict_do_nothing()
    )
    row = session.scalars(
        select(Source).where(Source.patient_id == patient_id, Source.client_source_id == source.id)
    ).one()
    row.last_seen = now
    return row


def _rejected(client_id: Any, errors: Sequence[ItemError]) -> dict[str, Any]:
    return {
        "client_id": client_id if isinstance(client_id, str) else None,
        "status": "rejected",
        "errors": [{"loc": e.loc, "code": e.code, "message": e.message} for e in errors],
    }


def _str_values(values: dict[str, Decimal]) -> dict[str, str]:
    return {k: str(v) for k, v in values.items()}


# Readings move through ingest as plain column mappings (Core rows), not ORM objects:
# batches of thousands are built, inserted and fed to the rules without the unit of work.


def reading_dict(row: ReadingRow) -> dict[str, Any]:
    """The API form of a reading."""
    values, original = row["values"], row["original_values"]
    scalar = list(values) == ["value"]
    return {
        "id": row["id"],
        "client_id": row["client_id"],
        "source_id": row["source_id"],
        "type": row["type"],
        "time": row["time"].isoformat(),
        "utc_offset_minutes": row["utc_offset_minutes"],
        "end_time": row["end_time"].isoformat() if row["end_time"] else None,
        "value": values["value"] if scalar else values,
        "unit": row["unit"],
        "original": {
            "value": original["value"] if scalar else original,
            "unit": row["original_unit"],
        },
        "loinc": row["loinc"],
        "context": row["context"],
        "status": row["status"],
        "duplicate_of": row["duplicate_of"],
        "received_at": row["received_at"].isoformat(),
    }


def ingest(
    session: Session,
    settings: Settings,
    *,
    patient: Patient,
    source: SourceIn,
    items: Sequence[Any],
    entered_by: str | None,
    now: datetime,
) -> IngestResult:
    """Store a batch exactly once, answer per item, and evaluate the plan on what is new."""
    # Serialise batches of one patient: makes the client-id and cross-source checks race-free.
    feed.lock_patient(session, patient.id)
    src = upsert_source(session, patient.id, source, now)
    result = IngestResult()

    normalised = [normalise_reading(item, now=now) for item in items]
    client_ids = {n.client_id for n in normalised if isinstance(n, NormalisedReading)}
    existing: dict[str, ReadingRow] = {}
    if client_ids:
        query = select(READINGS).where(
            READINGS.c.patient_id == patient.id,
            READINGS.c.source_id == src.id,
            READINGS.c.client_id.in_(client_ids),
        )
        existing = {row["client_id"]: row for row in session.execute(query).mappings()}

    slots: list[dict[str, Any] | None] = []
    fresh: list[tuple[int, NormalisedReading]] = []
    first_in_batch: dict[str, NormalisedReading] = {}
    for index, item in enumerate(normalised):
        if not isinstance(item, NormalisedReading):
            raw = items[index]
            slots.append(_rejected(raw.get("client_id") if isinstance(raw, dict) else None, item))
            continue
        prior = existing.get(item.client_id)
        twin = first_in_batch.get(item.client_id)
        if prior is not None:
            # A retry answers what the first upload got; other content is a conflict.
            same = prior["fingerprint"] == item.fingerprint
            slots.append(
                _duplicate_result(item.client_id, prior) if same else _conflict(item.client_id)
            )
        elif twin is not None:
            # The same client_id twice in one batch: filled in below once the first is stored.
            slots.append(
                None if twin.fingerprint == item.fingerprint else _conflict(item.client_id)
            )
        else:
            first_in_batch[item.client_id] = item
            fresh.append((index, item))
            slots.append(None)

    stored = _store_new(session, patient, src, fresh, entered_by, now)
    first_indices = {index for index, _ in fresh}
    for index, slot in enumerate(slots):
        item = normalised[index]
        if slot is not None or not isinstance(item, NormalisedReading):
            continue
        row = stored[item.client_id]
        if index in first_indices and row["duplicate_of"] is None:
            slots[index] = {"client_id": item.client_id, "status": "created", "id": row["id"]}
        else:  # another source's measurement, or a repeat within this batch
            slots[index] = _duplicate_result(item.client_id, row)
    result.results = [slot for slot in slots if slot is not None]
    if len(result.results) != len(items):
        raise RuntimeError("an item of the batch got no result")  # a bug, never bad input
    metrics.count_sync_results(result.results)
    counted = [row for row in stored.values() if row["duplicate_of"] is None]
    result.created_ids = [row["id"] for row in counted]
    if counted:
        result.advice = evaluation.on_readings(
            session, settings, patient=patient, new=[to_fact(r) for r in counted], now=now
        )
    result.advice += goals_progress.recompute_for_readings(
        session, patient, {r["type"] for r in counted}, now
    )
    return result


def _duplicate_result(client_id: str, prior: ReadingRow) -> dict[str, Any]:
    answer: dict[str, Any] = {"client_id": client_id, "status": "duplicate", "id": prior["id"]}
    if prior["duplicate_of"] is not None:
        answer["duplicate_of"] = prior["duplicate_of"]
    return answer


def _conflict(client_id: str) -> dict[str, Any]:
    return _rejected(
        client_id,
        [
            ItemError(
                loc="client_id",
                code="client_id_conflict",
                message="This client_id was already used for a different reading from "
                "this source. Corrections are a delete plus a new reading.",
            )
        ],
    )


def _store_new(
    session: Session,
    patient: Patient,
    src: Source,
    fresh: list[tuple[int, NormalisedReading]],
    entered_by: str | None,
    now: datetime,
) -> dict[str, ReadingRow]:
    """Insert the new readings, marking those another source already sent as duplicates."""
    if not fresh:
        return {}
    others = _other_source_candidates(session, patient.id, src.id, [n for _, n in fresh])
    rows: dict[str, ReadingRow] = {}
    for _, item in fresh:
        original = find_same_measurement(item, others.get(item.type, []))
        rows[item.client_id] = {
            "id": new_id(),
            "patient_id": patient.id,
            "source_id": src.id,
            "client_id": item.client_id,
            "type": item.type,
            "time": item.time,
            "utc_offset_minutes": item.utc_offset_minutes,
            "end_time": item.end_time,
            "values": _str_values(item.values),
            "unit": item.unit,
            "original_values": _str_values(item.original_values),
            "original_unit": item.original_unit,
            "loinc": item.loinc,
            "context": item.context,
            "fingerprint": item.fingerprint,
            "status": ReadingStatus.FINAL.value,
            "duplicate_of": original.id if original is not None else None,
            "received_at": now,
            "entered_by": entered_by,
            "deleted_at": None,
            "deleted_by": None,
        }
    session.execute(insert(READINGS), list(rows.values()))
    feed.append_many(
        session,
        patient.id,
        [feed.ChangeEntry("reading", "upsert", r["id"], reading_dict(r)) for r in rows.values()],
        now=now,
    )
    return rows


def _other_source_candidates(
    session: Session, patient_id: str, source_id: str, items: Sequence[NormalisedReading]
) -> dict[str, list[ReadingFact]]:
    """Counted readings from other sources close in time to the batch, by type."""
    start = min(i.time for i in items) - DEDUP_WINDOW
    end = max(i.time for i in items) + DEDUP_WINDOW
    query = select(READINGS).where(
        READINGS.c.patient_id == patient_id,
        READINGS.c.source_id != source_id,
        READINGS.c.type.in_({i.type for i in items}),
        READINGS.c.time >= start,
        READINGS.c.time <= end,
        READINGS.c.status == ReadingStatus.FINAL,
        READINGS.c.duplicate_of.is_(None),
    )
    grouped: dict[str, list[ReadingFact]] = {}
    for row in session.execute(query).mappings():
        grouped.setdefault(row["type"], []).append(to_fact(row))
    return grouped


def list_readings(
    session: Session,
    patient_id: str,
    *,
    type_: str | None,
    start: datetime | None,
    end: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
    include_deleted: bool = False,
) -> list[ReadingRow]:
    """A page of a patient's readings in time order (keyset on time, id)."""
    c = READINGS.c
    query = select(READINGS).where(c.patient_id == patient_id)
    if type_:
        query = query.where(c.type == type_)
    if start:
        query = query.where(c.time >= start)
    if end:
        query = query.where(c.time < end)
    if not include_deleted:
        query = query.where(c.status == ReadingStatus.FINAL)
    if after is not None:
        t, rid = after
        query = query.where((c.time > t) | ((c.time == t) & (c.id > rid)))
    return list(session.execute(query.order_by(c.time, c.id).limit(limit)).mappings())


def delete_reading(
    session: Session,
    settings: Settings,
    *,
    patient: Patient,
    reading_id: str,
    by: str,
    now: datetime,
    check_entered_by: Callable[[str | None], None] | None = None,
) -> None:
    """Mark a reading entered-in-error (nothing is physically deleted); idempotent.

    ``check_entered_by`` (from the access policy) raises when the caller may not correct a
    reading entered by that user.

    In the same transaction, what the reading caused is undone: the rules re-evaluate its
    windows, flags citing it say so to the team, and goals on its type are recomputed (a
    milestone or goal reached only through it goes back, its congratulation withdrawn).
    """
    patient_id = patient.id
    feed.lock_patient(session, patient_id)
    row = session.get(Reading, reading_id) if len(reading_id) <= 36 else None
    if row is None or row.patient_id != patient_id:
        raise NotFound("No such reading.")
    if check_entered_by is not None:
        check_entered_by(row.entered_by)
    if row.status != ReadingStatus.ENTERED_IN_ERROR:
        removed = to_fact({c.key: getattr(row, c.key) for c in READINGS.columns})
        row.status = ReadingStatus.ENTERED_IN_ERROR
        row.deleted_at, row.deleted_by = now, by
        session.flush()
        feed.append(
            session,
            patient_id,
            entity="reading",
            op="delete",
            entity_id=row.id,
            data={"id": row.id, "status": row.status, "deleted_at": now.isoformat()},
            now=now,
        )
        if row.duplicate_of is None:  # a counted reading is gone: undo what it caused
            findings_corrections.mark_flags_entered_in_error(
                session, patient, reading_id=row.id, received_at=row.received_at, now=now
            )
            evaluation.on_readings(
                session, settings, patient=patient, new=[], removed=[removed], now=now
            )
            goals_progress.correct_goals(session, patient, {row.type}, now)
