"""Scheduled jobs: measurement reminders, flag escalation, retention (push dispatch lives in
``app.push.dispatcher``).

Every job is a function ``(factory, settings, now) -> dict[str, int]`` (what it did): it owns
its sessions and transactions, claims the rows it works on (``FOR UPDATE SKIP LOCKED`` or a
unique key on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` write lock), and may run any number of
times, in any number of processes, without doing anything twice. Tests call them directly
with a fixed ``now``; ``app.scheduler`` runs them on a timer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import transaction

T = TypeVar("T")

Step = Callable[[Session, Settings, datetime], T]
Job = Callable[[sessionmaker[Session], Settings, datetime], T]


def unit_of_work(step: Step[T]) -> Job[T]:
    """Run ``step`` in a session and transaction of its own: commit on success, else roll back."""

    @functools.wraps(step)
    def run(factory: sessionmaker[Session], settings: Settings, now: datetime) -> T:
        with transaction(factory) as session:
            return step(session, settings, now)

    return run
