"""A request's database time is bounded, on both databases (issue 10 §2).

A statement past ``db_statement_timeout_ms`` is stopped (PostgreSQL's statement_timeout, an
interrupt on SQLite), a lock held elsewhere is waited for only so long (PostgreSQL's
lock_timeout, SQLite's busy timeout), and the request answers 503 problem+json with
Retry-After: nothing saved, and the next try works once the lock is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import make_engine, unavailable_reason
from app.main import create_app
from app.readings.models import Reading
from tests.app.factories import batch, bp

Auth = Callable[[str], dict[str, str]]

SLOW_STATEMENT = {
    # Counting to a billion in a recursive CTE: minutes of SQLite virtual-machine steps.
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
    "WHERE i < 1000000000) SELECT count(*) FROM n",
    "postgresql": "SELECT pg_sleep(60)",
}


def test_a_statement_past_the_timeout_is_stopped_and_called_busy(backend: str, db_url: str) -> None:
    engine = make_engine(db_url, statement_timeout_ms=200)
    try:
        with engine.connect() as conn, pytest.raises(DBAPIError) as stopped:
            conn.execute(text(SLOW_STATEMENT[backend]))
        assert unavailable_reason(stopped.value) == "busy"
        with engine.connect() as conn:  # the connection serves the next statement
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
    unbounded = make_engine(db_url)  # jobs and the command line: no timeout
    try:
        with unbounded.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        unbounded.dispose()


@pytest.fixture
def impatient(settings: Settings) -> Iterator[TestClient]:
    app = create_app(
        settings.model_copy(
            update={"db_statement_timeout_ms": 300, "sqlite_busy_timeout_ms": 5_000}
        )
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    app.state.engine.dispose()


def test_a_request_waiting_on_a_held_lock_answers_503_and_saves_nothing(
    backend: str, db_url: str, impatient: TestClient, auth: Auth, session: Session
) -> None:
    before = session.scalar(select(func.count()).select_from(Reading))
    blocker = make_engine(db_url)
    conn = blocker.connect()
    try:
        # Another transaction holds what every request's audit row needs: SQLite's write
        # lock (BEGIN IMMEDIATE), or the audit chain's head row on PostgreSQL.
        if backend == "sqlite":
            conn.execute(text("UPDATE audit_head SET last_seq = last_seq WHERE id = 1"))
        else:
            conn.execute(text("SELECT last_seq FROM audit_head WHERE id = 1 FOR UPDATE"))
        refused = impatient.post(
            "/v1/patients/me/sync", json=batch(bp(131, 84)), headers=auth("allan")
        )
    finally:
        conn.rollback()
        conn.close()
        blocker.dispose()
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert int(refused.headers["retry-after"]) >= 1
    assert "busy" in refused.json()["detail"]
    assert session.scalar(select(func.count()).select_from(Reading)) == before
    again = impatient.post("/v1/patients/me/sync", json=batch(bp(131, 84)), headers=auth("allan"))
    assert again.status_code == 200
    assert session.scalar(select(func.count()).select_from(Reading)) == before + 1
