"""Scheduled jobs: what they share, and the jobs that belong to no single domain (retention).

Each domain keeps its jobs in its own ``jobs`` module: ``app.findings.jobs`` (time-based
rules, flag escalation), ``app.goals.jobs`` (the nightly recompute), ``app.plans.jobs``
(measurement reminders), ``app.activities.jobs`` (activity reminders), ``app.audit.jobs``
(anchor and verify the chain), ``app.push.dispatcher`` (the outbox); ``app.scheduler`` runs
them on a timer.

Every job is a function ``(factory, settings, now) -> dict[str, int]`` (what it did): it owns
its sessions and transactions, claims the rows it works on (``FOR UPDATE SKIP LOCKED`` or a
unique key on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` write lock), and may run any number of
times, in any number of processes, without doing anything twice. Tests call them directly
with a fixed ``now``.

Most jobs work patient by patient (or activity by activity): :func:`each` makes such a job out
of the step for one, so that every one runs in a short transaction of its own (a patient's
feed lock is never held for the whole run) and one that fails is logged, counted
(``failed`` and the ``selfcare_job_item_failures_total`` metric) and passed over while the
rest go on; the next run tries it again.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from app import metrics
from app.config import Settings
from app.db import transaction

T = TypeVar("T")

log = logging.getLogger("selfcare.jobs")

Step = Callable[[Session, Settings, datetime], T]
Job = Callable[[sessionmaker[Session], Settings, datetime], T]
ItemStep = Callable[[Session, Settings, datetime, str], Mapping[str, int]]
Select = Callable[[Session, Settings, datetime], Sequence[str]]


def unit_of_work(step: Step[T]) -> Job[T]:
    """Run ``step`` in a session and transaction of its own: commit on success, else roll back."""

    @functools.wraps(step)
    def run(factory: sessionmaker[Session], settings: Settings, now: datetime) -> T:
        with transaction(factory) as session:
            return step(session, settings, now)

    return run


def each(job: str, select: Select) -> Callable[[ItemStep], Job[dict[str, int]]]:
    """A job that runs ``step`` for every id ``select`` finds, each in its own transaction.

    The counts the steps return are added up; an id whose step raises is rolled back, logged
    and counted as ``failed``, and the others still run.
    """

    def decorate(step: ItemStep) -> Job[dict[str, int]]:
        @functools.wraps(step)
        def run(
            factory: sessionmaker[Session], settings: Settings, now: datetime
        ) -> dict[str, int]:
            with transaction(factory) as session:
                ids = list(select(session, settings, now))
            totals: Counter[str] = Counter()
            for item_id in ids:
                try:
                    with transaction(factory) as session:
                        totals.update(step(session, settings, now, item_id))
                except Exception:  # one patient's failure must not stop the run for the rest
                    log.exception("job %s failed for %s; the others go on", job, item_id)
                    metrics.JOB_ITEM_FAILURES.labels(job=job).inc()
                    totals["failed"] += 1
            return dict(totals)

        return run

    return decorate
