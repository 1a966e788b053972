"""Logout holds across processes: an ended session's cookie is refused by every app on the
database, and the table that remembers ended sessions comes with migration 0015."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent
from app.auth import repository as auth_repository
from app.auth.models import EndedSession
from app.config import Settings
from app.db import transaction
from app.main import create_app
from app.web.sessions import COOKIE
from tests.app.web.conftest import Browser


@pytest.fixture
def second_app(settings: Settings) -> Iterator[Any]:
    """Another process's app: its own memory, the same database."""
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


def _audit_rows(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_a_cookie_ended_in_one_process_is_refused_by_another(
    app: Any, second_app: Any, session: Session
) -> None:
    first, other = Browser(app), Browser(second_app)
    with first.client, other.client:
        first.login("eva")
        cookie = first.client.cookies[COOKIE]
        token = first.csrf("/vard")
        other.client.cookies.set(COOKIE, cookie)
        assert other.client.get("/vard", follow_redirects=False).status_code == 200

        logged_out = first.post("/logout", {}, token_from="/vard")
        assert logged_out.status_code == 200 and "Du är utloggad." in logged_out.text
        assert session.scalar(select(func.count()).select_from(EndedSession)) == 1

        replay = Browser(second_app)
        with replay.client:
            replay.client.cookies.set(COOKIE, cookie)
            page = replay.client.get("/vard", follow_redirects=False)
            assert page.status_code == 303 and page.headers["location"].startswith("/login")
            before = _audit_rows(session)
            replay.client.cookies.clear()
            replay.client.cookies.set(COOKIE, cookie)
            posted = replay.client.post(
                "/logout", data={"csrf_token": token}, follow_redirects=False
            )
            assert posted.status_code == 403
            assert _audit_rows(session) == before  # nothing was done, not even a logout


def test_ending_a_session_twice_is_one_row_and_expired_rows_go(
    factory: sessionmaker[Session], session: Session
) -> None:
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    with transaction(factory) as db:
        auth_repository.end_web_session(db, "old", now + timedelta(hours=1), now)
        auth_repository.end_web_session(db, "s1", now + timedelta(hours=12), now)
    with transaction(factory) as db:  # the same logout again (reached the server twice)
        auth_repository.end_web_session(db, "s1", now + timedelta(hours=12), now)
    assert set(session.scalars(select(EndedSession.sid))) == {"old", "s1"}
    later = now + timedelta(hours=2)  # "old" would have expired by now: the next logout drops it
    with transaction(factory) as db:
        auth_repository.end_web_session(db, "s2", later + timedelta(hours=12), later)
        assert auth_repository.web_session_ended(db, "s1")
        assert not auth_repository.web_session_ended(db, "old")
    assert set(session.scalars(select(EndedSession.sid))) == {"s1", "s2"}


def test_migration_adds_the_ended_sessions_table_and_takes_it_away(
    database_at: Callable[[str], tuple[str, Engine]],
) -> None:
    """0015: the table of ended sessions appears on upgrade and goes on downgrade."""
    from alembic import command
    from sqlalchemy import inspect

    from app import migrate

    url, engine = database_at("0014_goal_start")
    migrate.upgrade(url)
    migrate.check(url)
    assert "web_sessions_ended" in inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO web_sessions_ended (sid, expires_at) VALUES ('s1', :at)"),
            {"at": "2026-12-04 12:00:00+00:00"},
        )
    command.downgrade(migrate.alembic_config(url), "0014_goal_start")
    assert "web_sessions_ended" not in inspect(engine).get_table_names()
