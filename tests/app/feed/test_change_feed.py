"""AT-13: the change feed never skips a change committed out of order (PostgreSQL).

Ten writers commit changes for one patient while one long transaction holds its change open
until a later change was delivered or a writer waits for it; a reader polls the feed all
along. Every committed change must be delivered exactly once. The control runs the same
workload against a naive feed that pages by a global autoincrement id without the
per-patient lock, and must show a skip: it proves the test can see the bug it guards against.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.clock import utcnow
from app.config import Settings
from app.db import make_engine, make_sessionmaker, transaction
from app.feed import service as feed
from app.feed.models import Change
from tests.app.factories import patient_id

WRITERS = 10
PER_WRITER = 15

Append = Callable[[Session, str, str], None]


def _locked_append(session: Session, pid: str, entity_id: str) -> None:
    feed.append(
        session, pid, entity="reading", op="upsert", entity_id=entity_id, data={}, now=utcnow()
    )


def _naive_append(session: Session, pid: str, entity_id: str) -> None:
    # What a simpler design would do: no lock; the global id orders the feed.
    session.execute(
        insert(Change).values(
            patient_id=pid,
            seq=-random.randint(1, 2**62),
            entity="reading",
            op="upsert",
            entity_id=entity_id,
            data={},
            created_at=utcnow(),
        )
    )


def _lock_waiters(factory: sessionmaker[Session]) -> int:
    """How many sessions of this database wait on a lock (PostgreSQL's own view, no timing)."""
    with transaction(factory) as s:
        return int(
            s.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


def _run(
    factory: sessionmaker[Session], pid: str, append: Append, poll: Callable[[], list[str]]
) -> tuple[list[str], list[str]]:
    """Writers, one long transaction and a polling reader; (committed, delivered).

    No step depends on a sleep: the long transaction holds its change (the lowest id) until
    either the reader has delivered a later writer's change (what a naive feed does) or a
    writer waits on the patient's lock (what the real feed does), and only then commits.
    """
    committed: list[str] = []
    guard = threading.Lock()
    delivered: list[str] = []
    done, held, release = threading.Event(), threading.Event(), threading.Event()

    def record(entity_id: str) -> None:
        with guard:
            committed.append(entity_id)

    def long_write() -> None:
        entity_id = str(uuid.uuid4())
        with transaction(factory) as session:
            append(session, pid, entity_id)
            session.flush()
            held.set()
            release.wait()
        record(entity_id)

    def write() -> None:
        for _ in range(PER_WRITER):
            entity_id = str(uuid.uuid4())
            with transaction(factory) as session:
                append(session, pid, entity_id)
                session.flush()
                time.sleep(random.random() / 200)  # jitter: commits interleave differently
            record(entity_id)

    def read() -> None:
        while not done.is_set():
            delivered.extend(poll())
            if not release.is_set() and (delivered or _lock_waiters(factory)):
                release.set()
        delivered.extend(poll())

    long_writer = threading.Thread(target=long_write)
    long_writer.start()
    held.wait()  # the long transaction has its change in place first
    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write) for _ in range(WRITERS)]
    for thread in writers:
        thread.start()
    for thread in [long_writer, *writers]:
        thread.join()
    done.set()
    reader.join()
    return committed, delivered


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_feed_delivers_every_change_once_and_the_naive_control_skips(
    settings: Settings, session: Session
) -> None:
    engine = make_engine(settings.effective_database_url, pool_size=20, max_overflow=5)
    factory = make_sessionmaker(engine)
    feed_patient, naive_patient = patient_id(session, "asta"), patient_id(session, "allan")

    state: dict[str, Any] = {"cursor": None}

    def poll_feed() -> list[str]:
        with transaction(factory) as s:
            page = feed.read(s, settings, feed_patient, state["cursor"])
            state["cursor"] = page.cursor
            return [c["id"] for c in page.changes]

    naive: dict[str, int] = {"last_id": 0}

    def poll_naive() -> list[str]:
        with transaction(factory) as s:
            rows = s.execute(
                select(Change.id, Change.entity_id)
                .where(Change.patient_id == naive_patient, Change.id > naive["last_id"])
                .order_by(Change.id)
            ).all()
        if rows:
            naive["last_id"] = rows[-1].id
        return [r.entity_id for r in rows]

    poll_feed()  # start after what the seed wrote (the plan)
    committed, delivered = _run(factory, feed_patient, _locked_append, poll_feed)
    naive_committed, naive_delivered = _run(factory, naive_patient, _naive_append, poll_naive)
    engine.dispose()

    skipped = len(set(committed) - set(delivered))
    duplicated = len(delivered) - len(set(delivered))
    naive_skips = len(set(naive_committed) - set(naive_delivered))
    print(
        f"AT-13 committed={len(committed)} delivered={len(set(delivered))} "
        f"skipped={skipped} duplicated={duplicated} naive_control_skips={naive_skips}"
    )
    assert set(delivered) == set(committed)
    assert (skipped, duplicated) == (0, 0)
    assert naive_skips > 0, "the control did not show the skip: the test cannot see the bug"
