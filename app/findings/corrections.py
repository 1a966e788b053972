"""Corrections: what a reading entered in error had caused is taken back or pointed out.

* Advice it caused (a congratulation on a goal or milestone reached only through it) is
  withdrawn: ``withdrawn_at`` is set, the feed carries the advice again so apps remove it,
  and a push not yet on its way is cancelled. Nothing is deleted.
* A flag that cites it keeps its status (the team resolves flags, never the service) and
  says so: the reading's id joins ``entered_in_error``, ``corrected_at`` is set and the feed
  carries the flag again.

Both happen in the transaction that marks the reading entered in error.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.findings import repository
from app.findings import service as findings_service
from app.findings.models import Advice, Flag
from app.findings.outgoing import Outgoing
from app.patients.models import Patient
from app.push.models import OutboxMessage, OutboxStatus

ENTERED_IN_ERROR = "entered_in_error"
"""Why advice was withdrawn: a reading it rested on was entered in error."""


def withdraw_advice(
    session: Session,
    patient: Patient,
    advice: Sequence[Advice],
    *,
    reason: str,
    now: datetime,
    out: Outgoing,
) -> list[Advice]:
    """Withdraw advice that no longer holds; cancel its pending pushes; tell the feed (``out``)."""
    withdrawn = [a for a in advice if a.withdrawn_at is None]
    for item in withdrawn:
        item.withdrawn_at, item.withdrawn_reason = now, reason
    if not withdrawn:
        return []
    session.flush()
    session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.advice_id.in_([a.id for a in withdrawn]),
            OutboxMessage.status == OutboxStatus.PENDING,
        )
        .values(status=OutboxStatus.CANCELLED, finished_at=now, last_error="advice withdrawn")
    )
    out.drop_pushes(withdrawn)  # not queued yet: nothing to send, nothing to cancel
    for item in withdrawn:
        out.change(
            "advice", "upsert", item.id, findings_service.advice_dict(item, patient.language)
        )
    return withdrawn


def mark_flags_entered_in_error(
    session: Session,
    patient: Patient,
    *,
    reading_id: str,
    received_at: datetime,
    now: datetime,
    out: Outgoing,
) -> list[Flag]:
    """Tell the team on every flag that cites the reading that it was entered in error."""
    # A flag that cites a reading was written after the reading arrived.
    candidates = repository.flags_updated_since(session, patient.id, received_at)
    marked = [flag for flag in candidates if reading_id in (flag.reading_ids or [])]
    for flag in marked:
        known = list(flag.entered_in_error or [])
        if reading_id not in known:
            flag.entered_in_error = [*known, reading_id]
        flag.corrected_at = flag.updated_at = now
    if not marked:
        return []
    session.flush()
    for flag, data in zip(
        marked, findings_service.flag_dicts(session, marked, "sv", now), strict=True
    ):
        out.change("flag", "upsert", flag.id, data)
    return marked
