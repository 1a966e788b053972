"""Readings: storing a sync batch exactly once (per-item results), listing, entering in error.

This is the *store* step of the ingest (:mod:`app.ingest.pipeline`): what the rules, the
findings and the goals make of the stored readings is the pipeline's business, not this
module's. Its queries are in :mod:`app.readings.repository`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from app.db import new_id
from app.errors import NotFound
from app.feed import service as feed
from app.patients.models import Patient
from app.readings import repository
from app.readings.models import ReadingStatus
from app.readings.repository import ReadingRow

# The sync router lists readings through the service.
from app.readings.repository import list_readings as list_readings
from rules.catalogue import json_value
from rules.facts import ReadingFact
from sync.dedup import DEDUP_WINDOW, find_same_measurement
from sync.normalise import ItemError, NormalisedReading
from sync.wire import ItemResult, ItemStatus, SourceIn


@dataclass
class StoredBatch:
    """What storing a batch did: one result per submitted item, in order, and the new rows."""

    results: list[dict[str, Any]] = field(default_factory=list)
    counted: list[ReadingRow] = field(default_factory=list)
    """The readings stored that count (not another source's copy), for the rules and goals."""


def upsert_source(session: Session, patient_id: str, source: SourceIn, now: datetime) -> str:
    """Record an app or device (created on first sight, ``last_seen`` now); return its id."""
    values = {
        "kind": source.kind,
        "name": source.name or "",
        "version": source.version or "",
        "device": source.device.model_dump() if source.device else None,
    }
    return repository.upsert_source(
        session, patient_id, client_source_id=source.id, values=values, now=now
    )


def _wire(result: ItemResult) -> dict[str, Any]:
    """The JSON form of one item's result: only the fields it sets (no nulls)."""
    return result.model_dump(mode="json", exclude_unset=True)


def _rejected(client_id: Any, errors: Sequence[ItemError]) -> dict[str, Any]:
    return _wire(ItemResult.rejected(client_id if isinstance(client_id, str) else None, errors))


def _str_values(values: dict[str, Decimal]) -> dict[str, str]:
    return {k: str(v) for k, v in values.items()}


def reading_dict(row: ReadingRow) -> dict[str, Any]:
    """The API form of a reading: its values as JSON numbers with the decimals as stored."""
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
        "value": json_value(values["value"] if scalar else values),
        "unit": row["unit"],
        "original": {
            "value": json_value(original["value"] if scalar else original),
            "unit": row["original_unit"],
        },
        "loinc": row["loinc"],
        "context": row["context"],
        "status": row["status"],
        "duplicate_of": row["duplicate_of"],
        "received_at": row["received_at"].isoformat(),
    }


def store(
    session: Session,
    *,
    patient: Patient,
    source: SourceIn,
    items: Sequence[Any],
    normalised: Sequence[NormalisedReading | Sequence[ItemError]],
    entered_by: str | None,
    now: datetime,
) -> StoredBatch:
    """Store a normalised batch exactly once, with its change entries; answer per item.

    A retry of a stored client id answers what the first upload got; a measurement another
    source already sent is stored as its duplicate (it does not count). The caller holds the
    patient's feed lock, which makes both checks race-free.
    """
    source_id = upsert_source(session, patient.id, source, now)
    client_ids = {n.client_id for n in normalised if isinstance(n, NormalisedReading)}
    existing = repository.by_client_id(session, patient.id, source_id, client_ids)

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

    stored = _store_new(session, patient, source_id, fresh, entered_by, now)
    first_indices = {index for index, _ in fresh}
    for index, slot in enumerate(slots):
        item = normalised[index]
        if slot is not None or not isinstance(item, NormalisedReading):
            continue
        row = stored[item.client_id]
        if index in first_indices and row["duplicate_of"] is None:
            slots[index] = _wire(
                ItemResult(client_id=item.client_id, status=ItemStatus.created, id=row["id"])
            )
        else:  # another source's measurement, or a repeat within this batch
            slots[index] = _duplicate_result(item.client_id, row)
    batch = StoredBatch(results=[slot for slot in slots if slot is not None])
    if len(batch.results) != len(items):
        raise RuntimeError("an item of the batch got no result")  # a bug, never bad input
    batch.counted = [row for row in stored.values() if row["duplicate_of"] is None]
    return batch


def _duplicate_result(client_id: str, prior: ReadingRow) -> dict[str, Any]:
    if prior["duplicate_of"] is None:  # not another source's copy: the answer has no such key
        return _wire(ItemResult(client_id=client_id, status=ItemStatus.duplicate, id=prior["id"]))
    return _wire(
        ItemResult(
            client_id=client_id,
            status=ItemStatus.duplicate,
            id=prior["id"],
            duplicate_of=prior["duplicate_of"],
        )
    )


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
    source_id: str,
    fresh: list[tuple[int, NormalisedReading]],
    entered_by: str | None,
    now: datetime,
) -> dict[str, ReadingRow]:
    """Insert the new readings, marking those another source already sent as duplicates."""
    if not fresh:
        return {}
    others = _other_source_candidates(session, patient.id, source_id, [n for _, n in fresh])
    rows: dict[str, ReadingRow] = {}
    for _, item in fresh:
        original = find_same_measurement(item, others.get(item.type, []))
        rows[item.client_id] = {
            "id": new_id(),
            "patient_id": patient.id,
            "source_id": source_id,
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
    repository.insert_rows(session, list(rows.values()))
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
    return repository.counted_near(
        session,
        patient_id,
        other_than_source=source_id,
        types={i.type for i in items},
        start=min(i.time for i in items) - DEDUP_WINDOW,
        end=max(i.time for i in items) + DEDUP_WINDOW,
    )


def mark_entered_in_error(
    session: Session,
    *,
    patient: Patient,
    reading_id: str,
    by: str,
    now: datetime,
    check_entered_by: Callable[[str | None], None] | None = None,
) -> ReadingRow | None:
    """Mark a reading entered-in-error, with its change entry; idempotent (nothing is deleted).

    ``check_entered_by`` (from the access policy) raises when the caller may not correct a
    reading entered by that user. Answers the reading as it was when a reading that counted
    is now gone (what it caused is for the caller to undo), else None.
    """
    row = repository.get(session, reading_id)
    if row is None or row.patient_id != patient.id:
        raise NotFound("No such reading.")
    if check_entered_by is not None:
        check_entered_by(row.entered_by)
    if row.status == ReadingStatus.ENTERED_IN_ERROR:
        return None
    before = repository.as_row(row)
    row.status = ReadingStatus.ENTERED_IN_ERROR
    row.deleted_at, row.deleted_by = now, by
    session.flush()
    feed.append(
        session,
        patient.id,
        entity="reading",
        op="delete",
        entity_id=row.id,
        data={"id": row.id, "status": row.status, "deleted_at": now.isoformat()},
        now=now,
    )
    return before if row.duplicate_of is None else None
