"""The sync path as one pipeline: each step once, in this order, in one transaction.

1. **normalise** each item on its own (:mod:`sync.normalise`, pure): units, fingerprints,
   per-item errors;
2. **store** the new readings exactly once (:mod:`app.readings.service`): a client-id retry
   answers what the first upload got, another source's copy of a measurement is stored as a
   duplicate that does not count; each stored reading gets its change entry here, because the
   goals' incremental progress finds changed days through the feed;
3. **evaluate** the plan's rules on the counted new readings and every window they touch
   (:mod:`app.findings.evaluation`: load, then the pure :mod:`rules.engine`);
4. **record findings**: evaluations, advice and flag episodes, idempotently
   (:mod:`app.findings.service`);
5. **goal progress** of the open goals on the batch's types (:mod:`app.goals.progress`);
   their congratulations are advice too;
6. **publish**: the change-feed entries of steps 4 and 5 in the order they were recorded,
   then the push outbox (:mod:`app.findings.outgoing`).

The caller (the request, the import, the seed) commits: readings, evaluations, advice,
flags, outbox rows, change-feed rows and the audit row commit together before the answer is
sent, or not at all. The patient's feed lock, taken first, serialises batches of a patient.

A reading entered in error (:func:`delete_reading`) takes the same road back: store the
mark, evaluate the windows it leaves, record (flags citing it say so), correct the goals,
publish.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app import metrics
from app.config import Settings
from app.feed import service as feed
from app.findings import corrections as findings_corrections
from app.findings import evaluation
from app.findings.models import Advice
from app.findings.outgoing import Outgoing, publish
from app.goals import progress as goals_progress
from app.patients.models import Patient
from app.readings import service as readings_service
from app.readings.repository import to_fact
from sync.normalise import normalise_reading
from sync.wire import SourceIn


@dataclass
class IngestResult:
    """What a batch did: one result per submitted item, in order, and the advice raised."""

    results: list[dict[str, Any]] = field(default_factory=list)
    advice: list[Advice] = field(default_factory=list)
    created_ids: list[str] = field(default_factory=list)


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
    normalised = [normalise_reading(item, now=now) for item in items]  # 1. normalise
    # Serialise batches of one patient: makes the client-id and cross-source checks race-free.
    # Taken after normalising (no database): the lock is held no longer than needed.
    feed.lock_patient(session, patient.id)
    out = Outgoing()

    stored = readings_service.store(  # 2. store
        session,
        patient=patient,
        source=source,
        items=items,
        normalised=normalised,
        entered_by=entered_by,
        now=now,
    )
    metrics.count_sync_results(stored.results)
    new = [to_fact(row) for row in stored.counted]

    advice: list[Advice] = []
    inputs = evaluation.inputs_for(session, patient, new=new) if new else None
    if inputs is not None:
        inputs, run = evaluation.evaluate_recorded(session, patient, inputs, now=now)  # 3.
        advice += evaluation.record(  # 4. record findings
            session, settings, patient=patient, inputs=inputs, run=run, now=now, out=out
        )
    advice += goals_progress.recompute_for_readings(  # 5. goal progress
        session, patient, {f.type for f in new}, now, out
    )
    publish(session, patient, out, now)  # 6. feed entries and push outbox

    return IngestResult(results=stored.results, advice=advice, created_ids=[f.id for f in new])


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
    feed.lock_patient(session, patient.id)
    out = Outgoing()

    removed = readings_service.mark_entered_in_error(  # 2. store the mark
        session,
        patient=patient,
        reading_id=reading_id,
        by=by,
        now=now,
        check_entered_by=check_entered_by,
    )
    if removed is None:
        return  # already marked, or a duplicate that never counted: nothing to undo
    fact = to_fact(removed)

    inputs = evaluation.inputs_for(session, patient, new=[], removed=[fact])
    run = None
    if inputs is not None:  # 3. evaluate
        inputs, run = evaluation.evaluate_recorded(session, patient, inputs, now=now)
    findings_corrections.mark_flags_entered_in_error(  # 4. record findings
        session, patient, reading_id=fact.id, received_at=removed["received_at"], now=now, out=out
    )
    if inputs is not None:
        evaluation.record(
            session, settings, patient=patient, inputs=inputs, run=run, now=now, out=out
        )
    goals_progress.correct_goals(session, patient, {fact.type}, now, out)  # 5. goal progress
    publish(session, patient, out, now)  # 6. feed entries and push outbox
