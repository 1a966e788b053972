"""What recording findings and goal progress has to tell the outside world, sent last.

Steps that record evaluations, advice, flags and goal progress do not write the change feed
or the push outbox as they go: they collect the entries here, in the order they happened,
and the use case publishes them at its end (:func:`publish`), the feed entries first, then
the pushes. One transaction holds it all, so nothing is told that is not also stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.feed import service as feed
from app.findings.models import Advice
from app.patients.models import Patient
from app.push import service as push_service


@dataclass
class Outgoing:
    """Change-feed entries and advice to push, in the order they were recorded."""

    changes: list[feed.ChangeEntry] = field(default_factory=list)
    pushes: list[Advice] = field(default_factory=list)

    def change(self, entity: str, op: str, entity_id: str, data: dict[str, Any]) -> None:
        """Queue one change-feed entry."""
        self.changes.append(feed.ChangeEntry(entity, op, entity_id, data))

    def extend(self, entries: Iterable[feed.ChangeEntry]) -> None:
        """Queue change-feed entries."""
        self.changes.extend(entries)

    def drop_pushes(self, advice: Iterable[Advice]) -> None:
        """Forget the pushes of advice withdrawn before it was ever queued."""
        gone = {a.id for a in advice}
        self.pushes = [a for a in self.pushes if a.id not in gone]


def publish(session: Session, patient: Patient, out: Outgoing, now: datetime) -> None:
    """Append the collected entries to the patient's feed, then queue the pushes."""
    feed.append_many(session, patient.id, out.changes, now=now)
    for advice in out.pushes:
        push_service.enqueue_advice(session, advice, patient, now)
    out.changes, out.pushes = [], []
